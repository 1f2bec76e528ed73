/**
 * `flexmoe assign [file]`: solve one expert assignment. Reads JSON from the file (or stdin when the file is
 * missing or "-"), prints {assignment, load, objective, cv} as JSON. Bad or infeasible input: exit code 2
 * and one line on stderr, `flexmoe assign: <CODE>: <reason>`.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { AssignmentError, assign, createRng, STRATEGY_NAMES } from "@flexmoe/core";
import type { AssignmentErrorCode } from "@flexmoe/core";

const USAGE = `usage: flexmoe assign [file|-]
  input JSON:  { "fitness": number[][] (clients x experts), "capacity": number[],
                 "strategy"?: ${STRATEGY_NAMES.map((n) => `"${n}"`).join(" | ")} (default flex),
                 "slack"?: number, "deficit"?: number[], "seed"?: number, "round"?: number }
  output JSON: { "assignment": number[][], "load": number[], "objective": number, "cv": number }
  exit codes:  0 solved, 2 invalid or infeasible input`;

const InputSchema = z
  .object({
    fitness: z.array(z.array(z.number())).min(1, "needs at least one client"),
    capacity: z.array(z.number().int()),
    strategy: z.enum(STRATEGY_NAMES).default("flex"),
    slack: z.number().min(0).optional(),
    deficit: z.array(z.number()).optional(),
    seed: z.number().int().optional(),
    round: z.number().int().min(0).optional(),
  })
  .strict();

export type AssignInput = z.infer<typeof InputSchema>;

export interface AssignOutput {
  assignment: number[][];
  load: number[];
  objective: number;
  cv: number;
}

/** Coefficient of variation of the load: population std / mean (0 for an all-zero load). */
export function loadCv(load: readonly number[]): number {
  if (load.length === 0) return 0;
  const mean = load.reduce((s, x) => s + x, 0) / load.length;
  if (mean === 0) return 0;
  const variance = load.reduce((s, x) => s + (x - mean) ** 2, 0) / load.length;
  return Math.sqrt(variance) / mean;
}

class InputError extends Error {
  constructor(
    readonly code: AssignmentErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Parses and solves one request; throws InputError or AssignmentError on bad input. */
export function solveRequest(raw: unknown): AssignOutput {
  const parsed = InputSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    throw new InputError("INVALID_INPUT", `${where}${issue?.message ?? "bad input"}`);
  }
  const input = parsed.data;
  const C = input.fitness.length;
  const E = (input.fitness[0] as number[]).length;
  if (E < 1) throw new InputError("INVALID_INPUT", "fitness rows must list at least one expert");
  const flat = new Float64Array(C * E);
  input.fitness.forEach((row, c) => {
    if (row.length !== E) throw new InputError("INVALID_INPUT", `fitness row ${c} has ${row.length} experts, row 0 has ${E}`);
    flat.set(row, c * E);
  });
  const result = assign(
    { clients: C, experts: E, fitness: flat, capacity: input.capacity, slack: input.slack, deficit: input.deficit },
    input.strategy,
    { rng: createRng(input.seed ?? 0), round: input.round ?? 0 },
  );
  return { assignment: result.experts, load: result.load, objective: result.objective, cv: loadCv(result.load) };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

export async function runAssign(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const fail = (code: string, message: string): number => {
    console.error(`flexmoe assign: ${code}: ${message.replace(/\s*\n\s*/g, " ")}`);
    return 2;
  };
  if (args.length > 1) return fail("INVALID_INPUT", `expected at most one file argument, got ${args.length}`);
  const file = args[0];
  let text: string;
  try {
    text = file === undefined || file === "-" ? await readStdin() : await readFile(file, "utf8");
  } catch (e) {
    return fail("INVALID_INPUT", `cannot read ${file ?? "stdin"}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail("INVALID_INPUT", `not JSON: ${(e as Error).message}`);
  }
  try {
    console.log(JSON.stringify(solveRequest(raw)));
    return 0;
  } catch (e) {
    if (e instanceof AssignmentError || e instanceof InputError) return fail(e.code, e.message);
    throw e;
  }
}

/**
 * The knobs `flexmoe serve` and `flexmoe experiment` share: one table, so the same knob has the same
 * flag, range and help in both, and a bad value is a usage error (exit code 2) everywhere.
 */
import { AGGREGATOR_NAMES, FEEDBACK_MODES, parsePartition, STRATEGY_NAMES, ZERO_USAGE_RULES } from "@flexmoe/core";

type KnobSpec =
  | { kind: "int"; min: number; max: number }
  | { kind: "num"; min: number; max: number }
  | { kind: "choice"; choices: readonly string[] }
  | { kind: "partition" };

interface Knob {
  readonly help: string;
  readonly spec: KnobSpec;
}

const int = (min: number, max: number) => ({ kind: "int", min, max }) as const;
const num = (min: number, max: number) => ({ kind: "num", min, max }) as const;
const choice = <const C extends readonly string[]>(choices: C) => ({ kind: "choice", choices }) as const;

export const KNOBS = {
  experts: { help: "number of experts E", spec: int(2, 64) },
  strategy: { help: STRATEGY_NAMES.join(" | "), spec: choice(STRATEGY_NAMES) },
  fitness: { help: "acc | loss", spec: choice(["acc", "loss"] as const) },
  "alpha-l": { help: "loss-driven fitness exp(-alpha_L * loss)", spec: num(1e-6, 1e6) },
  beta: { help: "EMA rate of the fitness matrix Q", spec: num(1e-6, 1) },
  q0: { help: "initial fitness of untried client-expert pairs, in [0, 1]", spec: num(0, 1) },
  slack: { help: "widen the load bounds by this fraction of the fair share", spec: num(0, 10) },
  partition: { help: "iid | dirichlet:<alpha> | classes:<k>", spec: { kind: "partition" } },
  epochs: { help: "local epochs per round", spec: int(1, 1000) },
  "batch-size": { help: "local batch size", spec: int(1, 4096) },
  lr: { help: "learning rate (Adam, fresh each round)", spec: num(1e-7, 10) },
  feedback: {
    help: "when clients measure per-expert feedback: pre (received model) | during (last epoch's batches) | post (trained model)",
    spec: choice(FEEDBACK_MODES),
  },
  seed: { help: "run seed (partition, initial weights, assignment draws)", spec: int(0, 2 ** 32 - 1) },
  aggregator: { help: AGGREGATOR_NAMES.join(" | "), spec: choice(AGGREGATOR_NAMES) },
  trim: { help: "fraction cut from each end by --aggregator trimmed", spec: num(0, 0.5) },
  clip: { help: "clip each client's delta (backbone, each expert) to this L2 norm, 0 = off", spec: num(0, 1e12) },
  "clip-factor": {
    help: "clip each delta to this many times the round's lower-median delta norm of its kind, 0 = off",
    spec: num(0, 1e6),
  },
  "max-hold": {
    help: "consecutive rounds a client may hold one expert before leaving it for a round, 0 = no limit",
    spec: int(0, 1_000_000),
  },
  "gate-init": {
    help: "gate columns of experts a client did not hold last round: keep | mean (of the kept experts' columns)",
    spec: choice(["keep", "mean"] as const),
  },
  balance: {
    help: "weight of a Switch-style load-balancing term on each client's gate over its experts, 0 = off",
    spec: num(0, 10),
  },
  "q-decay": {
    help: "per round, move Q of each client's unassigned experts this fraction back to q0 (exploration), 0 = off",
    spec: num(0, 1),
  },
  "zero-usage": {
    help: "Q of an assigned expert that got no routed sample: keep | zero",
    spec: choice(ZERO_USAGE_RULES),
  },
  preset: { help: "cnn | dense", spec: choice(["cnn", "dense"] as const) },
  "test-fraction": { help: "held-out share of each client's shard", spec: num(0.01, 0.9) },
} as const satisfies Record<string, Knob>;

export type KnobName = keyof typeof KNOBS;
type SpecOf<K extends KnobName> = (typeof KNOBS)[K]["spec"];
export type KnobValue<K extends KnobName> =
  SpecOf<K> extends { kind: "choice"; choices: readonly (infer C)[] } ? C : SpecOf<K> extends { kind: "partition" } ? string : number;

/** A bad flag or value: the command prints it with its usage and exits with code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses one value of knob `k`. @throws UsageError naming the flag. */
export function parseKnob<K extends KnobName>(k: K, raw: string): KnobValue<K> {
  const spec: KnobSpec = KNOBS[k].spec;
  const bad = (why: string): never => {
    throw new UsageError(`--${k}: ${why}, got '${raw}'`);
  };
  switch (spec.kind) {
    case "int": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isInteger(n) || n < spec.min || n > spec.max)
        bad(`must be an integer in [${spec.min}, ${spec.max}]`);
      return n as KnobValue<K>;
    }
    case "num": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n) || n < spec.min || n > spec.max) bad(`must be a number in [${spec.min}, ${spec.max}]`);
      return n as KnobValue<K>;
    }
    case "choice":
      if (!spec.choices.includes(raw)) bad(`must be one of ${spec.choices.join(", ")}`);
      return raw as KnobValue<K>;
    case "partition":
      try {
        parsePartition(raw);
      } catch (e) {
        bad((e as Error).message);
      }
      return raw as KnobValue<K>;
  }
}

/** A comma-separated list of knob `k`'s values (experiment sweeps). */
export function parseKnobList<K extends KnobName>(k: K, raw: string): KnobValue<K>[] {
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw new UsageError(`--${k}: empty list`);
  return items.map((s) => parseKnob(k, s));
}

/** The parseArgs entries of these knobs (all strings, parsed by {@link parseKnob}). */
export function knobArgs<K extends KnobName>(names: readonly K[]): Record<K, { type: "string" }> {
  return Object.fromEntries(names.map((n) => [n, { type: "string" as const }])) as Record<K, { type: "string" }>;
}

/** Help lines for these knobs with their defaults. */
export function knobHelp(names: readonly KnobName[], defaults: Partial<Record<KnobName, string | number>>): string {
  return names
    .map((n) => {
      const d = defaults[n];
      return `  --${`${n} <v>`.padEnd(22)} ${KNOBS[n].help}${d === undefined ? "" : ` (default ${d})`}`;
    })
    .join("\n");
}

/** Integer flag outside the shared table (command-specific). @throws UsageError. */
export function intFlag(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name}: must be an integer in [${min}, ${max}], got '${raw}'`);
  return n;
}

/** Number flag outside the shared table (command-specific). @throws UsageError. */
export function numFlag(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`--${name}: must be a number in [${min}, ${max}], got '${raw}'`);
  return n;
}

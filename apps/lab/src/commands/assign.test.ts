/** `flexmoe assign` end to end: the real CLI, JSON on stdin, checked against brute force. */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bruteForceOptimum, computeBounds, createRng } from "@flexmoe/core";
import { loadCv } from "./assign.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["apps/lab/bin/flexmoe.mjs", "assign", ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? "");
  });
}

interface Output {
  assignment: number[][];
  load: number[];
  objective: number;
  cv: number;
}

describe("flexmoe assign", () => {
  it("solves random instances to the brute-force optimum, valid for every strategy", async () => {
    const rng = createRng(41);
    const cases = Array.from({ length: 4 }, (_, t) => {
      const C = 2 + rng.int(4);
      const E = 2 + rng.int(3);
      const fitness = Array.from({ length: C }, () =>
        Array.from({ length: E }, () => (t % 2 === 0 ? rng.int(4) : Math.round(rng.next() * 1000) / 1000)),
      );
      const capacity = Array.from({ length: C }, () => 1 + rng.int(E));
      const slack = t < 2 ? 0 : 0.3;
      const deficit = Array.from({ length: E }, () => rng.int(3) - 1);
      return { fitness, capacity, slack, deficit };
    });
    const runs = await Promise.all([
      ...cases.map((input) => cli([], JSON.stringify(input))),
      cli([], JSON.stringify({ ...cases[0], strategy: "greedy" })),
      cli([], JSON.stringify({ ...cases[1], strategy: "random", seed: 7 })),
      cli([], JSON.stringify({ ...cases[1], strategy: "random", seed: 7 })),
      cli([], JSON.stringify({ ...cases[2], strategy: "roundrobin" })),
    ]);
    cases.forEach((input, t) => {
      const run = runs[t] as Run;
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      const out = JSON.parse(run.stdout) as Output;
      const C = input.fitness.length;
      const E = (input.fitness[0] as number[]).length;
      const { lower, upper } = computeBounds(input.capacity, E, { slack: input.slack, deficit: input.deficit });
      const best = bruteForceOptimum(C, E, input.fitness.flat(), input.capacity, lower, upper);
      expect(out.objective).toBeCloseTo(best as number, 9);
      out.assignment.forEach((list, c) => expect(new Set(list).size).toBe(input.capacity[c]));
      out.load.forEach((n, e) => expect(n >= (lower[e] as number) && n <= (upper[e] as number)).toBe(true));
      expect(out.cv).toBeCloseTo(loadCv(out.load), 12);
    });
    for (const run of runs.slice(4)) expect(run.code).toBe(0);
    const greedy = JSON.parse((runs[4] as Run).stdout) as Output;
    expect(greedy.objective).toBeGreaterThanOrEqual((JSON.parse((runs[0] as Run).stdout) as Output).objective - 1e-9);
    expect((runs[5] as Run).stdout).toBe((runs[6] as Run).stdout);
  });

  it("exits 2 with one line on stderr for infeasible or malformed input", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "flexmoe-assign-"));
    const file = path.join(dir, "in.json");
    writeFileSync(file, JSON.stringify({ fitness: [[1, 2]], capacity: [1] }));
    const [infeasible, ragged, notJson, badStrategy, fromFile, missing] = await Promise.all([
      cli(
        [],
        JSON.stringify({
          fitness: [
            [1, 2],
            [3, 4],
          ],
          capacity: [1, 3],
        }),
      ),
      cli([], JSON.stringify({ fitness: [[1, 2], [3]], capacity: [1, 1] })),
      cli([], "{ nope"),
      cli([], JSON.stringify({ fitness: [[1]], capacity: [1], strategy: "best" })),
      cli([file]),
      cli([path.join(dir, "missing.json")]),
    ]);
    expect(infeasible?.code).toBe(2);
    expect(infeasible?.stderr).toMatch(/^flexmoe assign: INFEASIBLE: .*client 1.*\n$/);
    for (const run of [ragged, notJson, badStrategy, missing]) {
      expect(run?.code).toBe(2);
      expect(run?.stderr).toMatch(/^flexmoe assign: INVALID_INPUT: [^\n]+\n$/);
      expect(run?.stdout).toBe("");
    }
    expect(fromFile?.code).toBe(0);
    // One slot over two experts: the spare slot goes to expert 0 (deficits tie, lower id), not to the fitter 1.
    expect(JSON.parse(fromFile?.stdout ?? "")).toEqual({ assignment: [[0]], load: [1, 0], objective: 1, cv: 1 });
  });
});

describe("loadCv", () => {
  it("is population std over mean", () => {
    expect(loadCv([2, 2, 2])).toBe(0);
    expect(loadCv([0, 0])).toBe(0);
    expect(loadCv([1, 3])).toBeCloseTo(0.5, 12);
  });
});

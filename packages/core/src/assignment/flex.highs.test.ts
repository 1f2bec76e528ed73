/** Cross-check of the flex solver against the HiGHS LP optimum (the LP is integral: totally unimodular). */
import { beforeAll, describe, expect, it } from "vitest";
import { createRng } from "../rng.ts";
import type { Rng } from "../rng.ts";
import { computeBounds } from "./bounds.ts";
import { DEFAULT_FLEX_TUNING, flexCore, solveFlex } from "./flex.ts";
import { assignmentProblems } from "./reference.ts";

type Solver = { solve(lp: string): { Status: string; ObjectiveValue: number } };
let highs: Solver;

beforeAll(async () => {
  const mod = (await import("highs")) as unknown as { default: () => Promise<Solver> };
  highs = await mod.default();
});

/** The LP relaxation in CPLEX LP format; String(x) prints doubles exactly. */
function lpText(C: number, E: number, w: number[], cap: number[], lower: number[], upper: number[]): string {
  const x = (c: number, e: number): string => `x${c}_${e}`;
  const obj: string[] = [];
  for (let c = 0; c < C; c++) for (let e = 0; e < E; e++) obj.push(`${String(w[c * E + e])} ${x(c, e)}`);
  const rows: string[] = [];
  for (let c = 0; c < C; c++) rows.push(` k${c}: ${Array.from({ length: E }, (_, e) => x(c, e)).join(" + ")} = ${String(cap[c])}`);
  for (let e = 0; e < E; e++) {
    const col = Array.from({ length: C }, (_, c) => x(c, e)).join(" + ");
    rows.push(` lo${e}: ${col} >= ${String(lower[e])}`);
    rows.push(` up${e}: ${col} <= ${String(upper[e])}`);
  }
  const bounds: string[] = [];
  for (let c = 0; c < C; c++) for (let e = 0; e < E; e++) bounds.push(` 0 <= ${x(c, e)} <= 1`);
  return `Maximize\n obj: ${obj.join(" + ").replace(/\+ -/g, "- ")}\nSubject To\n${rows.join("\n")}\nBounds\n${bounds.join("\n")}\nEnd\n`;
}

function instance(rng: Rng, C: number, E: number, kind: number): { w: number[]; cap: number[] } {
  const pop = Array.from({ length: E }, () => rng.next());
  const w = Array.from({ length: C * E }, (_, i) => {
    const c = Math.floor(i / E);
    const e = i % E;
    if (kind === 0) return rng.next();
    if (kind === 1) return (pop[e] as number) + 0.3 * rng.next();
    if (kind === 2) return (e % 4 === c % 4 ? 0.6 : 0) + 0.4 * rng.next();
    return rng.int(3) === 0 ? 1 : Math.round(rng.next() * 20) / 20;
  });
  return { w, cap: Array.from({ length: C }, () => 1 + rng.int(Math.min(4, E))) };
}

function check(C: number, E: number, w: number[], cap: number[], slack: number, deficit: number[]): void {
  const { lower, upper } = computeBounds(cap, E, { slack, deficit });
  const a = solveFlex({ clients: C, experts: E, fitness: w, capacity: cap, slack, deficit });
  expect(assignmentProblems(a, C, E, w, cap)).toEqual([]);
  a.load.forEach((n, e) => expect(n >= (lower[e] as number) && n <= (upper[e] as number)).toBe(true));
  const sol = highs.solve(lpText(C, E, w, cap, lower, upper));
  expect(sol.Status).toBe("Optimal");
  expect(Math.abs(a.objective - sol.ObjectiveValue)).toBeLessThan(1e-6 * (1 + Math.abs(sol.ObjectiveValue)));
}

describe("flex vs HiGHS", () => {
  it("matches the LP optimum on 24 instances of 200 x 8", () => {
    const rng = createRng(31);
    for (let t = 0; t < 24; t++) {
      const { w, cap } = instance(rng, 200, 8, t % 4);
      const deficit = Array.from({ length: 8 }, () => rng.int(5) - 2);
      check(200, 8, w, cap, [0, 0, 0.1, 0.4][t % 4] as number, deficit);
    }
  });

  it("matches the LP optimum on 1000 x 16 (every fitness kind)", () => {
    const rng = createRng(32);
    for (let kind = 0; kind < 4; kind++) {
      const { w, cap } = instance(rng, 1000, 16, kind);
      check(1000, 16, w, cap, kind === 3 ? 0.05 : 0, new Array<number>(16).fill(0));
    }
  });

  it("matches the LP optimum through the subsample path and tiny heaps (1500 x 12)", () => {
    const rng = createRng(33);
    const C = 1500;
    const E = 12;
    const { w, cap } = instance(rng, C, E, 2);
    const { lower, upper } = computeBounds(cap, E);
    const tunings = [DEFAULT_FLEX_TUNING, { sampleMinClients: 200, sampleStride: 3, firstFill: 1, startClients: 1, startPerUnit: 0 }];
    const want = highs.solve(lpText(C, E, w, cap, lower, upper)).ObjectiveValue;
    for (const tuning of tunings) {
      const res = flexCore(C, E, Float64Array.from(w), Int32Array.from(cap), Int32Array.from(lower), Int32Array.from(upper), null, tuning);
      expect(res).not.toBeNull();
      let got = 0;
      res?.hold.forEach((h, i) => (got += h === 1 ? (w[i] as number) : 0));
      expect(Math.abs(got - want)).toBeLessThan(1e-6 * (1 + Math.abs(want)));
    }
  });
});

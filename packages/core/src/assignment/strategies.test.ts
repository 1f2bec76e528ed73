import { describe, expect, it } from "vitest";
import { createRng } from "../rng.ts";
import { assign, solveGreedy, solveRandom, solveRoundRobin } from "./index.ts";
import { computeBounds, updateDeficit } from "./bounds.ts";
import { assignmentProblems } from "./reference.ts";
import { AssignmentError } from "./types.ts";
import type { AssignmentProblem } from "./types.ts";

function problem(
  seed: number,
  C: number,
  E: number,
  maxK = 4,
  ints = false,
): AssignmentProblem & { fitness: number[]; capacity: number[] } {
  const rng = createRng(seed);
  return {
    clients: C,
    experts: E,
    fitness: Array.from({ length: C * E }, () => (ints ? rng.int(3) : rng.next())),
    capacity: Array.from({ length: C }, () => 1 + rng.int(Math.min(maxK, E))),
  };
}

describe("greedy", () => {
  it("gives each client its own top-k, ties to the lower expert id", () => {
    for (const ints of [false, true]) {
      const p = problem(1, 200, 9, 9, ints);
      const a = solveGreedy(p);
      expect(assignmentProblems(a, p.clients, p.experts, p.fitness, p.capacity)).toEqual([]);
      for (let c = 0; c < p.clients; c++) {
        const row = p.fitness.slice(c * p.experts, (c + 1) * p.experts);
        const want = row
          .map((v, e) => ({ v, e }))
          .sort((x, y) => y.v - x.v || x.e - y.e)
          .slice(0, p.capacity[c])
          .map((x) => x.e)
          .sort((x, y) => x - y);
        expect(a.experts[c]).toEqual(want);
      }
      expect(a.bounds).toBeUndefined();
    }
  });
});

describe("random", () => {
  it("is valid and reproducible from the seed", () => {
    const p = problem(2, 300, 8);
    const a = solveRandom(p, createRng(5));
    const b = assign(p, "random", { rng: createRng(5) });
    const c = solveRandom(p, createRng(6));
    expect(assignmentProblems(a, p.clients, p.experts, p.fitness, p.capacity)).toEqual([]);
    expect(b).toEqual(a);
    expect(c.experts).not.toEqual(a.experts);
  });

  it("draws roughly uniform subsets", () => {
    const C = 4000;
    const a = solveRandom(
      { clients: C, experts: 4, fitness: new Array<number>(C * 4).fill(0), capacity: new Array<number>(C).fill(2) },
      createRng(9),
    );
    // 8000 slots over 4 experts: 2000 each, sd about 39.
    for (const n of a.load) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });

  it("needs an rng", () => {
    const p = problem(3, 5, 3);
    expect(() => assign(p, "random")).toThrowError(expect.objectContaining({ code: "INVALID_INPUT" }) as Error);
  });
});

describe("roundrobin", () => {
  it("meets the flex bounds exactly and rotates with the round", () => {
    const p = problem(4, 101, 7);
    const deficit = [0.5, -1, 2, 0, 0, -0.25, 0.1];
    const bounds = computeBounds(p.capacity, p.experts, { deficit });
    const seen = new Set<string>();
    for (let round = 0; round < 7; round++) {
      const a = solveRoundRobin({ ...p, deficit }, round);
      expect(assignmentProblems(a, p.clients, p.experts, p.fitness, p.capacity)).toEqual([]);
      expect(a.bounds).toEqual(bounds);
      a.load.forEach((n, e) => {
        expect(n).toBeGreaterThanOrEqual(bounds.lower[e] as number);
        expect(n).toBeLessThanOrEqual(bounds.upper[e] as number);
      });
      seen.add(JSON.stringify(a.experts[0]));
    }
    expect(seen.size).toBeGreaterThan(1);
    expect(assign(p, "roundrobin", { round: 3 })).toEqual(solveRoundRobin(p, 3));
  });

  it("stays within widened bounds with slack", () => {
    const p = { ...problem(5, 50, 6), slack: 0.3 };
    const a = solveRoundRobin(p, 2);
    const { lower, upper } = computeBounds(p.capacity, 6, { slack: 0.3 });
    a.load.forEach((n, e) => expect(n >= (lower[e] as number) && n <= (upper[e] as number)).toBe(true));
  });
});

describe("deficit rotation", () => {
  it("keeps cumulative flex loads within 1 of each other when F is not divisible by E", () => {
    const E = 7;
    let deficit = new Array<number>(E).fill(0);
    const cumulative = new Array<number>(E).fill(0);
    const rng = createRng(21);
    for (let round = 0; round < 60; round++) {
      // A different set of participants (and so a different F) every round.
      const C = 10 + rng.int(15);
      const p = { ...problem(100 + round, C, E), deficit };
      const F = p.capacity.reduce((s, k) => s + k, 0);
      const a = assign(p, "flex");
      a.load.forEach((n, e) => (cumulative[e] = (cumulative[e] as number) + n));
      deficit = updateDeficit(deficit, a.load, F);
      expect(Math.max(...cumulative) - Math.min(...cumulative)).toBeLessThanOrEqual(1);
      expect(Math.max(...deficit) - Math.min(...deficit)).toBeLessThanOrEqual(1 + 1e-9);
    }
  });

  it("does the same for round-robin", () => {
    const E = 5;
    let deficit = new Array<number>(E).fill(0);
    const cumulative = new Array<number>(E).fill(0);
    for (let round = 0; round < 40; round++) {
      const p = { ...problem(200 + round, 13, E, 3), deficit };
      const a = assign(p, "roundrobin", { round });
      a.load.forEach((n, e) => (cumulative[e] = (cumulative[e] as number) + n));
      deficit = updateDeficit(
        deficit,
        a.load,
        p.capacity.reduce((s, k) => s + k, 0),
      );
      expect(Math.max(...cumulative) - Math.min(...cumulative)).toBeLessThanOrEqual(1);
    }
  });
});

describe("assign", () => {
  it("dispatches every strategy and rejects unknown ones", () => {
    const p = problem(6, 30, 5);
    for (const s of ["flex", "greedy", "roundrobin"] as const) {
      const a = assign(p, s);
      expect(assignmentProblems(a, 30, 5, p.fitness, p.capacity)).toEqual([]);
    }
    expect(() => assign(p, "best" as never)).toThrowError(AssignmentError);
  });

  it("flex never scores below round-robin and never above greedy", () => {
    for (let seed = 0; seed < 20; seed++) {
      const p = problem(300 + seed, 60, 6);
      const flex = assign(p, "flex").objective;
      expect(flex).toBeGreaterThanOrEqual(assign(p, "roundrobin", { round: seed }).objective - 1e-9);
      expect(flex).toBeLessThanOrEqual(assign(p, "greedy").objective + 1e-9);
    }
  });
});

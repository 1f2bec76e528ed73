import { describe, expect, it } from "vitest";
import { createRng } from "../rng.ts";
import type { Rng } from "../rng.ts";
import { computeBounds } from "./bounds.ts";
import { DEFAULT_FLEX_TUNING, flexCore, solveFlex } from "./flex.ts";
import type { FlexTuning } from "./flex.ts";
import { assignmentProblems, bruteForceOptimum } from "./reference.ts";
import { AssignmentError } from "./types.ts";
import type { Bounds } from "./types.ts";

/** Fitness in several flavours: ties (small integers), negatives, continuous, all equal. */
function fitness(rng: Rng, n: number, mode: number): number[] {
  return Array.from({ length: n }, () => {
    switch (mode) {
      case 0:
        return rng.int(3);
      case 1:
        return rng.int(11) - 5;
      case 2:
        return 1;
      default:
        return rng.next();
    }
  });
}

/** Every code path on tiny inputs: subsampling, cut heaps of one candidate, refills. */
const TINY: FlexTuning = { sampleMinClients: 2, sampleStride: 2, firstFill: 1, startClients: 1, startPerUnit: 0 };

function objectiveOf(hold: Uint8Array, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < hold.length; i++) if (hold[i] === 1) s += w[i] as number;
  return s;
}

function coreCheck(
  C: number,
  E: number,
  w: ArrayLike<number>,
  cap: number[],
  L: number[],
  U: number[],
  tuning: FlexTuning,
  pi0: Float64Array | null = null,
) {
  const res = flexCore(C, E, Float64Array.from(w), Int32Array.from(cap), Int32Array.from(L), Int32Array.from(U), pi0, tuning);
  if (res === null) return null;
  const load = new Array<number>(E).fill(0);
  for (let c = 0; c < C; c++) {
    let k = 0;
    for (let e = 0; e < E; e++) {
      if (res.hold[c * E + e] === 1) {
        k++;
        load[e] = (load[e] as number) + 1;
      }
    }
    expect(k).toBe(cap[c]);
  }
  load.forEach((n, e) => {
    expect(n).toBeGreaterThanOrEqual(L[e] as number);
    expect(n).toBeLessThanOrEqual(U[e] as number);
  });
  return objectiveOf(res.hold, w);
}

describe("solveFlex is exact (brute force)", () => {
  it("matches the optimum under computed bounds (slack, deficit) on 2500 tiny instances", () => {
    const rng = createRng(11);
    for (let t = 0; t < 2500; t++) {
      const C = 1 + rng.int(5);
      const E = 1 + rng.int(5);
      const cap = Array.from({ length: C }, () => 1 + rng.int(E));
      const w = fitness(rng, C * E, rng.int(4));
      const slack = [0, 0, 0, 0.1, 0.5, 2][rng.int(6)] as number;
      const deficit = Array.from({ length: E }, () => (rng.int(2) === 0 ? rng.int(3) - 1 : rng.next() * 2 - 1));
      const problem = { clients: C, experts: E, fitness: w, capacity: cap, slack, deficit };
      const bounds = computeBounds(cap, E, { slack, deficit });
      const a = solveFlex(problem);
      expect(assignmentProblems(a, C, E, w, cap)).toEqual([]);
      expect(a.bounds).toEqual(bounds);
      a.load.forEach((n, e) => {
        expect(n).toBeGreaterThanOrEqual(bounds.lower[e] as number);
        expect(n).toBeLessThanOrEqual(bounds.upper[e] as number);
      });
      const best = bruteForceOptimum(C, E, w, cap, bounds.lower, bounds.upper);
      expect(best).not.toBeNull();
      expect(a.objective).toBeCloseTo(best as number, 9);
    }
  });

  it("matches the optimum, or reports INFEASIBLE exactly when brute force finds nothing, under arbitrary bounds", () => {
    const rng = createRng(12);
    let infeasible = 0;
    for (let t = 0; t < 2500; t++) {
      const C = 1 + rng.int(5);
      const E = 1 + rng.int(5);
      const cap = Array.from({ length: C }, () => 1 + rng.int(E));
      const w = fitness(rng, C * E, rng.int(4));
      const lower = Array.from({ length: E }, () => rng.int(C + 1));
      const upper = lower.map((l) => l + rng.int(C + 2 - l));
      const bounds: Bounds = { lower, upper };
      const best = bruteForceOptimum(C, E, w, cap, lower, upper);
      let got: number | null = null;
      try {
        const a = solveFlex({ clients: C, experts: E, fitness: w, capacity: cap }, { bounds });
        expect(assignmentProblems(a, C, E, w, cap)).toEqual([]);
        a.load.forEach((n, e) => expect(n >= (lower[e] as number) && n <= (upper[e] as number)).toBe(true));
        got = a.objective;
      } catch (e) {
        expect(e).toBeInstanceOf(AssignmentError);
        expect((e as AssignmentError).code).toBe("INFEASIBLE");
      }
      if (best === null) {
        infeasible++;
        expect(got).toBeNull();
      } else {
        expect(got).not.toBeNull();
        expect(got as number).toBeCloseTo(best, 9);
      }
    }
    // Both outcomes must actually be exercised.
    expect(infeasible).toBeGreaterThan(300);
    expect(infeasible).toBeLessThan(2200);
  });

  it("reaches the same optimum through every internal path (subsampling, cut heaps, refills, odd potentials)", () => {
    const rng = createRng(13);
    let infeasible = 0;
    for (let t = 0; t < 2000; t++) {
      const C = 1 + rng.int(6);
      const E = 1 + rng.int(5);
      const cap = Array.from({ length: C }, () => 1 + rng.int(E));
      const w = fitness(rng, C * E, rng.int(4));
      const lower = Array.from({ length: E }, () => rng.int(Math.min(C, 3) + 1));
      const upper = lower.map((l) => l + rng.int(C + 1 - l));
      const F = cap.reduce((s, k) => s + k, 0);
      const sumL = lower.reduce((s, x) => s + x, 0);
      const sumU = upper.reduce((s, x) => s + x, 0);
      if (sumL > F || sumU < F) continue;
      const best = bruteForceOptimum(C, E, w, cap, lower, upper);
      // Any starting potentials are valid: the start is then just a different top-k.
      const pi0 = t % 3 === 0 ? Float64Array.from({ length: E + 1 }, () => rng.int(7) - 3) : null;
      const got = coreCheck(C, E, w, cap, lower, upper, TINY, pi0);
      if (best === null) {
        infeasible++;
        expect(got).toBeNull();
      } else {
        expect(got).not.toBeNull();
        expect(got as number).toBeCloseTo(best, 9);
      }
    }
    expect(infeasible).toBeGreaterThan(20);
  });
});

describe("solveFlex on larger instances", () => {
  it("agrees across tunings and starting potentials (300 x 10, 2000 x 12)", () => {
    const rng = createRng(14);
    const sizes: [number, number][] = [
      [300, 10],
      [300, 10],
      [300, 10],
      [300, 10],
      [2000, 12],
      [2000, 12],
    ];
    for (const [C, E] of sizes) {
      for (const mode of [0, 3, 4]) {
        const cap = Array.from({ length: C }, () => 1 + rng.int(4));
        // mode 4: popular experts and clustered clients, the hard case for the start.
        const w =
          mode === 4
            ? Array.from(
                { length: C * E },
                (_, i) => ((i % E) % 4 === Math.floor(i / E) % 4 ? 0.6 : 0) + Math.exp(-(i % E) / 4) + 0.3 * rng.next(),
              )
            : fitness(rng, C * E, mode);
        const { lower, upper } = computeBounds(cap, E, { slack: rng.int(2) === 0 ? 0 : 0.2 });
        const ref = coreCheck(C, E, w, cap, lower, upper, DEFAULT_FLEX_TUNING);
        const tiny = coreCheck(C, E, w, cap, lower, upper, { ...TINY, sampleMinClients: 100 });
        const noSample = coreCheck(C, E, w, cap, lower, upper, { ...DEFAULT_FLEX_TUNING, sampleMinClients: Infinity });
        const pi0 = Float64Array.from({ length: E + 1 }, () => rng.next() - 0.5);
        const odd = coreCheck(C, E, w, cap, lower, upper, DEFAULT_FLEX_TUNING, pi0);
        for (const x of [tiny, noSample, odd]) expect(x as number).toBeCloseTo(ref as number, 7);
      }
    }
  });

  it("takes the subsample path on 6000 clients and matches the plain start", () => {
    const rng = createRng(15);
    const C = 6000;
    const E = 16;
    const cap = Array.from({ length: C }, () => 1 + rng.int(4));
    const w = Array.from({ length: C * E }, (_, i) => ((i % E) % 4 === Math.floor(i / E) % 4 ? 0.5 : 0) + rng.next());
    const { lower, upper } = computeBounds(cap, E);
    const sampled = coreCheck(C, E, w, cap, lower, upper, DEFAULT_FLEX_TUNING);
    const plain = coreCheck(C, E, w, cap, lower, upper, { ...DEFAULT_FLEX_TUNING, sampleMinClients: Infinity });
    expect(sampled as number).toBeCloseTo(plain as number, 7);
  });

  it("is deterministic and resolves all-equal fitness without moves", () => {
    const rng = createRng(16);
    const C = 500;
    const E = 7;
    const cap = Array.from({ length: C }, () => 1 + rng.int(3));
    const w = fitness(rng, C * E, 0);
    const a = solveFlex({ clients: C, experts: E, fitness: w, capacity: cap });
    const b = solveFlex({ clients: C, experts: E, fitness: w, capacity: cap });
    expect(b).toEqual(a);
    const { lower, upper } = computeBounds(cap, E);
    const flat = flexCore(C, E, new Float64Array(C * E).fill(1), Int32Array.from(cap), Int32Array.from(lower), Int32Array.from(upper));
    expect(flat?.stats.moves).toBe(0);
  });

  it("beats greedy's objective only by giving up nothing it could keep: flex >= any balanced assignment", () => {
    // Round-robin is feasible for the same bounds, so the optimum can be no worse.
    const rng = createRng(17);
    const C = 400;
    const E = 8;
    const cap = Array.from({ length: C }, () => 1 + rng.int(4));
    const w = fitness(rng, C * E, 3);
    const flex = solveFlex({ clients: C, experts: E, fitness: w, capacity: cap });
    let rr = 0;
    let pos = 0;
    const { upper } = computeBounds(cap, E);
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => (upper[b] as number) - (upper[a] as number) || a - b);
    for (let c = 0; c < C; c++) {
      for (let j = 0; j < (cap[c] as number); j++) {
        rr += w[c * E + (order[pos] as number)] as number;
        pos = (pos + 1) % E;
      }
    }
    expect(flex.objective).toBeGreaterThanOrEqual(rr - 1e-9);
  });
});

describe("flexCore's potentials certify optimality", () => {
  it("every client holds a top-k of w + pi and the T arcs satisfy complementary slackness", () => {
    const rng = createRng(18);
    for (let t = 0; t < 40; t++) {
      const C = 50 + rng.int(700);
      const E = 2 + rng.int(14);
      const cap = Array.from({ length: C }, () => 1 + rng.int(Math.min(4, E)));
      const w = fitness(rng, C * E, [0, 3, 3][t % 3] as number);
      const { lower, upper } = computeBounds(cap, E, { slack: [0, 0.1][t % 2] as number });
      const tuning = t % 4 === 0 ? { ...TINY, sampleMinClients: 40 } : DEFAULT_FLEX_TUNING;
      const res = flexCore(C, E, Float64Array.from(w), Int32Array.from(cap), Int32Array.from(lower), Int32Array.from(upper), null, tuning);
      expect(res).not.toBeNull();
      const { hold, pi } = res as NonNullable<typeof res>;
      const load = new Array<number>(E).fill(0);
      for (let c = 0; c < C; c++) {
        let minHeld = Infinity;
        let maxFree = -Infinity;
        for (let e = 0; e < E; e++) {
          const v = (w[c * E + e] as number) + (pi[e] as number);
          if (hold[c * E + e] === 1) {
            load[e] = (load[e] as number) + 1;
            minHeld = Math.min(minHeld, v);
          } else maxFree = Math.max(maxFree, v);
        }
        expect(minHeld).toBeGreaterThanOrEqual(maxFree - 1e-9);
      }
      const piT = pi[E] as number;
      for (let e = 0; e < E; e++) {
        const n = load[e] as number;
        // Room to grow means no reason to: pi_e >= pi_T; room to shrink: pi_e <= pi_T.
        if (n < (upper[e] as number)) expect(pi[e] as number).toBeGreaterThanOrEqual(piT - 1e-9);
        if (n > (lower[e] as number)) expect(pi[e] as number).toBeLessThanOrEqual(piT + 1e-9);
      }
    }
  });
});

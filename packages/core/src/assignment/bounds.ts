/**
 * Expert load bounds L_e <= n_e <= U_e and the historical deficit (paper section 3.2, reading (A)).
 *
 * With F = sum k_c slots and the fair share n = F/E:
 * - slack 0: loads are exact. Every expert gets floor(n); the r = F mod E spare slots go to the r experts
 *   with the largest deficit (ties: lower id), which get L = U = ceil(n). Rotating the spares this way keeps
 *   cumulative loads within 1 of each other (see updateDeficit).
 * - slack delta > 0: L = floor((1-delta) n), U = ceil((1+delta) n) for every expert.
 * U is clamped to C because a client holds an expert at most once.
 */
import { AssignmentError } from "./types.ts";
import type { Bounds } from "./types.ts";
import { checkCapacity, checkDeficit, checkSlack, isPositiveInt } from "./validate.ts";

// Guards floor/ceil against products like 1.1 * 10 = 11.000000000000002.
const ROUND_EPS = 1e-9;

/** Experts ordered by deficit, largest first (ties, within 1e-9: lower id). */
export function byDeficit(deficit: ArrayLike<number>, experts: number): number[] {
  const key = (e: number): number => Math.round((deficit[e] ?? 0) / ROUND_EPS);
  const order = Array.from({ length: experts }, (_, e) => e);
  return order.sort((a, b) => key(b) - key(a) || a - b);
}

/** Bounds from validated inputs: C clients with F slots in total. */
export function boundsFor(C: number, E: number, F: number, slack: number, deficit: ArrayLike<number>): Bounds {
  const lower = new Array<number>(E);
  const upper = new Array<number>(E);
  if (slack === 0) {
    const base = Math.floor(F / E);
    const spare = F - base * E;
    lower.fill(base);
    upper.fill(base);
    const order = byDeficit(deficit, E);
    for (let i = 0; i < spare; i++) {
      const e = order[i] as number;
      lower[e] = base + 1;
      upper[e] = base + 1;
    }
  } else {
    const n = F / E;
    const lo = Math.max(0, Math.floor((1 - slack) * n + ROUND_EPS));
    const hi = Math.min(C, Math.ceil((1 + slack) * n - ROUND_EPS));
    lower.fill(lo);
    upper.fill(hi);
  }
  return { lower, upper };
}

export function computeBounds(
  capacity: ArrayLike<number>,
  experts: number,
  opts: { slack?: number; deficit?: ArrayLike<number> } = {},
): Bounds {
  if (!isPositiveInt(experts)) throw new AssignmentError("INVALID_INPUT", `experts must be a positive integer, got ${String(experts)}`);
  if (capacity.length < 1) throw new AssignmentError("INVALID_INPUT", "capacity must list at least one client");
  const cap = checkCapacity(capacity, experts);
  let F = 0;
  for (let c = 0; c < cap.length; c++) F += cap[c] as number;
  const bounds = boundsFor(cap.length, experts, F, checkSlack(opts.slack), checkDeficit(opts.deficit, experts));
  checkBounds(bounds, cap.length, experts, F);
  return bounds;
}

/**
 * Validates explicit bounds (INVALID_INPUT) and the counting conditions for a solution to exist (INFEASIBLE):
 * sum L <= F <= sum min(U, C) and L_e <= C. Returns the bounds as typed arrays, U clamped to C.
 */
export function checkBounds(bounds: Bounds, C: number, E: number, F: number): { L: Int32Array; U: Int32Array } {
  const { lower, upper } = bounds;
  if (!Array.isArray(lower) || !Array.isArray(upper) || lower.length !== E || upper.length !== E) {
    throw new AssignmentError("INVALID_INPUT", `bounds must have lower and upper arrays of length ${E}`);
  }
  const L = new Int32Array(E);
  const U = new Int32Array(E);
  let sumL = 0;
  let sumU = 0;
  for (let e = 0; e < E; e++) {
    const lo = lower[e];
    const hi = upper[e];
    if (typeof lo !== "number" || typeof hi !== "number" || !Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < lo) {
      throw new AssignmentError(
        "INVALID_INPUT",
        `bounds for expert ${e} must be integers 0 <= lower <= upper, got [${String(lo)}, ${String(hi)}]`,
      );
    }
    if (lo > C) throw new AssignmentError("INFEASIBLE", `expert ${e} needs at least ${lo} holders but there are only ${C} clients`);
    L[e] = lo;
    U[e] = Math.min(hi, C);
    sumL += lo;
    sumU += U[e] as number;
  }
  if (sumL > F) throw new AssignmentError("INFEASIBLE", `the lower load bounds need ${sumL} slots but the clients offer only ${F}`);
  if (sumU < F) throw new AssignmentError("INFEASIBLE", `the upper load bounds admit only ${sumU} slots but the clients need ${F}`);
  return { L, U };
}

/**
 * Next historical deficit d_e + F/E - n_e (F = total slots this round).
 * With slack 0 the spare slots go to the largest deficits, so the deficits stay within an interval of
 * length 1: if max d - min d <= 1 before a round, the r chosen experts (the top r) drop by 1 relative to
 * the rest, so the new max is d_(r+1) and the new min d_(r) - 1. Cumulative loads then differ by at most 1.
 */
export function updateDeficit(deficit: ArrayLike<number>, load: ArrayLike<number>, totalSlots: number): number[] {
  if (deficit.length !== load.length) {
    throw new AssignmentError("INVALID_INPUT", `deficit has length ${deficit.length} but load has length ${load.length}`);
  }
  const E = load.length;
  if (E < 1) throw new AssignmentError("INVALID_INPUT", "at least one expert is needed");
  if (!Number.isFinite(totalSlots) || totalSlots < 0)
    throw new AssignmentError("INVALID_INPUT", `totalSlots must be finite and >= 0, got ${totalSlots}`);
  const fair = totalSlots / E;
  const out = new Array<number>(E);
  for (let e = 0; e < E; e++) {
    const d = deficit[e];
    const n = load[e];
    if (typeof d !== "number" || !Number.isFinite(d) || typeof n !== "number" || !Number.isFinite(n)) {
      throw new AssignmentError("INVALID_INPUT", `deficit and load for expert ${e} must be finite`);
    }
    out[e] = d + fair - n;
  }
  return out;
}

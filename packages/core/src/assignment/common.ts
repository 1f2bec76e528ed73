/** Helpers shared by the strategies: per-client top-k selection and the output shape. */
import type { Assignment, Bounds } from "./types.ts";

/**
 * Marks in `hold` (row c of a C*E byte matrix, all zero on entry) the k experts with the largest
 * v_e = w[c*E+e] + shift[e]; among equal v the lower expert id wins.
 * Returns the margin (k-th largest v) - ((k+1)-th largest v), +Infinity when k = E. Scratch buffers
 * `bi`/`bv` need length E + 1.
 */
export function selectTopK(
  w: Float64Array,
  shift: Float64Array,
  c: number,
  E: number,
  k: number,
  hold: Uint8Array,
  bi: Int32Array,
  bv: Float64Array,
): number {
  const row = c * E;
  if (k >= E) {
    hold.fill(1, row, row + E);
    return Infinity;
  }
  let n = 0;
  if (k <= E - k) {
    // Keep the k+1 best in bi/bv, sorted by v descending; an equal later (higher id) one goes behind.
    const m = k + 1;
    for (let e = 0; e < E; e++) {
      const x = (w[row + e] as number) + (shift[e] as number);
      let i: number;
      if (n < m) i = n++;
      else if (x > (bv[m - 1] as number)) i = m - 1;
      else continue;
      while (i > 0 && (bv[i - 1] as number) < x) {
        bv[i] = bv[i - 1] as number;
        bi[i] = bi[i - 1] as number;
        i--;
      }
      bv[i] = x;
      bi[i] = e;
    }
    for (let i = 0; i < k; i++) hold[row + (bi[i] as number)] = 1;
    return (bv[k - 1] as number) - (bv[k] as number);
  }
  // Large k: keep the E-k+1 worst instead, sorted by v ascending; an equal higher id counts as worse.
  const u = E - k;
  const m = u + 1;
  for (let e = 0; e < E; e++) {
    const x = (w[row + e] as number) + (shift[e] as number);
    let i: number;
    if (n < m) i = n++;
    else if (x <= (bv[m - 1] as number)) i = m - 1;
    else continue;
    while (i > 0 && (bv[i - 1] as number) >= x) {
      bv[i] = bv[i - 1] as number;
      bi[i] = bi[i - 1] as number;
      i--;
    }
    bv[i] = x;
    bi[i] = e;
  }
  hold.fill(1, row, row + E);
  for (let i = 0; i < u; i++) hold[row + (bi[i] as number)] = 0;
  return (bv[u] as number) - (bv[u - 1] as number);
}

/** Sum of w (C*E, row-major) over the held pairs, in client, then expert order. */
export function objectiveOf(w: Float64Array, E: number, experts: readonly (readonly number[])[]): number {
  let objective = 0;
  experts.forEach((list, c) => {
    for (const e of list) objective += w[c * E + e] as number;
  });
  return objective;
}

/** Turns a C*E hold matrix into the public Assignment. */
export function toAssignment(w: Float64Array, C: number, E: number, hold: Uint8Array, bounds?: Bounds): Assignment {
  const experts: number[][] = new Array<number[]>(C);
  const counts = new Int32Array(E);
  for (let c = 0; c < C; c++) {
    const row = c * E;
    const list: number[] = [];
    for (let e = 0; e < E; e++) {
      if (hold[row + e] !== 0) {
        list.push(e);
        counts[e] = (counts[e] as number) + 1;
      }
    }
    experts[c] = list;
  }
  const load = Array.from(counts);
  const objective = objectiveOf(w, E, experts);
  return bounds === undefined ? { experts, load, objective } : { experts, load, objective, bounds };
}

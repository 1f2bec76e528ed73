/**
 * Reference solvers: the exact optimum of tiny instances by exhaustive search (what the solvers are tested
 * against), and a checker for the invariants every strategy must meet.
 */
import type { Assignment } from "./types.ts";

/** All k-subsets of 0..E-1, ascending. */
export function subsets(E: number, k: number): number[][] {
  const out: number[][] = [];
  const cur: number[] = [];
  const rec = (from: number): void => {
    if (cur.length === k) {
      out.push(cur.slice());
      return;
    }
    for (let e = from; e <= E - (k - cur.length); e++) {
      cur.push(e);
      rec(e + 1);
      cur.pop();
    }
  };
  rec(0);
  return out;
}

/** Exhaustive optimum of the load-bounded problem; null when infeasible. Tiny instances only. */
export function bruteForceOptimum(
  C: number,
  E: number,
  w: ArrayLike<number>,
  cap: ArrayLike<number>,
  lower: ArrayLike<number>,
  upper: ArrayLike<number>,
): number | null {
  const options = Array.from({ length: C }, (_, c) => subsets(E, cap[c] as number));
  const load = new Array<number>(E).fill(0);
  // Slots still to place after client c, to prune branches that can no longer reach the lower bounds.
  const after = new Array<number>(C + 1).fill(0);
  for (let c = C - 1; c >= 0; c--) after[c] = (after[c + 1] as number) + (cap[c] as number);
  let best = -Infinity;
  const rec = (c: number, acc: number): void => {
    let short = 0;
    for (let e = 0; e < E; e++) short += Math.max(0, (lower[e] as number) - (load[e] as number));
    if (short > (after[c] as number)) return;
    if (c === C) {
      if (acc > best) best = acc;
      return;
    }
    for (const s of options[c] as number[][]) {
      if (s.some((e) => (load[e] as number) >= (upper[e] as number))) continue;
      let gain = 0;
      for (const e of s) {
        load[e] = (load[e] as number) + 1;
        gain += w[c * E + e] as number;
      }
      rec(c + 1, acc + gain);
      for (const e of s) load[e] = (load[e] as number) - 1;
    }
  };
  rec(0, 0);
  return best === -Infinity ? null : best;
}

/** Problems with an assignment's shape: capacities, distinct sorted ids, loads, objective. Empty when fine. */
export function assignmentProblems(a: Assignment, C: number, E: number, w: ArrayLike<number>, cap: ArrayLike<number>): string[] {
  const issues: string[] = [];
  if (a.experts.length !== C) issues.push(`expected ${C} clients, got ${a.experts.length}`);
  const load = new Array<number>(E).fill(0);
  let objective = 0;
  a.experts.forEach((list, c) => {
    if (list.length !== cap[c]) issues.push(`client ${c}: ${list.length} experts, capacity ${String(cap[c])}`);
    list.forEach((e, i) => {
      if (!Number.isInteger(e) || e < 0 || e >= E) issues.push(`client ${c}: bad expert ${e}`);
      if (i > 0 && e <= (list[i - 1] as number)) issues.push(`client ${c}: experts not strictly ascending`);
      load[e] = (load[e] as number) + 1;
      objective += w[c * E + e] as number;
    });
  });
  if (load.some((n, e) => n !== a.load[e])) issues.push(`load ${JSON.stringify(a.load)} != recount ${JSON.stringify(load)}`);
  if (Math.abs(objective - a.objective) > 1e-9 * (1 + Math.abs(objective))) issues.push(`objective ${a.objective} != recount ${objective}`);
  return issues;
}

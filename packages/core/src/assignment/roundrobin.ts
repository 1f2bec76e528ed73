/**
 * Round-robin baseline: balanced loads within the same bounds as flex, ignoring fitness.
 *
 * The experts are laid out on a cycle, those owed a spare slot (larger U) first; clients take consecutive
 * runs of k_c positions, so a client's experts are distinct (k_c <= E) and the F slots cover every expert
 * floor(F/E) times plus once more for the first F mod E positions. The run starts rotate with the round
 * (client order and the cycle within each group), so a client's experts change from round to round.
 */
import { defineStrategy } from "./strategy.ts";
import { boundsFor, checkBounds } from "./bounds.ts";
import { toAssignment } from "./common.ts";
import { AssignmentError } from "./types.ts";
import type { Assignment, AssignmentProblem } from "./types.ts";
import { prepareProblem } from "./validate.ts";

export function solveRoundRobin(problem: AssignmentProblem, round = 0): Assignment {
  const p = prepareProblem(problem);
  const { C, E, w, cap, F } = p;
  if (!Number.isInteger(round) || round < 0) throw new AssignmentError("INVALID_INPUT", `round must be an integer >= 0, got ${round}`);
  const bounds = boundsFor(C, E, F, p.slack, p.deficit);
  const { L, U } = checkBounds(bounds, C, E, F);
  const base = Math.floor(F / E);
  const spare = F - base * E;
  // Experts with the most room come first; each group rotates with the round.
  const sorted = Array.from({ length: E }, (_, e) => e).sort((a, b) => (U[b] as number) - (U[a] as number) || a - b);
  const top = sorted.slice(0, spare);
  const rest = sorted.slice(spare);
  const rot = (xs: number[]): number[] => (xs.length === 0 ? xs : xs.map((_, i) => xs[(i + round) % xs.length] as number));
  const cycle = [...rot(top), ...rot(rest)];
  for (let i = 0; i < E; i++) {
    const e = cycle[i] as number;
    const n = base + (i < spare ? 1 : 0);
    if (n < (L[e] as number) || n > (U[e] as number)) {
      throw new AssignmentError("INFEASIBLE", `round-robin loads do not fit the bounds of expert ${e}`);
    }
  }
  const hold = new Uint8Array(C * E);
  let pos = 0;
  for (let j = 0; j < C; j++) {
    const c = (j + round) % C;
    const k = cap[c] as number;
    for (let t = 0; t < k; t++) {
      hold[c * E + (cycle[pos] as number)] = 1;
      pos = pos + 1 === E ? 0 : pos + 1;
    }
  }
  return toAssignment(w, C, E, hold, bounds);
}

export const roundrobin = defineStrategy({
  name: "roundrobin",
  summary: "balanced loads within flex's bounds, fitness ignored, rotating with the round",
  solve: (p, ctx) => solveRoundRobin(p, ctx.round),
});

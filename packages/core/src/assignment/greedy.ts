/** Greedy baseline (paper section 3.3): each client takes its own top-k_c, with no load constraint. */
import { defineStrategy } from "./strategy.ts";
import { selectTopK, toAssignment } from "./common.ts";
import type { Assignment, AssignmentProblem } from "./types.ts";
import { prepareProblem } from "./validate.ts";

/** Each client's k_c highest-fitness experts; ties go to the lower expert id. */
export function solveGreedy(problem: AssignmentProblem): Assignment {
  const { C, E, w, cap } = prepareProblem(problem);
  const hold = new Uint8Array(C * E);
  const bi = new Int32Array(E + 1);
  const bv = new Float64Array(E + 1);
  const zero = new Float64Array(E);
  for (let c = 0; c < C; c++) selectTopK(w, zero, c, E, cap[c] as number, hold, bi, bv);
  return toAssignment(w, C, E, hold);
}

export const greedy = defineStrategy({
  name: "greedy",
  summary: "each client its top-k_c experts by fitness, no load constraint",
  solve: (p) => solveGreedy(p),
});

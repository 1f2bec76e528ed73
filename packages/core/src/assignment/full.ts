/** Full-MoE reference: every client holds every expert (capacity is ignored; the upper reference point). */
import { toAssignment } from "./common.ts";
import { defineStrategy } from "./strategy.ts";
import type { Assignment, AssignmentProblem } from "./types.ts";
import { prepareProblem } from "./validate.ts";

export function solveFull(problem: AssignmentProblem): Assignment {
  const { C, E, w } = prepareProblem({ ...problem, capacity: Array.from({ length: problem.clients }, () => problem.experts) });
  return toAssignment(w, C, E, new Uint8Array(C * E).fill(1));
}

export const full = defineStrategy({
  name: "full",
  summary: "every client holds all experts (capacity ignored): the full-MoE reference",
  holdsAll: true,
  solve: (p) => solveFull(p),
});

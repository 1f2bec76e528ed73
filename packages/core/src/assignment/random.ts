/** Random baseline: k_c experts drawn uniformly without replacement, reproducible from the Rng. */
import { defineStrategy } from "./strategy.ts";
import type { Rng } from "../rng.ts";
import { toAssignment } from "./common.ts";
import { AssignmentError } from "./types.ts";
import type { Assignment, AssignmentProblem } from "./types.ts";
import { prepareProblem } from "./validate.ts";

export function solveRandom(problem: AssignmentProblem, rng: Rng | undefined): Assignment {
  const { C, E, w, cap } = prepareProblem(problem);
  if (rng === undefined || typeof rng.int !== "function") throw new AssignmentError("INVALID_INPUT", "the random strategy needs an rng");
  const hold = new Uint8Array(C * E);
  const perm = new Int32Array(E);
  for (let e = 0; e < E; e++) perm[e] = e;
  for (let c = 0; c < C; c++) {
    // Partial Fisher-Yates: the first k entries are a uniform k-subset whatever order perm starts in.
    const k = cap[c] as number;
    for (let j = 0; j < k; j++) {
      const i = j + rng.int(E - j);
      const t = perm[i] as number;
      perm[i] = perm[j] as number;
      perm[j] = t;
      hold[c * E + t] = 1;
    }
  }
  return toAssignment(w, C, E, hold);
}

export const random = defineStrategy({
  name: "random",
  summary: "k_c experts drawn uniformly per client (seeded)",
  solve: (p, ctx) => solveRandom(p, ctx.rng),
});

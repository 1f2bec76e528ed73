/** Expert assignment strategies: FLEX-MoE's exact load-bounded solver and the baselines. */
import { solveFlex } from "./flex.ts";
import { solveGreedy } from "./greedy.ts";
import { solveRandom } from "./random.ts";
import { solveRoundRobin } from "./roundrobin.ts";
import { AssignmentError } from "./types.ts";
import type { AssignOptions, Assignment, AssignmentProblem, StrategyName } from "./types.ts";

export * from "./types.ts";
export { computeBounds, updateDeficit } from "./bounds.ts";
export { solveFlex } from "./flex.ts";
export type { FlexOptions } from "./flex.ts";
export { solveGreedy } from "./greedy.ts";
export { solveRandom } from "./random.ts";
export { solveRoundRobin } from "./roundrobin.ts";

/** Runs one strategy; throws AssignmentError (INVALID_INPUT or INFEASIBLE). */
export function assign(problem: AssignmentProblem, strategy: StrategyName, opts: AssignOptions = {}): Assignment {
  switch (strategy) {
    case "flex":
      return solveFlex(problem);
    case "greedy":
      return solveGreedy(problem);
    case "random":
      return solveRandom(problem, opts.rng);
    case "roundrobin":
      return solveRoundRobin(problem, opts.round ?? 0);
    default:
      throw new AssignmentError("INVALID_INPUT", `unknown strategy '${String(strategy)}'`);
  }
}

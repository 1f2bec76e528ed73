/** Expert assignment strategies: FLEX-MoE's exact load-bounded solver and the baselines. */
import { builtinStrategies } from "./registry.ts";
import type { StrategyRegistry } from "./strategy.ts";
import type { AssignOptions, Assignment, AssignmentProblem } from "./types.ts";

export * from "./types.ts";
export * from "./strategy.ts";
export * from "./registry.ts";
export { computeBounds, updateDeficit } from "./bounds.ts";
export { solveFlex } from "./flex.ts";
export type { FlexOptions } from "./flex.ts";
export { solveGreedy } from "./greedy.ts";
export { solveRandom } from "./random.ts";
export { solveRoundRobin } from "./roundrobin.ts";
export { solveFull } from "./full.ts";

/**
 * Runs one strategy by name; throws AssignmentError (INVALID_INPUT, also for an unknown name, or
 * INFEASIBLE). A holds-all strategy ignores the capacities.
 */
export function assign(
  problem: AssignmentProblem,
  strategy: string,
  opts: AssignOptions = {},
  registry: StrategyRegistry = builtinStrategies,
): Assignment {
  const s = registry.get(strategy);
  return s.solve(problem, { ...(opts.rng && { rng: opts.rng }), round: opts.round ?? 0 });
}
export { assignmentProblems, bruteForceOptimum } from "./reference.ts";

/**
 * The strategies a run can name. A new strategy is one file (export a `defineStrategy({...})`) plus one
 * line in STRATEGIES; the name union, the zod enum (protocol/schemas.ts) and the CLI help derive from it.
 */
import { flex } from "./flex.ts";
import { full } from "./full.ts";
import { greedy } from "./greedy.ts";
import { random } from "./random.ts";
import { roundrobin } from "./roundrobin.ts";
import { strategyRegistry } from "./strategy.ts";

export const STRATEGIES = [flex, greedy, random, roundrobin, full] as const;

export type StrategyName = (typeof STRATEGIES)[number]["name"];

export const builtinStrategies = strategyRegistry(STRATEGIES);

/** The names as a non-empty tuple (what z.enum wants). */
export const STRATEGY_NAMES = builtinStrategies.names as readonly [StrategyName, ...StrategyName[]];

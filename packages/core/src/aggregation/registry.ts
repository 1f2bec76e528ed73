/**
 * The aggregation rules a run can name. A new rule is one file (export a `defineRule({...})`) plus one
 * line in AGGREGATION_RULES; the name union, the zod enum and the CLI help derive from it.
 */
import { mean } from "./mean.ts";
import { median } from "./median.ts";
import type { AggregationRule } from "./rule.ts";
import { trimmed } from "./trimmed.ts";

export const AGGREGATION_RULES = [mean, trimmed, median] as const;

export type AggregatorName = (typeof AGGREGATION_RULES)[number]["name"];

export const AGGREGATOR_NAMES = AGGREGATION_RULES.map((r) => r.name) as unknown as readonly [AggregatorName, ...AggregatorName[]];

export interface RuleRegistry<N extends string = string> {
  readonly names: readonly N[];
  has(name: string): name is N;
  /** @throws RangeError for a name not in the registry. */
  get(name: string): AggregationRule;
}

export function ruleRegistry<const L extends readonly AggregationRule[]>(list: L): RuleRegistry<L[number]["name"]> {
  type N = L[number]["name"];
  const byName = new Map<string, AggregationRule>();
  for (const r of list) {
    if (byName.has(r.name)) throw new RangeError(`aggregate: rule '${r.name}' registered twice`);
    byName.set(r.name, r);
  }
  const names = list.map((r) => r.name) as N[];
  return {
    names,
    has: (name: string): name is N => byName.has(name),
    get(name: string): AggregationRule {
      const r = byName.get(name);
      if (r === undefined) throw new RangeError(`aggregate: unknown rule '${name}' (known: ${names.join(", ")})`);
      return r;
    },
  };
}

export const builtinRules = ruleRegistry(AGGREGATION_RULES);

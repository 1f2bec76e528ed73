/** What an assignment strategy is, and how strategies are looked up by name (see registry.ts). */
import type { Rng } from "../rng.ts";
import { AssignmentError } from "./types.ts";
import type { Assignment, AssignmentProblem } from "./types.ts";

/** What a strategy may use besides the problem: seeded randomness and the round number. */
export interface StrategyContext {
  /** Required by strategies that draw (random). */
  rng?: Rng;
  round: number;
}

export interface Strategy<N extends string = string> {
  readonly name: N;
  /** One line for CLI help and docs. */
  readonly summary: string;
  /**
   * Every participant holds all E experts whatever its capacity (the full-MoE reference point);
   * the engine then solves with k_c = E.
   */
  readonly holdsAll?: boolean;
  solve(problem: AssignmentProblem, ctx: StrategyContext): Assignment;
}

/** Keeps the literal name type, so a registry's name union derives from its list. */
export const defineStrategy = <N extends string>(s: Strategy<N>): Strategy<N> => s;

export interface StrategyRegistry<N extends string = string> {
  readonly names: readonly N[];
  has(name: string): name is N;
  /** @throws AssignmentError INVALID_INPUT for a name not in the registry. */
  get(name: string): Strategy;
}

/** A registry over `list` (names must be unique). */
export function strategyRegistry<const L extends readonly Strategy[]>(list: L): StrategyRegistry<L[number]["name"]> {
  type N = L[number]["name"];
  const byName = new Map<string, Strategy>();
  for (const s of list) {
    if (byName.has(s.name)) throw new AssignmentError("INVALID_INPUT", `strategy '${s.name}' registered twice`);
    byName.set(s.name, s);
  }
  const names = list.map((s) => s.name) as N[];
  return {
    names,
    has: (name: string): name is N => byName.has(name),
    get(name: string): Strategy {
      const s = byName.get(name);
      if (s === undefined) throw new AssignmentError("INVALID_INPUT", `unknown strategy '${name}' (known: ${names.join(", ")})`);
      return s;
    },
  };
}

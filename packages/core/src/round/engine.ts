/**
 * The FLEX-MoE round, once: pure functions over the federation's state, with no timers, sockets,
 * clocks or I/O. The live coordinator and the simulator are drivers around them (Flower's lesson:
 * the same server logic in simulation and deployment), so what the experiments measure is what runs.
 *
 *   planRound:  Q rows of the participants + capacities + deficit  -> assignment (the strategy)
 *   applyRound: the participants' updates -> aggregated backbone and experts, Q (EMA), deficit,
 *               cumulative routed load, and one round record
 */
import { aggregateRound, type AggregateOptions, type AggregatedRound, type ClientRoundUpdate } from "../aggregation/aggregate.ts";
import type { RuleRegistry } from "../aggregation/registry.ts";
import { updateDeficit } from "../assignment/bounds.ts";
import { objectiveOf } from "../assignment/common.ts";
import { builtinStrategies } from "../assignment/registry.ts";
import type { StrategyRegistry } from "../assignment/strategy.ts";
import type { Bounds } from "../assignment/types.ts";
import { FitnessMatrix, type FitnessKind, type ZeroUsageRule } from "../fitness.ts";
import { CumulativeLoad, holdersLoad, loadStats, routedLoad } from "../metrics.ts";
import type { DashboardRound } from "../protocol/events.ts";
import { streamRng, type Rng } from "../rng.ts";
import type { ExpertFeedback, NamedTensor } from "../types.ts";
import type { ExpertTensors } from "./layout.ts";
import { combinePartials, PartialAccumulator, streams } from "./partial.ts";

/** The knobs of the round itself (the drivers add their own: timeouts, quorum, training). */
export interface EngineConfig {
  /** A name in the strategy registry. */
  readonly strategy: string;
  readonly fitness: FitnessKind;
  /** EMA rate of Q in (0, 1]. */
  readonly beta: number;
  /** Load-bound slack delta >= 0. */
  readonly slack: number;
  readonly aggregation: {
    /** A name in the rule registry. */
    readonly rule: string;
    /** Trimmed mean's cut per end. */
    readonly trim: number;
    /** Fixed L2 bound on each delta; 0 = off. */
    readonly clipNorm: number;
    /** Adaptive bound: this many times the round's lower-median delta norm (per kind: backbone, experts); 0 = off. */
    readonly clipFactor: number;
  };
  /**
   * Consecutive rounds a client may hold the same expert before it must leave it for a round (0 = no
   * limit). Self-reported feedback cannot buy an expert indefinitely, and a frozen assignment is revisited.
   */
  readonly maxHold?: number;
  /**
   * Per round, the Q of each answering client's unassigned experts moves this fraction of the way back
   * to q0 (exploration of stale pairs; 0 = off). @default 0
   */
  readonly qDecay?: number;
  /** Q of an assigned expert that got no routed sample: kept, or scored 0. @default "keep" */
  readonly zeroUsage?: ZeroUsageRule;
}

/** Where names are looked up; tests and extensions may pass their own. */
export interface EngineRegistries {
  strategies?: StrategyRegistry;
  rules?: RuleRegistry;
}

/** Everything the round engine reads and writes. Never mutated: applyRound returns a new one. */
export interface EngineState {
  /** Completed (applied) rounds. */
  readonly round: number;
  readonly backbone: readonly NamedTensor[];
  readonly experts: readonly (readonly NamedTensor[])[];
  readonly fitness: FitnessMatrix;
  readonly deficit: readonly number[];
  /** Samples routed per expert, summed over the applied rounds. */
  readonly cumulativeRouted: readonly number[];
  /**
   * Per client, the consecutive applied rounds up to now in which it held (and answered for) each
   * expert; a client without a streak is absent. What {@link EngineConfig.maxHold} is checked against.
   */
  readonly holding: Readonly<Record<string, readonly number[]>>;
}

/** A fresh run's state from the initial weights (seeded by the caller: the model package's init). */
export function initialState(weights: { backbone: NamedTensor[]; experts: NamedTensor[][] }, q0: number): EngineState {
  const E = weights.experts.length;
  return {
    round: 0,
    backbone: weights.backbone,
    experts: weights.experts,
    fitness: new FitnessMatrix(E, q0),
    deficit: new Array<number>(E).fill(0),
    cumulativeRouted: new Array<number>(E).fill(0),
    holding: {},
  };
}

/** The state without these clients' Q rows and streaks (a driver forgetting pruned clients). */
export function forgetClients(state: EngineState, ids: readonly string[]): EngineState {
  if (ids.length === 0) return state;
  const fitness = state.fitness.clone();
  const holding = { ...state.holding };
  for (const id of ids) {
    fitness.remove(id);
    delete holding[id];
  }
  return { ...state, fitness, holding };
}

/**
 * A pair whose streak reached the limit scores this, far below any sum of real scores in [0, 1], so
 * the exact solver avoids it whenever the bounds allow (a client holding every expert keeps them all).
 */
const BLOCKED = -1e6;

export interface Participant {
  id: string;
  /** k_c, already bounded by the driver. */
  capacity: number;
}

/** The decision of one round: who holds which experts. Plain data (JSON-safe). */
export interface RoundPlan {
  round: number;
  strategy: string;
  /** Participant ids in canonical order ({@link compareClientIds}). */
  participants: string[];
  /** k_c per participant, as solved (E for a holds-all strategy). */
  capacities: number[];
  /** Experts per participant, ascending. */
  experts: number[][];
  /** Holders per expert. */
  load: number[];
  bounds: Bounds | null;
  objective: number;
  deficitBefore: number[];
}

/** One participant's answer, after the driver checked it ({@link admitUpdate} does that for frames). */
export interface ClientUpdate {
  clientId: string;
  /** |D_c|: the backbone's weight. */
  numSamples: number;
  backbone: NamedTensor[];
  /** New weights per held expert, in the plan's order, with the expert's weight (usage). */
  experts: (ExpertTensors & { usage: number })[];
  feedback: ExpertFeedback[];
  /** Personalized model on the held-out split, before local training. */
  evalAccuracy: number;
  evalLoss: number;
  evalSamples: number;
  trainLoss: number;
}

/** One applied round, in the one metric vocabulary both drivers report. */
export interface RoundResult extends DashboardRound {
  /** Experts per participant (all of the plan's participants, answered or not). */
  assigned: Record<string, number[]>;
  capacities: Record<string, number>;
  bounds: Bounds | null;
  deficitBefore: number[];
  /** Sum of Q over the assigned pairs, as solved. */
  objective: number;
  /** Mean local training loss over the updates. */
  trainLoss: number | null;
  /** CV of the cumulative routed samples after this round (level-2 load, cumulative). */
  cvRoutedCumulative: number;
  /** max/mean - 1 of the holders (MaxVio). */
  maxVio: number;
  /** Experts without a holder. */
  starved: number;
  feedback: Record<string, ExpertFeedback[]>;
}

/** c2 before c10: ids are a prefix and a counter; otherwise plain string order. */
export function compareClientIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** The stream a strategy draws from in round `round` (stateless, so a restart draws the same). */
export function assignRng(seed: number, round: number): Rng {
  return streamRng(seed, `assign:${round}`);
}

/**
 * Solves round state.round + 1 for the participants with the configured strategy, on their Q rows,
 * capacities, the load bounds and the historical deficit.
 * @throws AssignmentError (INVALID_INPUT, INFEASIBLE), also for an unknown strategy.
 */
export function planRound(
  state: EngineState,
  participants: readonly Participant[],
  config: EngineConfig,
  rng: Rng,
  registries: EngineRegistries = {},
): RoundPlan {
  const strategy = (registries.strategies ?? builtinStrategies).get(config.strategy);
  const E = state.experts.length;
  const sorted = [...participants].sort((a, b) => compareClientIds(a.id, b.id));
  const ids = sorted.map((p) => p.id);
  const capacities = sorted.map((p) => (strategy.holdsAll ? E : p.capacity));
  const round = state.round + 1;
  const fitness = state.fitness.toDense(ids);
  const blocked = strategy.holdsAll ? [] : blockedPairs(state, ids, E, config.maxHold ?? 0);
  const scored = blocked.length === 0 ? fitness : Float64Array.from(fitness);
  for (const idx of blocked) scored[idx] = BLOCKED;
  const a = strategy.solve(
    {
      clients: ids.length,
      experts: E,
      fitness: scored,
      capacity: capacities,
      slack: config.slack,
      deficit: state.deficit,
    },
    { rng, round },
  );
  return {
    round,
    strategy: strategy.name,
    participants: ids,
    capacities,
    experts: a.experts.map((l) => [...l]),
    load: [...a.load],
    bounds: a.bounds ? { lower: [...a.bounds.lower], upper: [...a.bounds.upper] } : null,
    // Sum of the real Q over the chosen pairs (the blocking penalty is not fitness).
    objective: blocked.length === 0 ? a.objective : objectiveOf(fitness, E, a.experts),
    deficitBefore: [...state.deficit],
  };
}

/** Row-major indices (client * E + expert) of the pairs whose streak reached `maxHold`. */
function blockedPairs(state: EngineState, ids: readonly string[], E: number, maxHold: number): number[] {
  if (!(maxHold > 0)) return [];
  const out: number[] = [];
  ids.forEach((id, c) => {
    const streak = state.holding[id];
    if (streak) for (let e = 0; e < E; e++) if ((streak[e] ?? 0) >= maxHold) out.push(c * E + e);
  });
  return out;
}

/** Streaks after a round: +1 for each pair held by a client that answered, gone for everything else. */
function nextHolding(state: EngineState, plan: RoundPlan, answered: readonly ClientReport[], E: number): Record<string, number[]> {
  const holding: Record<string, number[]> = {};
  for (const u of answered) {
    const before = state.holding[u.clientId];
    const row = new Array<number>(E).fill(0);
    for (const e of heldBy(plan, u.clientId) ?? []) row[e] = (before?.[e] ?? 0) + 1;
    holding[u.clientId] = row;
  }
  return holding;
}

const heldIndex = new WeakMap<RoundPlan, Map<string, number>>();

/** The experts a participant holds in the plan, or undefined for a non-participant. */
export function heldBy(plan: RoundPlan, clientId: string): readonly number[] | undefined {
  let idx = heldIndex.get(plan);
  if (idx === undefined) {
    idx = new Map(plan.participants.map((id, i) => [id, i]));
    heldIndex.set(plan, idx);
  }
  const i = idx.get(clientId);
  return i === undefined ? undefined : plan.experts[i];
}

export function aggregateOptionsOf(config: EngineConfig, rules?: RuleRegistry): AggregateOptions {
  const a = config.aggregation;
  return {
    rule: a.rule,
    trim: a.trim,
    ...(a.clipNorm > 0 && { clipNorm: a.clipNorm }),
    ...(a.clipFactor > 0 && { clipFactor: a.clipFactor }),
    ...(rules && { rules }),
  };
}

/** What the engine needs of an update besides its weights: the bookkeeping of Q, metrics and streaks. */
export type ClientReport = Omit<ClientUpdate, "backbone" | "experts">;

/** Reports in the plan's participant order. @throws RangeError on a non-participant or a duplicate. */
function inPlanOrder<T extends { clientId: string }>(plan: RoundPlan, items: readonly T[]): T[] {
  const order = new Map(plan.participants.map((id, i) => [id, i]));
  const seen = new Set<string>();
  for (const u of items) {
    if (!order.has(u.clientId)) throw new RangeError(`round ${plan.round}: update from ${u.clientId}, not a participant`);
    if (seen.has(u.clientId)) throw new RangeError(`round ${plan.round}: two updates from ${u.clientId}`);
    seen.add(u.clientId);
  }
  return [...items].sort((a, b) => (order.get(a.clientId) as number) - (order.get(b.clientId) as number));
}

/**
 * Applies a round: aggregation (backbone by samples over all updates, each expert by usage over its
 * holders; unheld experts keep their weights), then {@link settleRound}. Updates are taken in the plan's
 * participant order whatever order they arrived in, so the result does not depend on the network.
 * @throws RangeError on an update from a non-participant, a duplicate, or experts that differ from the plan's.
 */
export function applyRound(
  state: EngineState,
  plan: RoundPlan,
  updates: readonly ClientUpdate[],
  config: EngineConfig,
  registries: EngineRegistries = {},
): { state: EngineState; record: RoundResult } {
  const sorted = inPlanOrder(plan, updates);
  for (const u of sorted) {
    const held = heldBy(plan, u.clientId) as readonly number[];
    if (u.experts.length !== held.length || u.experts.some((x, k) => x.expert !== held[k]))
      throw new RangeError(
        `round ${plan.round}: ${u.clientId} sent experts [${u.experts.map((x) => x.expert).join(",")}], holds [${held.join(",")}]`,
      );
  }
  const opts = aggregateOptionsOf(config, registries.rules);
  const folded = sorted.map((u) => ({ backbone: u.backbone, numSamples: u.numSamples, experts: u.experts }));
  // The mean (with at most fixed clipping) goes through the same fold a streaming receiver uses, so a
  // coordinator that adds each update as it arrives computes what this computes.
  const next = streams(opts) ? streamedMean(state, folded, opts) : aggregateRound(state.backbone, state.experts, folded, opts);
  return settleRound(state, plan, sorted, next, config);
}

/** The weighted mean by {@link PartialAccumulator}: float64 sums, one pass per update. */
function streamedMean(state: EngineState, updates: readonly ClientRoundUpdate[], opts: AggregateOptions): AggregatedRound {
  const acc = new PartialAccumulator(state.backbone, state.experts, opts);
  for (const u of updates) acc.add(u);
  return combinePartials(state.backbone, state.experts, [acc.finish()], "mean");
}

/**
 * The rest of a round once its weights are aggregated (by {@link applyRound} in one process, or from
 * edges' partials by a round leader): Q's EMA for the assigned pairs, the deficit with the plan's
 * holder loads, the cumulative routed load, the streaks and the record.
 * @throws RangeError on a report from a non-participant or a duplicate.
 */
export function settleRound(
  state: EngineState,
  plan: RoundPlan,
  reports: readonly ClientReport[],
  next: AggregatedRound,
  config: EngineConfig,
): { state: EngineState; record: RoundResult } {
  const E = state.experts.length;
  const sorted = inPlanOrder(plan, reports);
  const fitness = state.fitness.clone();
  for (const u of sorted) {
    fitness.update(u.clientId, heldBy(plan, u.clientId) ?? [], u.feedback, {
      beta: config.beta,
      fitness: config.fitness,
      ...(config.zeroUsage && { zeroUsage: config.zeroUsage }),
    });
    fitness.decayUnassigned(u.clientId, heldBy(plan, u.clientId) ?? [], config.qDecay ?? 0);
  }
  const totalSlots = plan.load.reduce((a, b) => a + b, 0);
  const deficit = updateDeficit(state.deficit, plan.load, totalSlots);
  const feedback = sorted.map((u) => u.feedback);
  const routed = routedLoad(feedback, E);
  const cumulative = CumulativeLoad.from(state.cumulativeRouted, state.round);
  cumulative.add(routed);

  const evalN = sorted.reduce((s, u) => s + u.evalSamples, 0);
  const wmean = (f: (u: ClientReport) => number): number | null =>
    evalN > 0 ? sorted.reduce((s, u) => s + f(u) * u.evalSamples, 0) / evalN : null;
  const holders = holdersLoad(plan.experts, E);
  const hs = loadStats(holders);
  const record: RoundResult = {
    round: plan.round,
    strategy: plan.strategy,
    participants: sorted.length,
    accuracy: wmean((u) => u.evalAccuracy),
    loss: wmean((u) => u.evalLoss),
    trainLoss: sorted.length > 0 ? sorted.reduce((s, u) => s + u.trainLoss, 0) / sorted.length : null,
    load: holders,
    cv: hs.cv,
    routed,
    cvRouted: loadStats(routed).cv,
    cvRoutedCumulative: cumulative.stats().cv,
    maxVio: hs.mean === 0 ? 0 : hs.maxOverMean - 1,
    starved: hs.starved,
    assigned: Object.fromEntries(plan.participants.map((id, i) => [id, [...(plan.experts[i] as number[])]])),
    capacities: Object.fromEntries(plan.participants.map((id, i) => [id, plan.capacities[i] as number])),
    bounds: plan.bounds,
    deficitBefore: [...plan.deficitBefore],
    objective: plan.objective,
    feedback: Object.fromEntries(sorted.map((u) => [u.clientId, u.feedback.map((f) => ({ ...f }))])),
  };
  return {
    state: {
      round: plan.round,
      backbone: next.backbone,
      experts: next.experts,
      fitness,
      deficit,
      cumulativeRouted: cumulative.total(),
      holding: nextHolding(state, plan, sorted, E),
    },
    record,
  };
}

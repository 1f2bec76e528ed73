/**
 * Server-side aggregation of uploaded weights (paper section 4, phase 4). Clients upload their new
 * local weights, not deltas. The backbone is averaged over all participants by sample count; each
 * expert only over its holders, by usage. Robustness (anchors-moe section 4.3): per-update L2
 * clipping of the delta, for every rule, and the rule itself (registry.ts: mean, trimmed, median).
 */
import type { NamedTensor } from "../types.ts";
import { checkCompatible, copyTensor, deltaSquaredNorm } from "./kernels.ts";
import { builtinRules, type RuleRegistry } from "./registry.ts";
import type { AggregationRule } from "./rule.ts";

export interface AggregateOptions {
  /** A registered rule name or a rule. @default "mean" */
  rule?: string | AggregationRule;
  /** Clip each update's delta (local - global, over all its tensors together) to this L2 norm (> 0); absent = off. */
  clipNorm?: number;
  /**
   * Adaptive clipping (aggregateRound): each delta is also clipped to clipFactor x the lower median of the
   * round's delta norms of its kind (all backbone deltas; all expert deltas, whichever expert), so one
   * client's step is bounded by what the others' steps look like, even on an expert it holds alone.
   * 0/absent = off.
   */
  clipFactor?: number;
  /** Fraction in [0, 0.5] cut from each end by the trimmed rule. @default 0.2 */
  trim?: number;
  /** Where rule names are looked up. @default the built-in rules */
  rules?: RuleRegistry;
}

/** One client's upload for one group of tensors (backbone or one expert), with its weight. */
export interface WeightedUpdate {
  tensors: readonly NamedTensor[];
  weight: number;
  /** This update's own clip bound (adaptive clipping), combined with clipNorm by the minimum. */
  clip?: number;
}

/** One client's round upload for {@link aggregateRound}. */
export interface ClientRoundUpdate {
  backbone: readonly NamedTensor[];
  /** |D_c|: the backbone weight. */
  numSamples: number;
  /** New weights of each assigned expert with its usage u_{c,e} (the expert's weight). */
  experts: readonly { expert: number; tensors: readonly NamedTensor[]; usage: number }[];
}

/** The aggregated global model after a round. */
export interface AggregatedRound {
  backbone: NamedTensor[];
  experts: NamedTensor[][];
}

function resolveRule(opts: AggregateOptions): AggregationRule {
  const r = opts.rule ?? "mean";
  return typeof r === "string" ? (opts.rules ?? builtinRules).get(r) : r;
}

/**
 * Aggregates clients' new local weights into fresh global tensors; `global` is never mutated.
 * Updates with weight <= 0 (or non-finite) are skipped; with none left the result is a copy of
 * `global` (an expert nobody trained keeps its weights).
 *
 * clipNorm: each update is replaced by global + min(1, clipNorm / ||local - global||) (local - global),
 * the norm taken over all of the update's tensors together. Then the rule combines the values.
 *
 * @throws RangeError when an update's tensors do not match global's names, shapes and sizes in order, or on
 *   invalid options.
 */
export function aggregateTensors(
  global: readonly NamedTensor[],
  updates: readonly WeightedUpdate[],
  opts: AggregateOptions = {},
): NamedTensor[] {
  const clipNorm = opts.clipNorm;
  const trim = opts.trim ?? 0.2;
  if (clipNorm !== undefined && !(Number.isFinite(clipNorm) && clipNorm > 0)) {
    throw new RangeError(`aggregate: clipNorm must be a finite number > 0, got ${clipNorm}`);
  }
  if (!(trim >= 0 && trim <= 0.5)) throw new RangeError(`aggregate: trim must be in [0, 0.5], got ${trim}`);
  const rule = resolveRule(opts);
  for (const u of updates) checkCompatible(global, u.tensors);

  const active = updates.filter((u) => Number.isFinite(u.weight) && u.weight > 0);
  const n = active.length;
  if (n === 0) return global.map(copyTensor);

  // scale[i] shrinks update i's delta: the value used is g + scale[i] * (x - g).
  const scale = new Float64Array(n).fill(1);
  let clipped = false;
  active.forEach((u, i) => {
    const bound = Math.min(clipNorm ?? Infinity, u.clip ?? Infinity);
    if (!(bound < Infinity)) return;
    clipped = true;
    const norm = Math.sqrt(deltaSquaredNorm(global, u.tensors));
    if (norm > bound) scale[i] = bound / norm;
  });
  const total = active.reduce((s, u) => s + u.weight, 0);
  const ws = Float64Array.from(active, (u, i) => (u.weight / total) * (scale[i] as number));
  return global.map((g, t) => ({
    name: g.name,
    shape: [...g.shape],
    data: rule.combine({ g: g.data, xs: active.map((u) => (u.tensors[t] as NamedTensor).data), ws, scale, clipped, params: { trim } }),
  }));
}

/**
 * One round of FLEX-MoE aggregation: the backbone averaged over all participants weighted by
 * numSamples, and each expert e averaged over the clients that held it weighted by usage. An expert
 * with no holder (or zero total usage) keeps its weights. `opts` applies to each group separately
 * (so clipping bounds a client's backbone delta and each of its expert deltas independently).
 * @throws RangeError on an expert index outside globalExperts, or an expert listed twice by one client.
 */
export function aggregateRound(
  globalBackbone: readonly NamedTensor[],
  globalExperts: readonly (readonly NamedTensor[])[],
  updates: readonly ClientRoundUpdate[],
  opts: AggregateOptions = {},
): AggregatedRound {
  const perExpert: WeightedUpdate[][] = globalExperts.map(() => []);
  updates.forEach((u, c) => {
    const seen = new Set<number>();
    for (const ex of u.experts) {
      const bucket = Number.isInteger(ex.expert) ? perExpert[ex.expert] : undefined;
      if (bucket === undefined)
        throw new RangeError(`aggregate: update ${c} names expert ${ex.expert}, outside [0, ${globalExperts.length})`);
      if (seen.has(ex.expert)) throw new RangeError(`aggregate: update ${c} lists expert ${ex.expert} twice`);
      seen.add(ex.expert);
      bucket.push({ tensors: ex.tensors, weight: ex.usage });
    }
  });
  const backbone = updates.map((u): WeightedUpdate => ({ tensors: u.backbone, weight: u.numSamples }));
  const factor = opts.clipFactor ?? 0;
  if (!(Number.isFinite(factor) && factor >= 0)) throw new RangeError(`aggregate: clipFactor must be a finite number >= 0, got ${factor}`);
  if (factor > 0) {
    setAdaptiveClip(
      backbone.map((u) => ({ u, global: globalBackbone })),
      factor,
    );
    setAdaptiveClip(
      perExpert.flatMap((list, e) => list.map((u) => ({ u, global: globalExperts[e] as readonly NamedTensor[] }))),
      factor,
    );
  }
  return {
    backbone: aggregateTensors(globalBackbone, backbone, opts),
    experts: globalExperts.map((g, e) => aggregateTensors(g, perExpert[e] as WeightedUpdate[], opts)),
  };
}

/** Sets clip = factor x the lower median of the deltas' norms (the lower one, so two updates cannot drag it up). */
function setAdaptiveClip(items: readonly { u: WeightedUpdate; global: readonly NamedTensor[] }[], factor: number): void {
  const live = items.filter(({ u }) => Number.isFinite(u.weight) && u.weight > 0);
  if (live.length === 0) return;
  for (const { u, global } of live) checkCompatible(global, u.tensors);
  const norms = live.map(({ u, global }) => Math.sqrt(deltaSquaredNorm(global, u.tensors))).sort((a, b) => a - b);
  const median = norms[Math.floor((norms.length - 1) / 2)] as number;
  // All deltas zero: nothing to bound.
  if (!(median > 0)) return;
  for (const { u } of live) u.clip = factor * median;
}

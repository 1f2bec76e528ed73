/**
 * Aggregation that decomposes over processes: each receiver of updates (an edge) folds what it
 * admitted into a {@link RoundPartial} (per group: the group's estimate and its weight total), and
 * the round leader combines the partials. For the weighted mean this is exact up to float rounding:
 * sum_j W_j M_j / sum_j W_j with M_j the edge's weighted mean is the mean over all updates. The mean
 * streams: each update is added into float64 accumulators when it arrives and dropped, so an edge
 * never holds a round's updates. Fixed clipping (clipNorm) is per update and stays exact.
 *
 * Rules that do not decompose into sums (trimmed mean, median) and adaptive clipping (the round's
 * median delta norm) are computed per edge over that edge's updates, and the leader takes the
 * coordinate-wise median of the edge estimates: robust against a whole bad edge once there are three,
 * but not the same number as the one-process rule over all updates (docs/scale-out.md).
 */
import { aggregateRound, type AggregateOptions, type AggregatedRound, type ClientRoundUpdate } from "../aggregation/aggregate.ts";
import { checkCompatible, copyTensor, deltaSquaredNorm } from "../aggregation/kernels.ts";
import { err, ok, type Result } from "../result.ts";
import type { NamedTensor } from "../types.ts";
import { decodeTensors, encodeTensors, type WireError } from "../wire.ts";
import { clientManifest, clientTensors, splitClientTensors, type ModelLayout } from "./layout.ts";

/** One group's (the backbone's or one expert's) share of a round from one process. */
export interface GroupPartial {
  /** Sum of the weights (samples for the backbone, usage for an expert) of the updates folded in; > 0. */
  weight: number;
  /** Their combined value (float32), the estimate the leader weighs by `weight`. */
  tensors: NamedTensor[];
}

export interface RoundPartial {
  /** null when no update with a positive weight was folded in. */
  backbone: GroupPartial | null;
  /** Per expert id; null where no holder's update had usage. */
  experts: (GroupPartial | null)[];
}

/** How partials combine: "mean" exactly; "median" coordinate-wise across processes (robust rules). */
export type CombineMode = "mean" | "median";

/** The combine mode for a rule name: the mean decomposes; every other rule is combined by the median. */
export function combineModeOf(rule: string): CombineMode {
  return rule === "mean" ? "mean" : "median";
}

/** Whether these options can be folded update by update (the weighted mean with, at most, fixed clipping). */
export function streams(opts: AggregateOptions): boolean {
  const rule = opts.rule ?? "mean";
  return (typeof rule === "string" ? rule : rule.name) === "mean" && !((opts.clipFactor ?? 0) > 0);
}

class GroupSum {
  weight = 0;
  private readonly sums: Float64Array[];
  constructor(private readonly global: readonly NamedTensor[]) {
    this.sums = global.map((g) => new Float64Array(g.data.length));
  }
  /** Adds w * (g + s (x - g)), s = min(1, clip / ||x - g||) (s = 1 without a clip bound). */
  add(tensors: readonly NamedTensor[], w: number, clip: number | undefined): void {
    if (!(Number.isFinite(w) && w > 0)) return;
    checkCompatible(this.global, tensors);
    let s = 1;
    if (clip !== undefined) {
      const norm = Math.sqrt(deltaSquaredNorm(this.global, tensors));
      if (norm > clip) s = clip / norm;
    }
    this.weight += w;
    this.global.forEach((g, t) => {
      const x = (tensors[t] as NamedTensor).data;
      const out = this.sums[t] as Float64Array;
      const gd = g.data;
      if (s === 1) for (let i = 0; i < out.length; i++) out[i]! += w * (x[i] as number);
      else for (let i = 0; i < out.length; i++) out[i]! += w * ((gd[i] as number) + s * ((x[i] as number) - (gd[i] as number)));
    });
  }
  finish(): GroupPartial | null {
    if (!(this.weight > 0)) return null;
    const W = this.weight;
    return {
      weight: W,
      tensors: this.global.map((g, t) => {
        const sum = this.sums[t] as Float64Array;
        const data = new Float32Array(sum.length);
        for (let i = 0; i < sum.length; i++) data[i] = (sum[i] as number) / W;
        return { name: g.name, shape: [...g.shape], data };
      }),
    };
  }
}

/**
 * Folds one round's admitted updates into a {@link RoundPartial}. With the mean (and at most fixed
 * clipping) every update is added when it arrives and not kept; otherwise the updates are kept and the
 * configured rule runs over them in {@link finish}.
 */
export class PartialAccumulator {
  private readonly streaming: boolean;
  private readonly backbone: GroupSum;
  private readonly experts: GroupSum[];
  private readonly kept: ClientRoundUpdate[] = [];
  private count = 0;

  constructor(
    private readonly globalBackbone: readonly NamedTensor[],
    private readonly globalExperts: readonly (readonly NamedTensor[])[],
    private readonly opts: AggregateOptions = {},
  ) {
    this.streaming = streams(opts);
    this.backbone = new GroupSum(globalBackbone);
    this.experts = globalExperts.map((g) => new GroupSum(g));
  }

  /** Updates folded in so far. */
  get size(): number {
    return this.count;
  }

  /** @throws RangeError on an expert outside the model, listed twice, or tensors that do not match. */
  add(u: ClientRoundUpdate): void {
    const seen = new Set<number>();
    for (const ex of u.experts) {
      if (!(Number.isInteger(ex.expert) && ex.expert >= 0 && ex.expert < this.experts.length))
        throw new RangeError(`partial: expert ${ex.expert} outside [0, ${this.experts.length})`);
      if (seen.has(ex.expert)) throw new RangeError(`partial: expert ${ex.expert} listed twice`);
      seen.add(ex.expert);
    }
    this.count++;
    if (!this.streaming) {
      this.kept.push(u);
      return;
    }
    this.backbone.add(u.backbone, u.numSamples, this.opts.clipNorm);
    for (const ex of u.experts) (this.experts[ex.expert] as GroupSum).add(ex.tensors, ex.usage, this.opts.clipNorm);
  }

  finish(): RoundPartial {
    if (this.streaming) return { backbone: this.backbone.finish(), experts: this.experts.map((g) => g.finish()) };
    const agg = aggregateRound(this.globalBackbone, this.globalExperts, this.kept, this.opts);
    const positive = (w: number): boolean => Number.isFinite(w) && w > 0;
    const bw = this.kept.reduce((s, u) => s + (positive(u.numSamples) ? u.numSamples : 0), 0);
    const ew = this.globalExperts.map(() => 0);
    for (const u of this.kept) for (const ex of u.experts) if (positive(ex.usage)) ew[ex.expert]! += ex.usage;
    return {
      backbone: bw > 0 ? { weight: bw, tensors: agg.backbone } : null,
      experts: agg.experts.map((tensors, e) => ((ew[e] as number) > 0 ? { weight: ew[e] as number, tensors } : null)),
    };
  }
}

function combineGroup(global: readonly NamedTensor[], parts: readonly GroupPartial[], mode: CombineMode): NamedTensor[] {
  if (parts.length === 0) return global.map(copyTensor);
  for (const p of parts) checkCompatible(global, p.tensors);
  const W = parts.reduce((s, p) => s + p.weight, 0);
  return global.map((g, t) => {
    const out = new Float32Array(g.data.length);
    const xs = parts.map((p) => (p.tensors[t] as NamedTensor).data);
    if (mode === "mean") {
      const acc = new Float64Array(out.length);
      parts.forEach((p, j) => {
        const x = xs[j] as Float32Array;
        const a = p.weight / W;
        for (let i = 0; i < acc.length; i++) acc[i]! += a * (x[i] as number);
      });
      out.set(acc);
    } else {
      const col = new Float64Array(xs.length);
      const mid = (xs.length - 1) / 2;
      for (let i = 0; i < out.length; i++) {
        for (let j = 0; j < xs.length; j++) col[j] = (xs[j] as Float32Array)[i] as number;
        col.sort();
        out[i] = ((col[Math.floor(mid)] as number) + (col[Math.ceil(mid)] as number)) / 2;
      }
    }
    return { name: g.name, shape: [...g.shape], data: out };
  });
}

/**
 * The round's global model from the processes' partials: each group from the partials that have it
 * (weighted by their totals in "mean" mode); a group nobody trained keeps its weights.
 */
export function combinePartials(
  globalBackbone: readonly NamedTensor[],
  globalExperts: readonly (readonly NamedTensor[])[],
  partials: readonly RoundPartial[],
  mode: CombineMode,
): AggregatedRound {
  return {
    backbone: combineGroup(
      globalBackbone,
      partials.flatMap((p) => (p.backbone ? [p.backbone] : [])),
      mode,
    ),
    experts: globalExperts.map((g, e) =>
      combineGroup(
        g,
        partials.flatMap((p) => {
          const x = p.experts[e];
          return x ? [x] : [];
        }),
        mode,
      ),
    ),
  };
}

/** A partial's weights on the wire: which groups it has and their totals (JSON), plus one float32 frame. */
export interface PartialMeta {
  /** 0 when the partial has no backbone (then the frame's backbone tensors are the global ones, ignored). */
  backboneWeight: number;
  experts: { expert: number; weight: number }[];
}

/** The partial as metadata and one wire frame (backbone, then its experts ascending: a client frame's layout). */
export function encodePartial(partial: RoundPartial, globalBackbone: readonly NamedTensor[]): { meta: PartialMeta; frame: Uint8Array } {
  const held: number[] = [];
  const experts: (readonly NamedTensor[])[] = [];
  partial.experts.forEach((p, e) => {
    experts[e] = p?.tensors ?? [];
    if (p) held.push(e);
  });
  return {
    meta: {
      backboneWeight: partial.backbone?.weight ?? 0,
      experts: held.map((e) => ({ expert: e, weight: (partial.experts[e] as GroupPartial).weight })),
    },
    frame: encodeTensors(clientTensors(partial.backbone?.tensors ?? globalBackbone, experts, held), "float32"),
  };
}

/** The inverse of {@link encodePartial}, checked against the layout (names, shapes, finite values). */
export function decodePartial(layout: ModelLayout, meta: PartialMeta, frame: Uint8Array): Result<RoundPartial, WireError> {
  const E = layout.experts.length;
  const held = meta.experts.map((x) => x.expert);
  const badExpert = held.find((e, i) => !(Number.isInteger(e) && e >= 0 && e < E) || (i > 0 && e <= (held[i - 1] as number)));
  if (badExpert !== undefined)
    return err({ code: "BAD_FRAME", message: `partial: expert list [${held.join(",")}] is not ascending in [0, ${E})` });
  const weights = [meta.backboneWeight, ...meta.experts.map((x) => x.weight)];
  if (weights.some((w) => !(Number.isFinite(w) && w >= 0)) || meta.experts.some((x) => !(x.weight > 0)))
    return err({ code: "BAD_FRAME", message: "partial: weights must be finite, >= 0 (> 0 for a listed expert)" });
  const decoded = decodeTensors(frame, clientManifest(layout, held));
  if (!decoded.ok) return decoded;
  const split = splitClientTensors(layout, held, decoded.value);
  const experts: (GroupPartial | null)[] = new Array<GroupPartial | null>(E).fill(null);
  split.experts.forEach((x, k) => (experts[x.expert] = { weight: (meta.experts[k] as { weight: number }).weight, tensors: x.tensors }));
  return ok({ backbone: meta.backboneWeight > 0 ? { weight: meta.backboneWeight, tensors: split.backbone } : null, experts });
}

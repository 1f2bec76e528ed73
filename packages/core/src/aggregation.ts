/**
 * Server-side aggregation of uploaded weights (paper section 4, phase 4). Clients upload their new
 * local weights, not deltas. The backbone is averaged over all participants by sample count; each
 * expert only over its holders, by usage. Optional robust rules (anchors-moe section 4.3): per-update
 * L2 clipping of the delta and coordinate-wise trimmed mean.
 */
import type { NamedTensor } from "./types.ts";

/** Robustness knobs; both off by default (plain weighted mean). */
export interface AggregateOptions {
  /** Clip each update's delta (local - global, over all its tensors together) to this L2 norm. */
  clipNorm?: number;
  /** Coordinate-wise trimmed mean: fraction in [0, 0.5] dropped from each end, unweighted. */
  trim?: number;
}

/** One client's upload for one group of tensors (backbone or one expert), with its weight. */
export interface WeightedUpdate {
  tensors: readonly NamedTensor[];
  weight: number;
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

/**
 * out[j] = sum_i w_i x_i[j] / sum_i w_i, accumulated in double precision. `out` may alias an input.
 * @throws RangeError on length mismatches, a negative or non-finite weight, or a zero total weight.
 */
export function weightedAverageInto(out: Float32Array, inputs: readonly Float32Array[], weights: readonly number[]): void {
  if (inputs.length !== weights.length) throw new RangeError(`aggregate: ${inputs.length} inputs but ${weights.length} weights`);
  let total = 0;
  for (const w of weights) {
    if (!(Number.isFinite(w) && w >= 0)) throw new RangeError(`aggregate: weights must be finite and >= 0, got ${w}`);
    total += w;
  }
  if (!(total > 0)) throw new RangeError("aggregate: total weight must be > 0");
  for (const x of inputs) {
    if (x.length !== out.length) throw new RangeError(`aggregate: input of length ${x.length} does not match output length ${out.length}`);
  }
  const n = inputs.length;
  const norm = Float64Array.from(weights, (w) => w / total);
  if (inputs.some((x) => x.buffer === out.buffer)) {
    // out aliases an input: element-outer, so every input is read at j before out[j] is written.
    for (let j = 0; j < out.length; j++) {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += (norm[i] as number) * ((inputs[i] as Float32Array)[j] as number);
      out[j] = acc;
    }
    return;
  }
  // Input-outer: each update is streamed once, front to back (memory-bound, cache friendly).
  out.fill(0);
  accumulate(out, norm, inputs);
}

/** out += a * x, the one hot loop of aggregation. */
function axpy(out: Float32Array, a: number, x: Float32Array): void {
  const len = out.length;
  for (let j = 0; j < len; j++) out[j] = (out[j] as number) + a * (x[j] as number);
}

/**
 * out += sum_i a[i] * xs[i], eight inputs per pass (then four, then one), so `out` is read and
 * written once per eight updates; with fewer, wider passes V8 keeps the loop in registers and the
 * cost approaches reading the inputs once (see `flexmoe bench`, aggregation).
 */
function accumulate(out: Float32Array, a: ArrayLike<number>, xs: readonly Float32Array[]): void {
  const len = out.length;
  const n = xs.length;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const x0 = xs[i] as Float32Array,
      x1 = xs[i + 1] as Float32Array,
      x2 = xs[i + 2] as Float32Array,
      x3 = xs[i + 3] as Float32Array;
    const x4 = xs[i + 4] as Float32Array,
      x5 = xs[i + 5] as Float32Array,
      x6 = xs[i + 6] as Float32Array,
      x7 = xs[i + 7] as Float32Array;
    const a0 = a[i] as number,
      a1 = a[i + 1] as number,
      a2 = a[i + 2] as number,
      a3 = a[i + 3] as number;
    const a4 = a[i + 4] as number,
      a5 = a[i + 5] as number,
      a6 = a[i + 6] as number,
      a7 = a[i + 7] as number;
    for (let j = 0; j < len; j++) {
      out[j] =
        (out[j] as number) +
        a0 * (x0[j] as number) +
        a1 * (x1[j] as number) +
        a2 * (x2[j] as number) +
        a3 * (x3[j] as number) +
        a4 * (x4[j] as number) +
        a5 * (x5[j] as number) +
        a6 * (x6[j] as number) +
        a7 * (x7[j] as number);
    }
  }
  for (; i + 4 <= n; i += 4) {
    const x0 = xs[i] as Float32Array,
      x1 = xs[i + 1] as Float32Array,
      x2 = xs[i + 2] as Float32Array,
      x3 = xs[i + 3] as Float32Array;
    const a0 = a[i] as number,
      a1 = a[i + 1] as number,
      a2 = a[i + 2] as number,
      a3 = a[i + 3] as number;
    for (let j = 0; j < len; j++) {
      out[j] = (out[j] as number) + a0 * (x0[j] as number) + a1 * (x1[j] as number) + a2 * (x2[j] as number) + a3 * (x3[j] as number);
    }
  }
  for (; i < n; i++) axpy(out, a[i] as number, xs[i] as Float32Array);
}

/**
 * Aggregates clients' new local weights into fresh global tensors; `global` is never mutated.
 * Updates with weight <= 0 (or non-finite) are skipped; with none left the result is a copy of
 * `global` (an expert nobody trained keeps its weights).
 *
 * clipNorm: each update is replaced by global + min(1, clipNorm / ||local - global||) (local - global),
 * the norm taken over all of the update's tensors together.
 * trim: per coordinate, drop floor(trim n) smallest and largest values and take the unweighted mean
 * of the rest (at least one value is always kept). With n <= 2 updates, or when floor(trim n) is 0,
 * nothing would be trimmed, so the weighted mean is used instead; this matters because an expert
 * often has only a few holders.
 *
 * @throws RangeError when an update's tensors do not match global's names, shapes and sizes in order, or on
 *   invalid options.
 */
export function aggregateTensors(
  global: readonly NamedTensor[],
  updates: readonly WeightedUpdate[],
  opts: AggregateOptions = {},
): NamedTensor[] {
  const { clipNorm, trim } = opts;
  if (clipNorm !== undefined && !(Number.isFinite(clipNorm) && clipNorm > 0)) {
    throw new RangeError(`aggregate: clipNorm must be a finite number > 0, got ${clipNorm}`);
  }
  if (trim !== undefined && !(trim >= 0 && trim <= 0.5)) throw new RangeError(`aggregate: trim must be in [0, 0.5], got ${trim}`);
  for (const u of updates) checkCompatible(global, u.tensors);

  const active = updates.filter((u) => Number.isFinite(u.weight) && u.weight > 0);
  const n = active.length;
  if (n === 0) return global.map(copyTensor);

  // scale[i] shrinks update i's delta: the value used is g + scale[i] * (x - g).
  const scale = new Float64Array(n).fill(1);
  if (clipNorm !== undefined) {
    active.forEach((u, i) => {
      const norm = Math.sqrt(deltaSquaredNorm(global, u.tensors));
      if (norm > clipNorm) scale[i] = clipNorm / norm;
    });
  }
  const total = active.reduce((s, u) => s + u.weight, 0);
  // Normalized weight times clip scale: the weighted mean is g + sum_i ws[i] (x_i - g).
  const ws = Float64Array.from(active, (u, i) => (u.weight / total) * (scale[i] as number));
  const wsTotal = ws.reduce((a, b) => a + b, 0);
  const k = trim === undefined || n <= 2 ? 0 : Math.min(Math.floor(trim * n), Math.floor((n - 1) / 2));
  const scratch = new Float64Array(n);

  return global.map((g, t) => {
    const gd = g.data;
    const xs = active.map((u) => (u.tensors[t] as NamedTensor).data);
    const out = new Float32Array(gd.length);
    if (k === 0) {
      // g + sum_i ws_i (x_i - g) = (1 - sum ws) g + sum_i ws_i x_i: stream each update once. Without
      // clipping sum ws is 1 (up to rounding), so the pass over g is skipped.
      if (clipNorm !== undefined) axpy(out, 1 - wsTotal, gd);
      accumulate(out, ws, xs);
      return { name: g.name, shape: [...g.shape], data: out };
    }
    for (let j = 0; j < gd.length; j++) {
      const gj = gd[j] as number;
      {
        for (let i = 0; i < n; i++) scratch[i] = gj + (scale[i] as number) * (((xs[i] as Float32Array)[j] as number) - gj);
        sortSmall(scratch);
        let acc = 0;
        for (let i = k; i < n - k; i++) acc += scratch[i] as number;
        out[j] = acc / (n - 2 * k);
      }
    }
    return { name: g.name, shape: [...g.shape], data: out };
  });
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
  return {
    backbone: aggregateTensors(
      globalBackbone,
      updates.map((u) => ({ tensors: u.backbone, weight: u.numSamples })),
      opts,
    ),
    experts: globalExperts.map((g, e) => aggregateTensors(g, perExpert[e] as WeightedUpdate[], opts)),
  };
}

function copyTensor(t: NamedTensor): NamedTensor {
  return { name: t.name, shape: [...t.shape], data: t.data.slice() };
}

function checkCompatible(global: readonly NamedTensor[], tensors: readonly NamedTensor[]): void {
  if (tensors.length !== global.length)
    throw new RangeError(`aggregate: update has ${tensors.length} tensors, global has ${global.length}`);
  global.forEach((g, t) => {
    const u = tensors[t] as NamedTensor;
    if (u.name !== g.name)
      throw new RangeError(`aggregate: tensor ${t} is named ${JSON.stringify(u.name)}, expected ${JSON.stringify(g.name)}`);
    if (u.shape.length !== g.shape.length || u.shape.some((d, k) => d !== g.shape[k])) {
      throw new RangeError(`aggregate: tensor ${JSON.stringify(g.name)} has shape [${u.shape.join(",")}], expected [${g.shape.join(",")}]`);
    }
    if (u.data.length !== g.data.length) {
      throw new RangeError(`aggregate: tensor ${JSON.stringify(g.name)} has ${u.data.length} values, expected ${g.data.length}`);
    }
  });
}

function deltaSquaredNorm(global: readonly NamedTensor[], tensors: readonly NamedTensor[]): number {
  let s = 0;
  global.forEach((g, t) => {
    const x = (tensors[t] as NamedTensor).data;
    const gd = g.data;
    for (let j = 0; j < gd.length; j++) {
      const d = (x[j] as number) - (gd[j] as number);
      s += d * d;
    }
  });
  return s;
}

/** In-place ascending sort: insertion sort for the usual handful of holders, native sort beyond. */
function sortSmall(a: Float64Array): void {
  if (a.length > 32) {
    a.sort();
    return;
  }
  for (let i = 1; i < a.length; i++) {
    const v = a[i] as number;
    let j = i - 1;
    while (j >= 0 && (a[j] as number) > v) {
      a[j + 1] = a[j] as number;
      j--;
    }
    a[j + 1] = v;
  }
}

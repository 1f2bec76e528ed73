/** The numeric kernels of aggregation (hot loops over Float32Array), shared by the rules. */
import type { NamedTensor } from "../types.ts";

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
export function axpy(out: Float32Array, a: number, x: Float32Array): void {
  const len = out.length;
  for (let j = 0; j < len; j++) out[j] = (out[j] as number) + a * (x[j] as number);
}

/**
 * out += sum_i a[i] * xs[i], eight inputs per pass (then four, then one), so `out` is read and
 * written once per eight updates; with fewer, wider passes V8 keeps the loop in registers and the
 * cost approaches reading the inputs once (see `flexmoe bench`, aggregation).
 */
export function accumulate(out: Float32Array, a: ArrayLike<number>, xs: readonly Float32Array[]): void {
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

export function copyTensor(t: NamedTensor): NamedTensor {
  return { name: t.name, shape: [...t.shape], data: t.data.slice() };
}

export function checkCompatible(global: readonly NamedTensor[], tensors: readonly NamedTensor[]): void {
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

export function deltaSquaredNorm(global: readonly NamedTensor[], tensors: readonly NamedTensor[]): number {
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
export function sortSmall(a: Float64Array): void {
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

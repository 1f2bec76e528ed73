/**
 * Model shapes, tensor manifests and seeded initial weights, in plain TypeScript.
 * Deliberately free of TensorFlow.js: the coordinator builds manifests and the initial
 * global model from this file alone.
 */
import type { ModelLayout, NamedTensor, Rng, TensorManifest } from "@flexmoe/core";

export type Preset = "cnn" | "dense";

export interface ModelSpec {
  preset: Preset;
  /** E: number of experts in the global model. */
  experts: number;
  numClasses: number;
  /** Per-sample shape [height, width, channels]. */
  inputShape: [number, number, number];
  /**
   * Width of the backbone's output h = psi(x), the input of the gate and of every expert. For cnn it is
   * the stem's flattened output ({@link cnnFlatDim}: 144 on 28x28); for dense a free choice.
   */
  featureDim: number;
  /** Hidden width of each expert's 2-layer MLP head. */
  expertHidden: number;
}

/** Optional overrides of the default sizes (e.g. a 32x32x3 input). */
export interface ModelSpecOverrides {
  inputShape?: [number, number, number];
  /** dense only: cnn's feature width is its stem's flattened output. */
  featureDim?: number;
  expertHidden?: number;
}

/**
 * Fixed inner widths of the presets; the spec only exposes what crosses the backbone/expert boundary.
 * cnn: three 3x3 'same' convolutions, each followed by ReLU and a 2x2 max-pool (28 -> 14 -> 7 -> 3).
 */
export const CNN_CHANNELS = [8, 16, 16] as const;
export const DENSE_HIDDEN = 128;

/**
 * Default sizes per preset. cnn is the paper's shape (section 5): a small convolutional stem shared by
 * all, each expert a 2-layer MLP head features -> 128 -> classes, so the experts carry most of the
 * parameters and a page holding k of E downloads about k/E of them. dense is the fast simulation model.
 */
export const PRESET_DEFAULTS = {
  cnn: { expertHidden: 128 },
  dense: { featureDim: 64, expertHidden: 32 },
} as const;

const isPosInt = (v: number): boolean => Number.isInteger(v) && v > 0;

export function modelSpec(preset: Preset, experts: number, numClasses = 10, overrides: ModelSpecOverrides = {}): ModelSpec {
  const inputShape = overrides.inputShape ?? [28, 28, 1];
  const featureDim = overrides.featureDim ?? (preset === "cnn" ? cnnFlatDim(inputShape) : PRESET_DEFAULTS.dense.featureDim);
  const spec: ModelSpec = {
    preset,
    experts,
    numClasses,
    inputShape,
    featureDim,
    expertHidden: overrides.expertHidden ?? PRESET_DEFAULTS[preset].expertHidden,
  };
  validateSpec(spec);
  return spec;
}

/** Throws a RangeError describing the first invalid field. */
export function validateSpec(spec: ModelSpec): void {
  if (spec.preset !== "cnn" && spec.preset !== "dense") throw new RangeError(`unknown preset '${String(spec.preset)}'`);
  if (!isPosInt(spec.experts)) throw new RangeError(`experts must be a positive integer, got ${spec.experts}`);
  if (!isPosInt(spec.numClasses) || spec.numClasses < 2) throw new RangeError(`numClasses must be an integer >= 2, got ${spec.numClasses}`);
  if (spec.inputShape.length !== 3 || !spec.inputShape.every(isPosInt))
    throw new RangeError(`inputShape must be 3 positive integers, got [${spec.inputShape.join(",")}]`);
  if (spec.preset === "cnn") {
    const flat = cnnFlatDim(spec.inputShape);
    if (flat === 0) throw new RangeError(`inputShape [${spec.inputShape.join(",")}] is too small for ${CNN_CHANNELS.length} 2x2 poolings`);
    if (spec.featureDim !== flat)
      throw new RangeError(`cnn featureDim is the stem's flattened output, ${flat} for this input, got ${spec.featureDim}`);
  }
  if (!isPosInt(spec.featureDim)) throw new RangeError(`featureDim must be a positive integer, got ${spec.featureDim}`);
  if (!isPosInt(spec.expertHidden)) throw new RangeError(`expertHidden must be a positive integer, got ${spec.expertHidden}`);
}

/** Pixels per sample (784 for MNIST). */
export function inputSize(spec: ModelSpec): number {
  const [h, w, c] = spec.inputShape;
  return h * w * c;
}

/** Flattened size of the cnn stem's output ('same' convs, 2x2 'valid' pools): 3 x 3 x 16 = 144 on 28x28. */
export function cnnFlatDim(inputShape: readonly [number, number, number]): number {
  const pooled = (d: number): number => CNN_CHANNELS.reduce((x) => Math.floor(x / 2), d);
  const [h, w] = inputShape;
  return pooled(h) * pooled(w) * (CNN_CHANNELS.at(-1) ?? 0);
}

type Entry = { name: string; shape: number[] };

export function backboneManifest(spec: ModelSpec): TensorManifest {
  if (spec.preset === "cnn") {
    let inC = spec.inputShape[2];
    return CNN_CHANNELS.flatMap((outC, i): Entry[] => {
      const layer = [
        { name: `backbone/conv${i + 1}/kernel`, shape: [3, 3, inC, outC] },
        { name: `backbone/conv${i + 1}/bias`, shape: [outC] },
      ];
      inC = outC;
      return layer;
    });
  }
  return [
    { name: "backbone/dense1/kernel", shape: [inputSize(spec), DENSE_HIDDEN] },
    { name: "backbone/dense1/bias", shape: [DENSE_HIDDEN] },
    { name: "backbone/dense2/kernel", shape: [DENSE_HIDDEN, spec.featureDim] },
    { name: "backbone/dense2/bias", shape: [spec.featureDim] },
  ] satisfies Entry[];
}

/** The prefix every tensor of expert e carries, e.g. "expert/3/". */
export const expertPrefix = (e: number): string => `expert/${e}/`;

export function expertManifest(spec: ModelSpec, e: number): TensorManifest {
  if (!Number.isInteger(e) || e < 0 || e >= spec.experts) throw new RangeError(`expert id ${e} is outside [0, ${spec.experts})`);
  const p = expertPrefix(e);
  return [
    { name: `${p}dense1/kernel`, shape: [spec.featureDim, spec.expertHidden] },
    { name: `${p}dense1/bias`, shape: [spec.expertHidden] },
    { name: `${p}dense2/kernel`, shape: [spec.expertHidden, spec.numClasses] },
    { name: `${p}dense2/bias`, shape: [spec.numClasses] },
  ] satisfies Entry[];
}

export function gateManifest(spec: ModelSpec): TensorManifest {
  return [
    { name: "gate/kernel", shape: [spec.featureDim, spec.experts] },
    { name: "gate/bias", shape: [spec.experts] },
  ] satisfies Entry[];
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function countParams(manifest: TensorManifest): number {
  return manifest.reduce((sum, t) => sum + sizeOf(t.shape), 0);
}

/**
 * Glorot-uniform for kernels (fans as Keras computes them: conv fans include the receptive
 * field), zeros for biases. Tensors are drawn in manifest order, so the seed fixes every value.
 */
function initFromManifest(manifest: TensorManifest, rng: Rng): NamedTensor[] {
  return manifest.map(({ name, shape }) => {
    const data = new Float32Array(sizeOf(shape));
    if (shape.length >= 2) {
      const receptive = sizeOf(shape.slice(0, -2));
      const fanIn = receptive * (shape[shape.length - 2] ?? 1);
      const fanOut = receptive * (shape[shape.length - 1] ?? 1);
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < data.length; i++) data[i] = (2 * rng.next() - 1) * limit;
    }
    return { name, shape: [...shape], data };
  });
}

export function initBackbone(spec: ModelSpec, rng: Rng): NamedTensor[] {
  return initFromManifest(backboneManifest(spec), rng);
}

export function initExpert(spec: ModelSpec, e: number, rng: Rng): NamedTensor[] {
  return initFromManifest(expertManifest(spec, e), rng);
}

export function initGate(spec: ModelSpec, rng: Rng): NamedTensor[] {
  return initFromManifest(gateManifest(spec), rng);
}

/**
 * Checks tensors against a manifest: same set of names, same shapes, data of the right length.
 * Throws an Error naming the offending tensor. Order does not matter.
 */
export function checkTensors(manifest: TensorManifest, tensors: readonly NamedTensor[], what: string): void {
  const byName = new Map<string, NamedTensor>();
  for (const t of tensors) {
    if (byName.has(t.name)) throw new Error(`${what}: tensor "${t.name}" appears twice`);
    byName.set(t.name, t);
  }
  for (const m of manifest) {
    const t = byName.get(m.name);
    if (t === undefined) throw new Error(`${what}: tensor "${m.name}" is missing`);
    const same = t.shape.length === m.shape.length && t.shape.every((d, i) => d === m.shape[i]);
    if (!same) throw new Error(`${what}: tensor "${m.name}" has shape [${t.shape.join(",")}], expected [${m.shape.join(",")}]`);
    if (!(t.data instanceof Float32Array) || t.data.length !== sizeOf(m.shape))
      throw new Error(`${what}: tensor "${m.name}" has ${t.data?.length ?? 0} values, expected ${sizeOf(m.shape)}`);
    byName.delete(m.name);
  }
  const extra = byName.keys().next();
  if (!extra.done) throw new Error(`${what}: unexpected tensor "${extra.value}"`);
}

/** The global model's tensor groups, in the form core's round engine and frame layout take. */
export function modelLayout(spec: ModelSpec): ModelLayout {
  return {
    backbone: backboneManifest(spec),
    experts: Array.from({ length: spec.experts }, (_, e) => expertManifest(spec, e)),
  };
}

/** The seeded initial global model (backbone, then experts in id order, from one stream). */
export function initWeights(spec: ModelSpec, rng: Rng): { backbone: NamedTensor[]; experts: NamedTensor[][] } {
  const backbone = initBackbone(spec, rng);
  const experts = Array.from({ length: spec.experts }, (_, e) => initExpert(spec, e, rng));
  return { backbone, experts };
}

/** What a client does with the gate columns of experts it did not hold last round. */
export const GATE_INIT_RULES = ["keep", "mean"] as const;
export type GateInitRule = (typeof GATE_INIT_RULES)[number];

/**
 * The gate for a round in which the client holds `now`, having held `before` (null: unknown, as after
 * a page reload). "keep" returns it unchanged. "mean": each newly held expert's column (kernel column
 * and bias) becomes the mean of the columns of the experts it keeps holding, so a new expert starts
 * with the routing share of an average kept one instead of a stale or random column. With no kept
 * expert (or nothing new) the gate is returned unchanged. Never mutates `gate`.
 */
export function gateForRound(
  gate: readonly NamedTensor[],
  before: readonly number[] | null,
  now: readonly number[],
  rule: GateInitRule,
): NamedTensor[] {
  if (rule === "keep" || before === null) return [...gate];
  const kept = now.filter((e) => before.includes(e));
  const fresh = now.filter((e) => !before.includes(e));
  if (kept.length === 0 || fresh.length === 0) return [...gate];
  return gate.map((t) => {
    const E = t.shape[t.shape.length - 1] as number;
    const rows = t.data.length / E;
    const data = t.data.slice();
    for (let r = 0; r < rows; r++) {
      let m = 0;
      for (const e of kept) m += data[r * E + e] as number;
      m /= kept.length;
      for (const e of fresh) data[r * E + e] = m;
    }
    return { name: t.name, shape: [...t.shape], data };
  });
}

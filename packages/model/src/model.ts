/**
 * The client-side MoE as TensorFlow.js variables: shared backbone psi, the k assigned experts
 * theta_e and the client's own E-wide gate phi_c. Variables are created once and then
 * overwritten in place on every load, so a page can train round after round without
 * allocating new GPU/WASM buffers.
 */
import * as tf from "@tensorflow/tfjs";
import type { NamedTensor, TensorManifest } from "@flexmoe/core";
import {
  backboneManifest,
  checkTensors,
  CNN_CHANNELS,
  expertManifest,
  gateManifest,
  inputSize,
  validateSpec,
  type ModelSpec,
} from "./spec.ts";

/** One expert's variables in manifest order: dense1 kernel, dense1 bias, dense2 kernel, dense2 bias. */
interface ExpertSlot {
  expert: number;
  vars: tf.Variable[];
}

const byName = (tensors: readonly NamedTensor[]): Map<string, NamedTensor> => new Map(tensors.map((t) => [t.name, t]));

/** Writes `t` into `v` (same shape) or creates a new variable. The data is copied: the CPU
 * backend would otherwise alias the caller's Float32Array. */
function writeVar(v: tf.Variable | undefined, t: NamedTensor): tf.Variable {
  // tidy frees the initial tensor; tf.variable() keeps its own reference to the data.
  if (v === undefined) return tf.tidy(() => tf.variable(tf.tensor(t.data.slice(), t.shape, "float32"), true));
  tf.tidy(() => v.assign(tf.tensor(t.data.slice(), t.shape, "float32")));
  return v;
}

/** x @ kernel + bias, for [b, in] inputs. */
const dense = (x: tf.Tensor, kernel: tf.Variable, bias: tf.Variable): tf.Tensor2D =>
  tf.add(tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D), bias);
const relu = (x: tf.Tensor2D): tf.Tensor2D => tf.relu(x);

export type ConvImpl = "native" | "customGrad";

/** The WASM backend has Conv2D but no Conv2D filter-gradient kernel; elsewhere tf's own gradient is used. */
export const convImplFor = (backend: string): ConvImpl => (backend === "wasm" ? "customGrad" : "native");

/**
 * Native conv forward with the filter gradient rewritten as a forward conv (batch as the
 * channel axis), so only Conv2D, Conv2DBackpropInput, Pad and Transpose kernels are needed.
 */
const conv3x3CustomGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, kernel, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([x, kernel]);
  return {
    value: tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, 1, "same"),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ks] = saved as [tf.Tensor4D, tf.Tensor4D];
      const dy4 = dy as tf.Tensor4D;
      const dx = tf.conv2dTranspose(dy4, ks, xs.shape, 1, "same");
      // dK[i,j,ci,co] = sum_{b,y,x} xpad[b,y+i,x+j,ci] * dy[b,y,x,co]: a 'valid' conv of
      // xpad as [ci, H+2, W+2, b] with dy as an [H, W, b, co] kernel, giving [ci, 3, 3, co].
      const xpad = tf.pad(xs, [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ]);
      const dkT = tf.conv2d(tf.transpose(xpad, [3, 1, 2, 0]), tf.transpose(dy4, [1, 2, 0, 3]), 1, "valid");
      return [dx, tf.transpose(dkT, [1, 2, 0, 3])];
    },
  };
});

/** 3x3 stride-1 'same' convolution, kernel [3, 3, inC, outC]; both impls give the same values and gradients. */
export function conv3x3Same(x: tf.Tensor4D, kernel: tf.Tensor4D, impl: ConvImpl): tf.Tensor4D {
  if (impl === "native") return tf.conv2d(x, kernel, 1, "same");
  return conv3x3CustomGrad(x, kernel) as tf.Tensor4D;
}

function at<T>(items: readonly T[], i: number): T {
  const v = items[i];
  if (v === undefined) throw new Error(`internal: index ${i} out of range`);
  return v;
}

/** Mean -log(p_y + 1e-7) of mixture probabilities [b, C] with one-hot labels [b, C]. */
export const nll = (probs: tf.Tensor2D, yOneHot: tf.Tensor2D): tf.Scalar =>
  tf.mean(tf.neg(tf.log(tf.add(tf.sum(tf.mul(probs, yOneHot), 1), 1e-7))));

export class MoeModel {
  readonly spec: ModelSpec;
  private backbone: tf.Variable[] = [];
  private gate: tf.Variable[] = [];
  private slots: ExpertSlot[] = [];
  /** One-hot [E, k]: picks the assigned experts' gate logits (same as masking the rest to -inf). */
  private select: tf.Tensor2D | null = null;
  private disposed = false;

  constructor(spec: ModelSpec) {
    validateSpec(spec);
    this.spec = { ...spec, inputShape: [...spec.inputShape] };
  }

  get loaded(): boolean {
    return this.select !== null && !this.disposed;
  }

  /** Assigned expert ids, ascending. */
  get assigned(): number[] {
    return this.slots.map((s) => s.expert);
  }

  /** Validates everything first, then writes: a rejected load leaves the model untouched. */
  load(backbone: readonly NamedTensor[], experts: ReadonlyMap<number, readonly NamedTensor[]>, gate: readonly NamedTensor[]): void {
    if (this.disposed) throw new Error("MoeModel: already disposed");
    const spec = this.spec;
    checkTensors(backboneManifest(spec), backbone, "backbone");
    checkTensors(gateManifest(spec), gate, "gate");
    if (experts.size === 0) throw new Error("load: at least one expert must be assigned");
    const ids = [...experts.keys()].sort((a, b) => a - b);
    for (const e of ids) {
      if (!Number.isInteger(e) || e < 0 || e >= spec.experts) throw new Error(`load: expert id ${e} is outside [0, ${spec.experts})`);
      checkTensors(expertManifest(spec, e), experts.get(e) ?? [], `expert ${e}`);
    }

    this.backbone = this.writeAll(backboneManifest(spec), backbone, this.backbone);
    this.gate = this.writeAll(gateManifest(spec), gate, this.gate);
    // Reuse expert slots positionally (all experts share shapes); drop slots beyond the new k.
    for (const slot of this.slots.splice(ids.length)) tf.dispose(slot.vars);
    ids.forEach((e, i) => {
      const prev = this.slots[i];
      const vars = this.writeAll(expertManifest(spec, e), experts.get(e) ?? [], prev?.vars ?? []);
      this.slots[i] = { expert: e, vars };
    });

    const sel = new Float32Array(spec.experts * ids.length);
    ids.forEach((e, i) => (sel[e * ids.length + i] = 1));
    this.select?.dispose();
    this.select = tf.tensor2d(sel, [spec.experts, ids.length]);
  }

  private writeAll(manifest: TensorManifest, tensors: readonly NamedTensor[], prev: tf.Variable[]): tf.Variable[] {
    const named = byName(tensors);
    return manifest.map((m, i) => {
      const t = named.get(m.name);
      if (t === undefined) throw new Error(`internal: "${m.name}" vanished after validation`);
      return writeVar(prev[i], t);
    });
  }

  /** Backbone, assigned experts and gate: everything local training updates. */
  trainableVariables(): tf.Variable[] {
    return [...this.backbone, ...this.slots.flatMap((s) => s.vars), ...this.gate];
  }

  /** h = psi(x) for a batch of flat images [b, inputSize]. `grad`: the result will be differentiated. */
  features(x: tf.Tensor2D, grad = false): tf.Tensor2D {
    const spec = this.spec;
    const w = (i: number): tf.Variable => at(this.backbone, i);
    if (spec.preset === "dense") return relu(dense(relu(dense(x, w(0), w(1))), w(2), w(3)));
    const [h, wd, c] = spec.inputShape;
    // Forward-only passes never need the gradient workaround.
    const impl = grad ? convImplFor(tf.getBackend()) : "native";
    // The stem: conv 3x3 'same' -> ReLU -> 2x2 max-pool per layer, then flattened (the experts are the heads).
    let a: tf.Tensor4D = tf.reshape(x, [-1, h, wd, c]);
    for (let i = 0; i < CNN_CHANNELS.length; i++)
      a = tf.maxPool(tf.relu(tf.add(conv3x3Same(a, w(2 * i) as tf.Tensor4D, impl), w(2 * i + 1))) as tf.Tensor4D, 2, 2, "valid");
    return tf.reshape(a, [-1, spec.featureDim]);
  }

  /**
   * Mixture probabilities [b, C] and gate weights over the assigned experts [b, k]
   * (columns in `assigned` order). Only the k assigned experts are computed.
   * Pass grad = true when the result will be differentiated. Call inside tf.tidy.
   */
  forward(x: tf.Tensor2D, grad = false): { probs: tf.Tensor2D; gates: tf.Tensor2D } {
    if (!this.loaded || this.select === null) throw new Error("MoeModel: call load() first");
    const h = this.features(x, grad);
    const logits = dense(h, at(this.gate, 0), at(this.gate, 1));
    const gates: tf.Tensor2D = tf.softmax(tf.matMul(logits, this.select) as tf.Tensor2D);
    const parts = this.slots.map((slot, i): tf.Tensor2D => {
      const [k1, b1, k2, b2] = slot.vars as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
      const pe = tf.softmax(dense(relu(dense(h, k1, b1)), k2, b2));
      return tf.mul(tf.slice(gates, [0, i], [-1, 1]), pe);
    });
    const probs: tf.Tensor2D = parts.length === 1 ? at(parts, 0) : (tf.addN(parts) as tf.Tensor2D);
    return { probs, gates };
  }

  /** Current weights as fresh Float32Array copies (a backend may hand out its own buffer). */
  async export(): Promise<{ backbone: NamedTensor[]; experts: { expert: number; tensors: NamedTensor[] }[]; gate: NamedTensor[] }> {
    if (!this.loaded) throw new Error("MoeModel: call load() first");
    const spec = this.spec;
    const read = async (manifest: TensorManifest, vars: tf.Variable[]): Promise<NamedTensor[]> =>
      Promise.all(
        manifest.map(async (m, i) => ({
          name: m.name,
          shape: [...m.shape],
          data: new Float32Array(await at(vars, i).data()),
        })),
      );
    const backbone = await read(backboneManifest(spec), this.backbone);
    const experts = await Promise.all(
      this.slots.map(async (s) => ({ expert: s.expert, tensors: await read(expertManifest(spec, s.expert), s.vars) })),
    );
    const gate = await read(gateManifest(spec), this.gate);
    return { backbone, experts, gate };
  }

  get inputSize(): number {
    return inputSize(this.spec);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    tf.dispose([...this.trainableVariables()]);
    this.select?.dispose();
    this.backbone = [];
    this.gate = [];
    this.slots = [];
    this.select = null;
  }
}

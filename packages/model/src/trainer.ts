/**
 * Local training of one client's MoE (paper section 4, client side): train backbone, assigned
 * experts and the personal gate on the client's data, then report new weights and per-expert
 * feedback (section 2.1). Runs unchanged on every TF.js backend.
 */
import * as tf from "@tensorflow/tfjs";
import type { ExpertFeedback, LabeledSet, NamedTensor, Rng } from "@flexmoe/core";
import { MoeModel } from "./model.ts";
import type { ModelSpec } from "./spec.ts";

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Shuffles the sample order each epoch (seeded, so a run is reproducible). */
  rng: Rng;
  /** Samples processed so far and in total (epochs * n), after each batch. */
  onProgress?: (done: number, total: number) => void;
  /** Called between batches so the browser page stays responsive. */
  yieldToHost?: () => Promise<void>;
  /** Checked between batches; training then rejects with an Error named "AbortError". */
  signal?: { aborted: boolean };
}

export interface LocalUpdate {
  backbone: NamedTensor[];
  experts: { expert: number; tensors: NamedTensor[]; usage: number }[];
  /** The client's own gate: keep it locally, never upload it. */
  gate: NamedTensor[];
  feedback: ExpertFeedback[];
  numSamples: number;
  /** Mean loss over the training data after training (the pass that also yields the feedback). */
  loss: number;
}

export interface TrainerOptions {
  /** @default "adam" */
  optimizer?: "adam" | "sgd";
}

/** Batch size of forward-only passes (evaluation, feedback). */
const EVAL_BATCH = 256;
const EPS = 1e-7;

/** Per-sample results of a forward pass over a data set. */
interface Scan {
  /** Index into `assigned` of each sample's top gate choice. */
  route: Int32Array;
  correct: Uint8Array;
  loss: Float32Array;
}

function abortError(): Error {
  const e = new Error("training aborted");
  e.name = "AbortError";
  return e;
}

export class MoeTrainer {
  private readonly model: MoeModel;
  private readonly optimizerKind: "adam" | "sgd";
  private busy = false;
  private disposed = false;

  constructor(spec: ModelSpec, opts: TrainerOptions = {}) {
    this.model = new MoeModel(spec);
    this.optimizerKind = opts.optimizer ?? "adam";
  }

  get spec(): ModelSpec {
    return this.model.spec;
  }

  /**
   * Load the global backbone, the assigned experts' weights (expert id -> tensors) and this
   * client's own gate. Names and shapes are checked against the manifests first; a mismatch
   * throws an Error naming the tensor and leaves the previous weights in place.
   */
  load(backbone: NamedTensor[], experts: ReadonlyMap<number, NamedTensor[]>, gate: NamedTensor[]): void {
    this.ensureIdle();
    this.model.load(backbone, experts, gate);
  }

  /** The loaded experts, ascending. */
  get assigned(): number[] {
    return this.model.assigned;
  }

  /** Accuracy and mean loss of the personalized model (backbone + assigned experts + own gate). */
  async evaluate(data: LabeledSet): Promise<{ accuracy: number; loss: number }> {
    this.ensureReady();
    const s = await this.scan(data);
    if (data.n === 0) return { accuracy: 0, loss: 0 };
    let correct = 0;
    let loss = 0;
    for (let i = 0; i < data.n; i++) {
      correct += s.correct[i] ?? 0;
      loss += s.loss[i] ?? 0;
    }
    return { accuracy: correct / data.n, loss: loss / data.n };
  }

  /**
   * Local epochs over `data` with a fresh optimizer, then one forward pass for the feedback.
   * Returns copies of the new backbone, assigned experts and gate.
   */
  async train(data: LabeledSet, opts: TrainOptions): Promise<LocalUpdate> {
    this.ensureIdle();
    this.ensureReady();
    this.checkData(data);
    const { epochs, batchSize, learningRate } = opts;
    if (!Number.isInteger(epochs) || epochs < 0) throw new RangeError(`epochs must be an integer >= 0, got ${epochs}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    if (!(learningRate > 0)) throw new RangeError(`learningRate must be > 0, got ${learningRate}`);

    this.busy = true;
    const optimizer = this.optimizerKind === "sgd" ? tf.train.sgd(learningRate) : tf.train.adam(learningRate);
    try {
      const vars = this.model.trainableVariables();
      const n = data.n;
      const total = epochs * n;
      const order = Array.from({ length: n }, (_, i) => i);
      let done = 0;
      for (let epoch = 0; epoch < epochs; epoch++) {
        opts.rng.shuffle(order);
        for (let start = 0; start < n; start += batchSize) {
          const idx = order.slice(start, start + batchSize);
          const lossT = tf.tidy(() => {
            const x = tf.tensor2d(this.gatherX(data, idx), [idx.length, this.model.inputSize]);
            const y = tf.tensor2d(this.oneHot(data, idx), [idx.length, this.spec.numClasses]);
            const cost = optimizer.minimize(() => this.model.loss(x, y), true, vars);
            if (cost === null) throw new Error("internal: optimizer returned no cost");
            return cost;
          });
          // An async read per batch paces GPU backends without blocking the page.
          const value = (await lossT.data())[0] ?? NaN;
          lossT.dispose();
          if (!Number.isFinite(value)) throw new Error(`training diverged: batch loss ${value} in epoch ${epoch + 1}`);
          done += idx.length;
          opts.onProgress?.(done, total);
          if (opts.yieldToHost) await opts.yieldToHost();
          if (opts.signal?.aborted) throw abortError();
          this.ensureReady();
        }
      }
    } finally {
      // Adam's moments are per round: a fresh optimizer each call, its state freed here.
      optimizer.dispose();
      this.busy = false;
    }

    const s = await this.scan(data);
    this.ensureReady();
    const assigned = this.model.assigned;
    const usage = new Array<number>(assigned.length).fill(0);
    const correct = new Array<number>(assigned.length).fill(0);
    const lossSum = new Array<number>(assigned.length).fill(0);
    let totalLoss = 0;
    for (let i = 0; i < data.n; i++) {
      const r = s.route[i] ?? 0;
      usage[r] = (usage[r] ?? 0) + 1;
      correct[r] = (correct[r] ?? 0) + (s.correct[i] ?? 0);
      lossSum[r] = (lossSum[r] ?? 0) + (s.loss[i] ?? 0);
      totalLoss += s.loss[i] ?? 0;
    }
    const feedback: ExpertFeedback[] = assigned.map((expert, i) => {
      const u = usage[i] ?? 0;
      return {
        expert,
        usage: u,
        accuracy: u > 0 ? (correct[i] ?? 0) / u : 0,
        loss: u > 0 ? (lossSum[i] ?? 0) / u : 0,
      };
    });
    const weights = await this.model.export();
    return {
      backbone: weights.backbone,
      experts: weights.experts.map((e, i) => ({ ...e, usage: usage[i] ?? 0 })),
      gate: weights.gate,
      feedback,
      numSamples: data.n,
      loss: data.n > 0 ? totalLoss / data.n : 0,
    };
  }

  /** One image (flat, inputSize values): mixture probabilities, E-wide gate (0 for unassigned), top expert. */
  async predict(x: Float32Array): Promise<{ probs: number[]; gate: number[]; topExpert: number }> {
    this.ensureReady();
    const size = this.model.inputSize;
    if (x.length !== size) throw new RangeError(`predict: expected ${size} values, got ${x.length}`);
    const out = tf.tidy(() => {
      const { probs, gates } = this.model.forward(tf.tensor2d(x.slice(), [1, size]));
      return tf.concat([probs, gates], 1);
    });
    const vals = await out.data();
    out.dispose();
    const c = this.spec.numClasses;
    const assigned = this.model.assigned;
    const gate = new Array<number>(this.spec.experts).fill(0);
    let topExpert = assigned[0] ?? 0;
    let best = -Infinity;
    assigned.forEach((e, i) => {
      const g = vals[c + i] ?? 0;
      gate[e] = g;
      if (g > best) {
        best = g;
        topExpert = e;
      }
    });
    return { probs: Array.from(vals.subarray(0, c)), gate, topExpert };
  }

  dispose(): void {
    // Safe mid-training: the loop checks `disposed` after every await and stops.
    this.disposed = true;
    this.model.dispose();
  }

  /** Forward-only pass in data order: each sample's route, correctness and loss. */
  private async scan(data: LabeledSet): Promise<Scan> {
    this.checkData(data);
    const n = data.n;
    const c = this.spec.numClasses;
    const k = this.model.assigned.length;
    const scan: Scan = { route: new Int32Array(n), correct: new Uint8Array(n), loss: new Float32Array(n) };
    const size = this.model.inputSize;
    for (let start = 0; start < n; start += EVAL_BATCH) {
      this.ensureReady();
      const end = Math.min(n, start + EVAL_BATCH);
      const out = tf.tidy(() => {
        const x = tf.tensor2d(data.x.slice(start * size, end * size), [end - start, size]);
        const { probs, gates } = this.model.forward(x);
        return tf.concat([probs, gates], 1);
      });
      const vals = await out.data();
      out.dispose();
      const w = c + k;
      for (let i = start; i < end; i++) {
        const row = (i - start) * w;
        let pred = 0;
        for (let j = 1; j < c; j++) if ((vals[row + j] ?? 0) > (vals[row + pred] ?? 0)) pred = j;
        let route = 0;
        for (let j = 1; j < k; j++) if ((vals[row + c + j] ?? 0) > (vals[row + c + route] ?? 0)) route = j;
        const label = data.y[i] ?? 0;
        scan.route[i] = route;
        scan.correct[i] = pred === label ? 1 : 0;
        scan.loss[i] = -Math.log((vals[row + label] ?? 0) + EPS);
      }
    }
    return scan;
  }

  private gatherX(data: LabeledSet, idx: readonly number[]): Float32Array {
    const size = this.model.inputSize;
    const out = new Float32Array(idx.length * size);
    idx.forEach((s, i) => out.set(data.x.subarray(s * size, (s + 1) * size), i * size));
    return out;
  }

  private oneHot(data: LabeledSet, idx: readonly number[]): Float32Array {
    const c = this.spec.numClasses;
    const out = new Float32Array(idx.length * c);
    idx.forEach((s, i) => (out[i * c + (data.y[s] ?? 0)] = 1));
    return out;
  }

  private checkData(data: LabeledSet): void {
    const size = this.model.inputSize;
    if (data.numClasses !== this.spec.numClasses)
      throw new RangeError(`data has ${data.numClasses} classes, the model ${this.spec.numClasses}`);
    if (data.x.length !== data.n * size) throw new RangeError(`data.x has ${data.x.length} values, expected n * ${size}`);
    if (data.y.length !== data.n) throw new RangeError(`data.y has ${data.y.length} labels, expected ${data.n}`);
    for (let i = 0; i < data.n; i++) {
      const label = data.y[i] ?? 0;
      if (label >= this.spec.numClasses) throw new RangeError(`label ${label} at sample ${i} is >= numClasses`);
    }
  }

  private ensureReady(): void {
    if (this.disposed) throw new Error("MoeTrainer: disposed");
    if (!this.model.loaded) throw new Error("MoeTrainer: call load() first");
  }

  private ensureIdle(): void {
    if (this.busy) throw new Error("MoeTrainer: busy training");
  }
}

/**
 * Local training of one client's MoE (paper section 4, client side): train backbone, assigned
 * experts and the personal gate on the client's data, then report new weights and per-expert
 * feedback (section 2.1), measured before, during or after training. Runs unchanged on every TF.js
 * backend.
 */
import * as tf from "@tensorflow/tfjs";
import type { ExpertFeedback, FeedbackMode, LabeledSet, NamedTensor, Rng } from "@flexmoe/core";
import { MoeModel, nll } from "./model.ts";
import type { ModelSpec } from "./spec.ts";

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Shuffles the sample order each epoch (seeded, so a run is reproducible). */
  rng: Rng;
  /**
   * When the per-expert feedback is measured over the training samples: `pre`, the received model
   * before training; `during`, the training batches of the last epoch as they run; `post`, the trained
   * model after training. @default "pre"
   */
  feedback?: FeedbackMode;
  /**
   * Weight of a Switch-style balance term on the gate (k * sum_j f_j P_j over the assigned experts):
   * it pushes the personal gate to spread samples over the experts it holds. @default 0 (off)
   */
  balance?: number;
  /** Samples processed so far and in total (epochs * n), after each batch. */
  onProgress?: (done: number, total: number) => void;
  /** Called between batches so the browser page stays responsive. */
  yieldToHost?: () => Promise<void>;
  /** Checked between batches; training then rejects with an Error named "AbortError". */
  signal?: { aborted: boolean };
}

export interface LocalUpdate {
  backbone: NamedTensor[];
  /** The trained experts, each with its aggregation weight (the feedback's usage). */
  experts: { expert: number; tensors: NamedTensor[]; usage: number }[];
  /** The client's own gate: keep it locally, never upload it. */
  gate: NamedTensor[];
  feedback: ExpertFeedback[];
  /** How {@link LocalUpdate.feedback} was measured. */
  feedbackMode: FeedbackMode;
  numSamples: number;
  /** Sample-weighted mean loss of the training batches of the last local epoch, as they ran (0 without epochs). */
  trainLoss: number;
}

export interface TrainerOptions {
  /** @default "adam" */
  optimizer?: "adam" | "sgd";
}

/** Batch size of forward-only passes (evaluation, feedback). */
const EVAL_BATCH = 256;
const EPS = 1e-7;

/**
 * Per-expert sums over samples, each sample attributed to its top gate choice among the assigned
 * experts (paper section 2.1), plus the soft gate mass and the totals. Fed with rows of
 * [mixture probabilities (C) | gate weights (k)] as the forward pass returns them.
 */
class Tally {
  readonly usage: number[];
  readonly mass: number[];
  private readonly correct: number[];
  private readonly lossSum: number[];
  private n = 0;
  private totalCorrect = 0;
  private totalLoss = 0;

  constructor(
    private readonly classes: number,
    private readonly k: number,
  ) {
    this.usage = new Array<number>(k).fill(0);
    this.mass = new Array<number>(k).fill(0);
    this.correct = new Array<number>(k).fill(0);
    this.lossSum = new Array<number>(k).fill(0);
  }

  /** Adds `labels.length` samples whose rows start at `offset` in `vals`. */
  add(vals: ArrayLike<number>, labels: ArrayLike<number>, offset = 0): void {
    const c = this.classes;
    const w = c + this.k;
    for (let i = 0; i < labels.length; i++) {
      const row = offset + i * w;
      let pred = 0;
      for (let j = 1; j < c; j++) if ((vals[row + j] ?? 0) > (vals[row + pred] ?? 0)) pred = j;
      let route = 0;
      let gateSum = 0;
      for (let j = 0; j < this.k; j++) {
        const g = vals[row + c + j] ?? 0;
        gateSum += g;
        if (g > (vals[row + c + route] ?? 0)) route = j;
      }
      // Normalized per sample, so the masses sum to the samples on half-float backends too (the server checks that).
      for (let j = 0; j < this.k; j++) {
        const share = gateSum > 0 ? (vals[row + c + j] ?? 0) / gateSum : 1 / this.k;
        this.mass[j] = (this.mass[j] ?? 0) + share;
      }
      const label = labels[i] ?? 0;
      const ok = pred === label ? 1 : 0;
      const loss = -Math.log((vals[row + label] ?? 0) + EPS);
      this.usage[route] = (this.usage[route] ?? 0) + 1;
      this.correct[route] = (this.correct[route] ?? 0) + ok;
      this.lossSum[route] = (this.lossSum[route] ?? 0) + loss;
      this.n++;
      this.totalCorrect += ok;
      this.totalLoss += loss;
    }
  }

  totals(): { accuracy: number; loss: number } {
    return this.n === 0 ? { accuracy: 0, loss: 0 } : { accuracy: this.totalCorrect / this.n, loss: this.totalLoss / this.n };
  }

  feedback(assigned: readonly number[]): ExpertFeedback[] {
    return assigned.map((expert, i) => {
      const u = this.usage[i] ?? 0;
      return {
        expert,
        usage: u,
        mass: this.mass[i] ?? 0,
        accuracy: u > 0 ? (this.correct[i] ?? 0) / u : 0,
        loss: u > 0 ? (this.lossSum[i] ?? 0) / u : 0,
      };
    });
  }
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
    return (await this.scan(data)).totals();
  }

  /**
   * Local epochs over `data` with a fresh optimizer, with the per-expert feedback measured as
   * `opts.feedback` says. Returns copies of the new backbone, assigned experts and gate.
   */
  async train(data: LabeledSet, opts: TrainOptions): Promise<LocalUpdate> {
    this.ensureIdle();
    this.ensureReady();
    this.checkData(data);
    const { epochs, batchSize, learningRate } = opts;
    const mode = opts.feedback ?? "pre";
    if (!Number.isInteger(epochs) || epochs < 0) throw new RangeError(`epochs must be an integer >= 0, got ${epochs}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    if (!(learningRate > 0)) throw new RangeError(`learningRate must be > 0, got ${learningRate}`);
    if (mode !== "pre" && mode !== "during" && mode !== "post") throw new RangeError(`unknown feedback mode '${String(mode)}'`);
    const balance = opts.balance ?? 0;
    if (!(Number.isFinite(balance) && balance >= 0)) throw new RangeError(`balance must be a finite number >= 0, got ${balance}`);

    this.busy = true;
    try {
      const fresh = (): Tally => new Tally(this.spec.numClasses, this.model.assigned.length);
      const pre = mode === "pre" ? await this.scan(data) : null;
      const during = mode === "during" ? fresh() : null;
      const trainLoss = await this.fit(data, opts, during);
      const tally = pre ?? during ?? (await this.scan(data));
      this.ensureReady();
      const feedback = tally.feedback(this.model.assigned);
      const weights = await this.model.export();
      return {
        backbone: weights.backbone,
        experts: weights.experts.map((e, i) => ({ ...e, usage: feedback[i]?.usage ?? 0 })),
        gate: weights.gate,
        feedback,
        feedbackMode: mode,
        numSamples: data.n,
        trainLoss,
      };
    } finally {
      this.busy = false;
    }
  }

  /**
   * The local epochs. Tallies the last epoch's batches into `during` when given, from the forward pass
   * each step already makes. Returns the last epoch's sample-weighted mean batch loss (0 without epochs).
   */
  private async fit(data: LabeledSet, opts: TrainOptions, during: Tally | null): Promise<number> {
    const { epochs, batchSize, learningRate } = opts;
    const balance = opts.balance ?? 0;
    const optimizer = this.optimizerKind === "sgd" ? tf.train.sgd(learningRate) : tf.train.adam(learningRate);
    try {
      const vars = this.model.trainableVariables();
      const n = data.n;
      const total = epochs * n;
      const order = Array.from({ length: n }, (_, i) => i);
      let done = 0;
      let epochLoss = 0;
      for (let epoch = 0; epoch < epochs; epoch++) {
        opts.rng.shuffle(order);
        const tally = epoch === epochs - 1 ? during : null;
        epochLoss = 0;
        for (let start = 0; start < n; start += batchSize) {
          const idx = order.slice(start, start + batchSize);
          const kept: { stats: tf.Tensor | null } = { stats: null };
          let out: tf.Tensor;
          try {
            out = tf.tidy(() => {
              const x = tf.tensor2d(this.gatherX(data, idx), [idx.length, this.model.inputSize]);
              const y = tf.tensor2d(this.oneHot(data, idx), [idx.length, this.spec.numClasses]);
              const cost = optimizer.minimize(
                () => {
                  const { probs, gates } = this.model.forward(x, true);
                  // Kept past minimize's own tidy; off the loss's path, so no gradient flows through it.
                  if (tally) kept.stats = tf.keep(tf.concat([probs, gates], 1));
                  return balance > 0 ? tf.add(nll(probs, y), tf.mul(balance, balanceTerm(gates))) : nll(probs, y);
                },
                true,
                vars,
              );
              if (cost === null) throw new Error("internal: optimizer returned no cost");
              // One read per batch either way: [cost | the batch's rows].
              return kept.stats === null ? cost : tf.concat([tf.reshape(cost, [1]), tf.reshape(kept.stats, [-1])]);
            });
          } finally {
            kept.stats?.dispose();
          }
          // An async read per batch paces GPU backends without blocking the page.
          const vals = await out.data();
          out.dispose();
          const value = vals[0] ?? NaN;
          if (!Number.isFinite(value)) throw new Error(`training diverged: batch loss ${value} in epoch ${epoch + 1}`);
          tally?.add(
            vals,
            idx.map((i) => data.y[i] ?? 0),
            1,
          );
          epochLoss += value * idx.length;
          done += idx.length;
          opts.onProgress?.(done, total);
          if (opts.yieldToHost) await opts.yieldToHost();
          if (opts.signal?.aborted) throw abortError();
          this.ensureReady();
        }
      }
      return epochs > 0 && n > 0 ? epochLoss / n : 0;
    } finally {
      // Adam's moments are per round: a fresh optimizer each call, its state freed here.
      optimizer.dispose();
    }
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

  /** Forward-only pass in data order, tallied per assigned expert. */
  private async scan(data: LabeledSet): Promise<Tally> {
    this.checkData(data);
    const n = data.n;
    const tally = new Tally(this.spec.numClasses, this.model.assigned.length);
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
      tally.add(vals, data.y.subarray(start, end));
    }
    return tally;
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

/**
 * Switch Transformer's auxiliary load-balancing loss over the k assigned experts: k * sum_j f_j P_j,
 * with f_j the batch's share of samples whose top gate choice is j (no gradient: argMax and oneHot
 * have zero gradients) and P_j the mean gate weight of j. It is 1 when the gate spreads evenly.
 */
export function balanceTerm(gates: tf.Tensor2D): tf.Scalar {
  const k = gates.shape[1];
  const P = tf.mean(gates, 0);
  const f = tf.mean(tf.cast(tf.oneHot(tf.argMax(gates, 1), k), "float32"), 0);
  return tf.mul(k, tf.sum(tf.mul(f, P)));
}

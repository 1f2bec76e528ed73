import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { createRng, type LabeledSet, type NamedTensor } from "@flexmoe/core";
import { initBackbone, initExpert, initGate, modelSpec, type ModelSpec, type Preset } from "./spec.ts";
import { balanceTerm, MoeTrainer } from "./trainer.ts";
import { conv3x3Same, convImplFor, type ConvImpl } from "./model.ts";

beforeAll(async () => {
  tf.enableProdMode(); // silences the CPU backend's "install tfjs-node" banner
  await tf.setBackend("cpu");
  await tf.ready();
});

/** Separable toy digits: class c lights up rows 2c..2c+2, plus noise. */
function toyData(n: number, seed: number, numClasses = 10): LabeledSet {
  const rng = createRng(seed);
  const x = new Float32Array(n * 784);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(numClasses);
    y[i] = c;
    for (let p = 0; p < 784; p++) {
      const row = Math.floor(p / 28);
      x[i * 784 + p] = (row >= 2 * c + 2 && row < 2 * c + 5 ? 0.8 : 0) + 0.2 * rng.next();
    }
  }
  return { x, y, n, shape: [28, 28, 1], numClasses };
}

function initial(spec: ModelSpec, seed: number) {
  const rng = createRng(seed);
  const backbone = initBackbone(spec, rng);
  const experts = new Map<number, NamedTensor[]>();
  for (let e = 0; e < spec.experts; e++) experts.set(e, initExpert(spec, e, rng));
  const gate = initGate(spec, rng);
  const pick = (ids: number[]) => new Map(ids.map((e) => [e, experts.get(e) ?? []]));
  return { backbone, experts, gate, pick };
}

const opts = (seed: number, epochs = 1) => ({ epochs, batchSize: 16, learningRate: 1e-3, rng: createRng(seed) });

describe("MoeTrainer.load", () => {
  const spec = modelSpec("dense", 4);
  const w = initial(spec, 1);

  it("rejects wrong names and shapes with an error naming the tensor", () => {
    const t = new MoeTrainer(spec);
    const badShape = w.backbone.map((x) => (x.name === "backbone/dense2/kernel" ? { ...x, shape: [64, 128] } : x));
    expect(() => t.load(badShape, w.pick([0, 1]), w.gate)).toThrow(/"backbone\/dense2\/kernel" has shape \[64,128\]/);
    const renamed = w.backbone.map((x) => (x.name === "backbone/dense1/bias" ? { ...x, name: "backbone/d1/bias" } : x));
    expect(() => t.load(renamed, w.pick([0, 1]), w.gate)).toThrow(/"backbone\/dense1\/bias" is missing/);
    // Expert 2's tensors offered as expert 0: the names carry the id.
    const swapped = new Map([[0, w.experts.get(2) ?? []]]);
    expect(() => t.load(w.backbone, swapped, w.gate)).toThrow(/"expert\/0\/dense1\/kernel" is missing/);
    expect(() => t.load(w.backbone, new Map([[4, []]]), w.gate)).toThrow(/expert id 4/);
    expect(() => t.load(w.backbone, new Map(), w.gate)).toThrow(/at least one expert/);
    expect(() => t.load(w.backbone, w.pick([0]), w.gate.slice(0, 1))).toThrow(/"gate\/bias" is missing/);
    const numVars = tf.memory().numTensors;
    expect(numVars).toBeGreaterThanOrEqual(0);
    t.dispose();
  });

  it("keeps the previous weights when a load is rejected", async () => {
    const t = new MoeTrainer(spec);
    t.load(w.backbone, w.pick([1, 3]), w.gate);
    const data = toyData(20, 5);
    const before = await t.evaluate(data);
    const bad = w.gate.map((x) => (x.name === "gate/bias" ? { ...x, shape: [5], data: new Float32Array(5) } : x));
    expect(() => t.load(w.backbone, w.pick([0]), bad)).toThrow(/"gate\/bias"/);
    expect(t.assigned).toEqual([1, 3]);
    expect(await t.evaluate(data)).toEqual(before);
    t.dispose();
  });
});

describe("MoeTrainer.train (dense, CPU)", () => {
  const spec = modelSpec("dense", 4);

  it("keeps the tensor count flat across rounds and frees everything on dispose", async () => {
    const start = tf.memory().numTensors;
    const w = initial(spec, 2);
    const data = toyData(48, 3);
    const t = new MoeTrainer(spec);
    let gate = w.gate;
    const counts: number[] = [];
    // Assignments change between rounds, as the server's solver would do; each feedback mode once.
    const modes = ["during", "pre", "post"] as const;
    for (const [round, ids] of [
      [0, 1],
      [2, 3],
      [1, 3],
    ].entries()) {
      t.load(w.backbone, w.pick(ids), gate);
      await t.evaluate(data);
      const update = await t.train(data, { ...opts(round), feedback: modes[round] ?? "pre" });
      await t.predict(data.x.subarray(0, 784));
      gate = update.gate;
      counts.push(tf.memory().numTensors);
    }
    expect(counts[1]).toBe(counts[0]);
    expect(counts[2]).toBe(counts[0]);
    t.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it("returns weights, usage and feedback consistent with each other", async () => {
    const w = initial(spec, 4);
    const data = toyData(64, 6);
    const t = new MoeTrainer(spec);
    t.load(w.backbone, w.pick([3, 1]), w.gate);
    expect(t.assigned).toEqual([1, 3]);
    const progress: number[] = [];
    let yields = 0;
    const u = await t.train(data, {
      ...opts(1, 2),
      onProgress: (done, total) => {
        expect(total).toBe(128);
        progress.push(done);
      },
      yieldToHost: async () => {
        yields++;
      },
    });
    expect(progress.at(-1)).toBe(128);
    expect(yields).toBe(8);
    expect(u.numSamples).toBe(64);
    expect(u.experts.map((e) => e.expert)).toEqual([1, 3]);
    expect(u.feedback.map((f) => f.expert)).toEqual([1, 3]);
    expect(u.feedback.reduce((s, f) => s + f.usage, 0)).toBe(64);
    expect(u.experts.map((e) => e.usage)).toEqual(u.feedback.map((f) => f.usage));
    for (const f of u.feedback) {
      expect(f.accuracy).toBeGreaterThanOrEqual(0);
      expect(f.accuracy).toBeLessThanOrEqual(1);
      expect(f.loss).toBeGreaterThanOrEqual(0);
      if (f.usage === 0) expect([f.accuracy, f.loss]).toEqual([0, 0]);
    }
    expect(u.feedbackMode).toBe("pre");
    expect(u.feedback.reduce((s, f) => s + (f.mass ?? 0), 0)).toBeCloseTo(64, 4);
    expect(Number.isFinite(u.trainLoss) && u.trainLoss > 0).toBe(true);
    expect(u.experts[0]?.tensors.map((x) => x.name)).toEqual([
      "expert/1/dense1/kernel",
      "expert/1/dense1/bias",
      "expert/1/dense2/kernel",
      "expert/1/dense2/bias",
    ]);
    // Trained tensors moved; the gate columns of unassigned experts (0, 2) did not.
    expect(u.backbone[0]?.data).not.toEqual(w.backbone[0]?.data);
    const k0 = w.gate[0]?.data ?? new Float32Array();
    const k1 = u.gate[0]?.data ?? new Float32Array();
    for (let row = 0; row < spec.featureDim; row++) {
      expect(k1[row * 4 + 0]).toBe(k0[row * 4 + 0]);
      expect(k1[row * 4 + 2]).toBe(k0[row * 4 + 2]);
    }
    expect(k1[1]).not.toBe(k0[1]);
    // The update holds copies, not views of live buffers.
    const snapshot = u.backbone[0]?.data.slice();
    await t.train(data, opts(2));
    expect(u.backbone[0]?.data).toEqual(snapshot);

    const p = await t.predict(data.x.subarray(0, 784));
    expect(p.probs).toHaveLength(10);
    expect(p.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(p.gate).toHaveLength(4);
    expect(p.gate[0]).toBe(0);
    expect(p.gate[2]).toBe(0);
    expect((p.gate[1] ?? 0) + (p.gate[3] ?? 0)).toBeCloseTo(1, 5);
    expect([1, 3]).toContain(p.topExpert);
    t.dispose();
  });

  it("is reproducible from the rng and learns the toy task with adam and sgd", async () => {
    const w = initial(spec, 8);
    const train = toyData(150, 9);
    const test = toyData(100, 10);
    const run = async (optimizer: "adam" | "sgd", lr: number) => {
      const t = new MoeTrainer(spec, { optimizer });
      t.load(w.backbone, w.pick([0, 2]), w.gate);
      const before = await t.evaluate(test);
      const u = await t.train(train, { ...opts(11, 3), learningRate: lr });
      const after = await t.evaluate(test);
      t.dispose();
      return { before, after, u };
    };
    const a = await run("adam", 1e-3);
    const b = await run("adam", 1e-3);
    expect(b.u.backbone).toEqual(a.u.backbone);
    expect(b.u.feedback).toEqual(a.u.feedback);
    expect(a.after.accuracy).toBeGreaterThan(a.before.accuracy + 0.3);
    expect(a.after.loss).toBeLessThan(a.before.loss);
    const s = await run("sgd", 0.1);
    expect(s.after.loss).toBeLessThan(s.before.loss);
  });

  it("measures the feedback before, during or after training; the training is the same", async () => {
    const w = initial(spec, 14);
    const data = toyData(96, 15);
    const t = new MoeTrainer(spec);
    const run = async (feedback: "pre" | "during" | "post") => {
      t.load(w.backbone, w.pick([0, 2]), w.gate);
      const received = await t.evaluate(data);
      const u = await t.train(data, { ...opts(16, 2), feedback });
      const trained = await t.evaluate(data);
      return { received, u, trained };
    };
    /** The feedback's per-expert numbers folded back into totals over the samples. */
    const totals = (fb: readonly { usage: number; accuracy: number; loss: number; mass?: number }[]) => ({
      usage: fb.reduce((s, f) => s + f.usage, 0),
      mass: fb.reduce((s, f) => s + (f.mass ?? 0), 0),
      accuracy: fb.reduce((s, f) => s + f.usage * f.accuracy, 0) / data.n,
      loss: fb.reduce((s, f) => s + f.usage * f.loss, 0) / data.n,
    });
    const pre = await run("pre");
    const during = await run("during");
    const post = await run("post");
    // Training does not depend on when the feedback is measured: same weights, gate and loss.
    expect(during.u.backbone).toEqual(pre.u.backbone);
    expect(post.u.backbone).toEqual(pre.u.backbone);
    expect(post.u.gate).toEqual(pre.u.gate);
    expect(post.u.trainLoss).toBe(pre.u.trainLoss);
    for (const r of [pre, during, post]) {
      expect(totals(r.u.feedback).usage).toBe(data.n);
      expect(totals(r.u.feedback).mass).toBeCloseTo(data.n, 9);
      expect(r.u.experts.map((e) => e.usage)).toEqual(r.u.feedback.map((f) => f.usage));
    }
    // pre: the model as received; post: the model as trained; during: the last epoch's batches as they ran.
    expect(totals(pre.u.feedback).accuracy).toBeCloseTo(pre.received.accuracy, 9);
    expect(totals(pre.u.feedback).loss).toBeCloseTo(pre.received.loss, 9);
    expect(totals(post.u.feedback).accuracy).toBeCloseTo(post.trained.accuracy, 9);
    expect(totals(post.u.feedback).loss).toBeCloseTo(post.trained.loss, 9);
    expect(totals(during.u.feedback).loss).toBeCloseTo(during.u.trainLoss, 4);
    expect(totals(pre.u.feedback).loss).toBeGreaterThan(totals(post.u.feedback).loss);
    expect(during.u.feedbackMode).toBe("during");
    await expect(t.train(data, { ...opts(1), feedback: "later" as "pre" })).rejects.toThrow(/feedback mode/);
    t.dispose();
  });

  it("stops on abort without leaking tensors", async () => {
    const w = initial(spec, 12);
    const data = toyData(64, 13);
    const t = new MoeTrainer(spec);
    t.load(w.backbone, w.pick([0]), w.gate);
    const count = tf.memory().numTensors;
    const signal = { aborted: false };
    const run = t.train(data, { ...opts(1, 5), signal, onProgress: (done) => (signal.aborted = done >= 32) });
    await expect(run).rejects.toMatchObject({ name: "AbortError" });
    expect(tf.memory().numTensors).toBe(count);
    // Usable afterwards.
    t.load(w.backbone, w.pick([0]), w.gate);
    await expect(t.train(data, opts(2))).resolves.toBeDefined();
    t.dispose();
  });

  it("validates its inputs", async () => {
    const t = new MoeTrainer(spec);
    await expect(t.evaluate(toyData(4, 1))).rejects.toThrow(/load\(\) first/);
    const w = initial(spec, 1);
    t.load(w.backbone, w.pick([0]), w.gate);
    await expect(t.predict(new Float32Array(10))).rejects.toThrow(/784/);
    await expect(t.train(toyData(4, 1, 5), opts(1))).rejects.toThrow(/classes/);
    await expect(t.train(toyData(4, 1), { ...opts(1), batchSize: 0 })).rejects.toThrow(/batchSize/);
    t.dispose();
    await expect(t.evaluate(toyData(4, 1))).rejects.toThrow(/disposed/);
  });
});

describe.each(["cnn"] as Preset[])("MoeTrainer.train (%s, CPU)", (preset) => {
  it("trains one epoch on 100 samples with a finite loss", async () => {
    const spec = modelSpec(preset, 3);
    const w = initial(spec, 21);
    const data = toyData(100, 22);
    const t = new MoeTrainer(spec);
    t.load(w.backbone, w.pick([0, 2]), w.gate);
    const start = tf.memory().numTensors;
    const u = await t.train(data, { ...opts(23), batchSize: 20 });
    expect(Number.isFinite(u.trainLoss)).toBe(true);
    expect(u.feedback.reduce((s, f) => s + f.usage, 0)).toBe(100);
    expect(u.backbone.map((x) => x.name)).toContain("backbone/conv1/kernel");
    expect(u.backbone[0]?.data).not.toEqual(w.backbone[0]?.data);
    expect(tf.memory().numTensors).toBe(start);
    t.dispose();
  });
});

describe("conv3x3Same", () => {
  it("the custom-gradient conv (used on WASM) matches the native one, values and gradients", () => {
    expect(convImplFor("wasm")).toBe("customGrad");
    expect(convImplFor("webgl")).toBe("native");
    const before = tf.memory().numTensors;
    const [diff, dxDiff, dxMax, dkDiff, dkMax] = tf.tidy(() => {
      const x = tf.randomNormal([2, 9, 7, 3], 0, 1, "float32", 1) as tf.Tensor4D;
      const k = tf.randomNormal([3, 3, 3, 5], 0, 1, "float32", 2) as tf.Tensor4D;
      const a = conv3x3Same(x, k, "customGrad");
      const b = conv3x3Same(x, k, "native");
      expect(a.shape).toEqual([2, 9, 7, 5]);
      const loss =
        (impl: ConvImpl) =>
        (...[xx, kk]: tf.Tensor[]) =>
          tf.sum(tf.square(conv3x3Same(xx as tf.Tensor4D, kk as tf.Tensor4D, impl)));
      const [gax, gak] = tf.grads(loss("customGrad"))([x, k]) as [tf.Tensor, tf.Tensor];
      const [gbx, gbk] = tf.grads(loss("native"))([x, k]) as [tf.Tensor, tf.Tensor];
      const maxAbs = (t: tf.Tensor) => tf.max(tf.abs(t));
      return [maxAbs(tf.sub(a, b)), maxAbs(tf.sub(gax, gbx)), maxAbs(gbx), maxAbs(tf.sub(gak, gbk)), maxAbs(gbk)].map(
        (t) => t.dataSync()[0] ?? NaN,
      );
    });
    expect(diff).toBeLessThan(1e-4);
    expect(dxDiff).toBeLessThan(1e-5 * (dxMax ?? 1));
    expect(dkDiff).toBeLessThan(1e-5 * (dkMax ?? 1));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("the gate's balance term", () => {
  it("is 1 for an even spread of top choices and k when one expert takes every sample", () => {
    const value = (rows: number[][]) => tf.tidy(() => balanceTerm(tf.tensor2d(rows)).dataSync()[0]!);
    expect(
      value([
        [0.9, 0.1],
        [0.1, 0.9],
      ]),
    ).toBeCloseTo(1, 6);
    expect(
      value([
        [1, 0],
        [1, 0],
      ]),
    ).toBeCloseTo(2, 6);
    expect(
      value([
        [0.7, 0.2, 0.1],
        [0.6, 0.3, 0.1],
      ]),
    ).toBeCloseTo(3 * 0.65, 6);
  });

  it("reaches the gate's gradient: the same seed trains another gate with it, without leaking tensors", async () => {
    const spec = modelSpec("dense", 4);
    const w = initial(spec, 3);
    const data = toyData(64, 5);
    const gateAfter = async (balance: number) => {
      const t = new MoeTrainer(spec);
      t.load(w.backbone, w.pick([0, 1]), w.gate);
      const u = await t.train(data, { ...opts(9, 2), balance });
      t.dispose();
      return u.gate.flatMap((g) => Array.from(g.data));
    };
    const before = tf.memory().numTensors;
    const plain = await gateAfter(0);
    const balanced = await gateAfter(2);
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.max(...plain.map((v, i) => Math.abs(v - balanced[i]!)))).toBeGreaterThan(1e-4);
    const t = new MoeTrainer(spec);
    t.load(w.backbone, w.pick([0, 1]), w.gate);
    await expect(t.train(data, { ...opts(9), balance: -1 })).rejects.toThrow(/balance/);
    t.dispose();
  });
});

/** The shared model/trainer on real digits in Node, as the simulator runs it (WASM backend). */
import { beforeAll, describe, expect, it } from "vitest";
import type * as TF from "@tensorflow/tfjs";
import { createRng, type LabeledSet, type NamedTensor } from "@flexmoe/core";
import { MoeTrainer, initBackbone, initExpert, initGate, modelSpec, type ModelSpec } from "@flexmoe/model";
import { loadMnist } from "@flexmoe/coordinator";
import { initNodeBackend } from "./tf-node.ts";

let tf: typeof TF;
beforeAll(async () => {
  tf = await initNodeBackend("wasm");
});

/** The samples of `data` whose label is in `classes`, split into train and test. */
function clientSplit(data: LabeledSet, classes: number[], trainFraction: number): { train: LabeledSet; test: LabeledSet } {
  const idx = [...data.y.keys()].filter((i) => classes.includes(data.y[i] ?? -1));
  const cut = Math.round(idx.length * trainFraction);
  const take = (ids: number[]): LabeledSet => {
    const x = new Float32Array(ids.length * 784);
    ids.forEach((s, i) => x.set(data.x.subarray(s * 784, (s + 1) * 784), i * 784));
    return { x, y: Uint8Array.from(ids, (s) => data.y[s] ?? 0), n: ids.length, shape: [28, 28, 1], numClasses: 10 };
  };
  return { train: take(idx.slice(0, cut)), test: take(idx.slice(cut)) };
}

function globalModel(spec: ModelSpec, seed: number) {
  const rng = createRng(seed);
  const backbone = initBackbone(spec, rng);
  const experts = Array.from({ length: spec.experts }, (_, e) => initExpert(spec, e, rng));
  const pick = (ids: number[]) => new Map(ids.map((e): [number, NamedTensor[]] => [e, experts[e] ?? []]));
  return { backbone, pick };
}

describe("initNodeBackend", () => {
  it("selects the wasm backend", () => {
    expect(tf.getBackend()).toBe("wasm");
  });
});

describe("MoeTrainer on MNIST (Node, WASM)", () => {
  it("each client improves on its own held-out split (dense, disjoint classes, 4 experts, capacity 2)", async () => {
    const spec = modelSpec("dense", 4);
    const data = loadMnist({ limit: 800, seed: 1 });
    const global = globalModel(spec, 42);
    const clients = [
      { classes: [0, 1, 2, 3, 4], experts: [0, 1] },
      { classes: [5, 6, 7, 8, 9], experts: [2, 3] },
    ];
    for (const [c, client] of clients.entries()) {
      const { train, test } = clientSplit(data, client.classes, 0.7);
      const trainer = new MoeTrainer(spec);
      trainer.load(global.backbone, global.pick(client.experts), initGate(spec, createRng(100 + c)));
      const before = await trainer.evaluate(test);
      const update = await trainer.train(train, { epochs: 3, batchSize: 16, learningRate: 1e-3, rng: createRng(c) });
      const after = await trainer.evaluate(test);
      expect(after.accuracy).toBeGreaterThan(before.accuracy + 0.3);
      expect(after.accuracy).toBeGreaterThan(0.7);
      expect(after.loss).toBeLessThan(before.loss);
      expect(update.feedback.map((f) => f.expert)).toEqual(client.experts);
      expect(update.feedback.reduce((s, f) => s + f.usage, 0)).toBe(train.n);
      trainer.dispose();
    }
  });

  it("trains the CNN preset on WASM too (custom conv gradient) without leaking", async () => {
    const spec = modelSpec("cnn", 4);
    const data = loadMnist({ limit: 100, seed: 2 });
    const global = globalModel(spec, 7);
    const trainer = new MoeTrainer(spec);
    let gate = initGate(spec, createRng(3));
    const counts: number[] = [];
    for (let round = 0; round < 2; round++) {
      trainer.load(global.backbone, global.pick(round === 0 ? [0, 1] : [1, 2]), gate);
      const update = await trainer.train(data, { epochs: 1, batchSize: 20, learningRate: 1e-3, rng: createRng(round) });
      expect(Number.isFinite(update.trainLoss)).toBe(true);
      gate = update.gate;
      counts.push(tf.memory().numTensors);
    }
    expect(counts[1]).toBe(counts[0]);
    trainer.dispose();
  });
});

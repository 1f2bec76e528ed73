/**
 * Device probes, on the current TF.js backend. `timeTraining`: samples per second of real training
 * steps of the model the page will train (what backend.ts compares the backends by). `probeDevice`:
 * the default capacity (how many experts this page holds) from what the browser says about memory
 * and cores, the backend, and a ~100 ms matMul benchmark on it; the volunteer can change it and the
 * coordinator may cap it.
 */
import * as tf from "./tf.ts";
import { createRng, type LabeledSet } from "@flexmoe/core";
import { MoeTrainer, type TrainOptions } from "@flexmoe/model";
import { initBackbone, initExpert, initGate, inputSize, type ModelSpec } from "@flexmoe/model/spec";
import type { TfBackend } from "./backend-choice.ts";

/** The coordinator's default batch size (`--batch-size`), and what a page holds at least. */
const PROBE_BATCH = 32;
const PROBE_EXPERTS = 2;
const MAX_PROBE_BATCHES = 4;

function syntheticSet(spec: ModelSpec, n: number, seed: number): LabeledSet {
  const rng = createRng(seed);
  const x = new Float32Array(n * inputSize(spec));
  for (let i = 0; i < x.length; i++) x[i] = rng.next();
  const y = Uint8Array.from({ length: n }, () => rng.int(spec.numClasses));
  return { x, y, n, shape: spec.inputShape, numClasses: spec.numClasses };
}

/**
 * Samples per second of `MoeTrainer.train` (the page's own round: batches of 32, Adam, the feedback
 * pass and the weight export) on synthetic data of the model's shape, with two experts. One untimed
 * batch first (shader compilation and first allocations are not a round's pace), then as many batches
 * (1-4) as fit in `budgetMs` at the warm-up's pace. When even four times the warm-up's pace would not
 * reach `toBeat` (another backend's result), the warm-up's pace is the answer: it cannot win.
 */
export async function timeTraining(spec: ModelSpec, opts: { budgetMs: number; toBeat?: number }): Promise<number> {
  const rng = createRng(7);
  const experts = new Map(Array.from({ length: Math.min(PROBE_EXPERTS, spec.experts) }, (_, e) => [e, initExpert(spec, e, rng)] as const));
  const trainer = new MoeTrainer(spec);
  try {
    trainer.load(initBackbone(spec, rng), experts, initGate(spec, rng));
    const train: Omit<TrainOptions, "rng"> = {
      epochs: 1,
      batchSize: PROBE_BATCH,
      learningRate: 1e-3,
      yieldToHost: () => new Promise((r) => setTimeout(r, 0)),
    };
    const t0 = performance.now();
    await trainer.train(syntheticSet(spec, PROBE_BATCH, 1), { ...train, rng });
    const warmMs = Math.max(1, performance.now() - t0);
    const warmRate = PROBE_BATCH / (warmMs / 1000);
    if (opts.toBeat !== undefined && 4 * warmRate < opts.toBeat) return warmRate;
    const batches = Math.max(1, Math.min(MAX_PROBE_BATCHES, Math.floor(opts.budgetMs / warmMs)));
    const data = syntheticSet(spec, batches * PROBE_BATCH, 2);
    const t1 = performance.now();
    await trainer.train(data, { ...train, rng });
    return data.n / (Math.max(1, performance.now() - t1) / 1000);
  } finally {
    trainer.dispose();
  }
}

export interface DeviceProbe {
  capacity: number;
  memoryGb: number | null;
  cores: number | null;
  /** Millions of multiply-adds per millisecond in the benchmark (higher is faster). */
  speed: number;
  summary: string;
}

const MAX_AUTO_CAPACITY = 4;

async function benchmark(): Promise<number> {
  const n = 128;
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  // Warm up (shader compilation), then time a few products.
  const warm = tf.matMul(a, b);
  await warm.data();
  warm.dispose();
  const reps = 8;
  const t0 = performance.now();
  let out = tf.matMul(a, b);
  for (let i = 1; i < reps; i++) {
    const next = tf.matMul(out, b);
    out.dispose();
    out = next;
  }
  await out.data();
  const ms = Math.max(0.1, performance.now() - t0);
  out.dispose();
  a.dispose();
  b.dispose();
  return (reps * n * n * n) / 1e6 / ms;
}

export async function probeDevice(backend: TfBackend): Promise<DeviceProbe> {
  const nav = navigator as Navigator & { deviceMemory?: number };
  const memoryGb = nav.deviceMemory ?? null;
  const cores = navigator.hardwareConcurrency || null;
  let speed = 0;
  try {
    speed = await benchmark();
  } catch {
    speed = 0;
  }
  // Speed bands measured roughly: phones on CPU ~1, laptops on WebGL/WASM ~10+, GPUs ~100+.
  // The floor is 2, not 1: an expert head (64-32-10, ~2.4k weights) costs under 1% of the CNN
  // backbone's ~330k multiply-adds per sample, and with one expert per page a small class
  // (3 pages, 8 experts) leaves most experts idle each round while the load bounds rotate the
  // slots, so every page keeps getting experts nobody has trained.
  let capacity = speed >= 10 ? 4 : speed >= 2 ? 3 : 2;
  if (backend === "cpu") capacity = Math.min(capacity, 2);
  if (memoryGb !== null && memoryGb < 1) capacity = 1;
  else if (memoryGb !== null && memoryGb < 4) capacity = Math.min(capacity, 2);
  capacity = Math.max(1, Math.min(MAX_AUTO_CAPACITY, capacity));
  const parts = [`${backend}`, `${speed.toFixed(1)} MMAC/ms`];
  if (memoryGb !== null) parts.push(`${memoryGb} GB`);
  if (cores !== null) parts.push(`${cores} cores`);
  return { capacity, memoryGb, cores, speed, summary: parts.join(", ") };
}

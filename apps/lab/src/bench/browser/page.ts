/**
 * The browser-training bench page (bundled by ../browser.ts with esbuild, run in headless Chromium).
 * For one backend: the MoE local step (MoeTrainer.train, the client's real round: k of E experts, own gate,
 * then the feedback pass) vs tf.layers model.fit of a plain dense model with the same CNN backbone and a
 * softmax head, on the same synthetic samples, batch size and optimizer, in the same page. Also the
 * live tensor count after 1 and 3 training rounds (each round reloads weights, as the client does).
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRng, type LabeledSet, type NamedTensor } from "@flexmoe/core";
import { MoeTrainer } from "@flexmoe/model";
import { CNN_CHANNELS, DENSE_HIDDEN, initBackbone, initExpert, initGate, modelSpec } from "@flexmoe/model/spec";

// The .wasm files are served next to the bundle.
setWasmPaths("/");

export interface PageConfig {
  backend: string;
  /** "dense" where the backend lacks the CNN's gradient kernels (WASM has no Conv2DBackpropFilter). */
  preset: "cnn" | "dense";
  samples: number;
  batchSize: number;
  experts: number;
  capacity: number;
  reps: number;
}

export interface PageResult {
  backend: string;
  preset?: "cnn" | "dense";
  ok: boolean;
  error?: string;
  moeSamplesPerSec?: number;
  denseSamplesPerSec?: number;
  moeMs?: number[];
  denseMs?: number[];
  tensorsAfter1?: number;
  tensorsAfter3?: number;
}

// Forwarded to the driver's progress line.
const log = (msg: string): void => console.log(`[bench] ${msg}`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function run(cfg: PageConfig): Promise<PageResult> {
  try {
    if (!(await tf.setBackend(cfg.backend))) return { backend: cfg.backend, ok: false, error: "setBackend returned false" };
    await tf.ready();
    const probe = tf.tidy(() => tf.matMul(tf.ones([4, 4]), tf.ones([4, 4])).sum());
    const v = (await probe.data())[0];
    probe.dispose();
    if (v !== 64) return { backend: cfg.backend, ok: false, error: `probe computed ${v}` };
  } catch (e) {
    return { backend: cfg.backend, ok: false, error: (e as Error).message };
  }

  const spec = modelSpec(cfg.preset, cfg.experts);
  const rng = createRng(11);
  const [h, w, c] = spec.inputShape;
  const size = h * w * c;
  const data: LabeledSet = {
    x: Float32Array.from({ length: cfg.samples * size }, () => rng.next()),
    y: Uint8Array.from({ length: cfg.samples }, () => rng.int(spec.numClasses)),
    n: cfg.samples,
    shape: spec.inputShape,
    numClasses: spec.numClasses,
  };
  const backbone = initBackbone(spec, rng);
  const experts = new Map<number, NamedTensor[]>();
  for (let e = 0; e < cfg.capacity; e++) experts.set(e, initExpert(spec, e, rng));
  const gate = initGate(spec, rng);

  // MoE: one full client round per rep (load + train 1 epoch + feedback pass + export).
  const trainer = new MoeTrainer(spec);
  const moeRound = async (): Promise<void> => {
    trainer.load(backbone, experts, gate);
    await trainer.train(data, { epochs: 1, batchSize: cfg.batchSize, learningRate: 0.001, rng: createRng(1) });
  };

  // Dense baseline: same backbone layers, a softmax head, model.fit for 1 epoch.
  const backboneLayers: tf.layers.Layer[] =
    cfg.preset === "cnn"
      ? [
          tf.layers.reshape({ targetShape: [h, w, c], inputShape: [size] }),
          ...CNN_CHANNELS.flatMap((filters) => [
            tf.layers.conv2d({ filters, kernelSize: 3, padding: "same", activation: "relu" }),
            tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
          ]),
          tf.layers.flatten(),
        ]
      : [
          tf.layers.dense({ units: DENSE_HIDDEN, activation: "relu", inputShape: [size] }),
          tf.layers.dense({ units: spec.featureDim, activation: "relu" }),
        ];
  const model = tf.sequential({ layers: [...backboneLayers, tf.layers.dense({ units: spec.numClasses, activation: "softmax" })] });
  model.compile({ optimizer: tf.train.adam(0.001), loss: "categoricalCrossentropy" });
  const xs = tf.tensor2d(data.x, [data.n, size]);
  const ys = tf.oneHot(tf.tensor1d(Array.from(data.y), "int32"), spec.numClasses);
  const denseRound = async (): Promise<void> => {
    await model.fit(xs, ys, { epochs: 1, batchSize: cfg.batchSize, shuffle: true, verbose: 0 });
  };

  const time = async (f: () => Promise<void>): Promise<number> => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  try {
    // Warm-up (shader compilation, kernel caches); the tensor count after this first round is the
    // reference, and the one after the third round (the second timed one) must equal it.
    await moeRound();
    log(`${cfg.backend}: moe warm-up done`);
    await denseRound();
    // Both models (and the dense model's optimizer state) exist from here on.
    const tensorsAfter1 = tf.memory().numTensors;
    log(`${cfg.backend}: dense warm-up done`);
    const moeMs: number[] = [];
    const denseMs: number[] = [];
    let tensorsAfter3 = -1;
    for (let r = 0; r < cfg.reps; r++) {
      moeMs.push(await time(moeRound));
      if (r === 1) tensorsAfter3 = tf.memory().numTensors;
      denseMs.push(await time(denseRound));
      log(`${cfg.backend}: rep ${r + 1}: moe ${Math.round(moeMs[r] ?? 0)} ms, dense ${Math.round(denseMs[r] ?? 0)} ms`);
    }
    return {
      backend: cfg.backend,
      preset: cfg.preset,
      ok: true,
      moeSamplesPerSec: cfg.samples / (median(moeMs) / 1000),
      denseSamplesPerSec: cfg.samples / (median(denseMs) / 1000),
      moeMs,
      denseMs,
      tensorsAfter1,
      ...(tensorsAfter3 >= 0 && { tensorsAfter3 }),
    };
  } catch (e) {
    return { backend: cfg.backend, ok: false, error: (e as Error).message };
  } finally {
    trainer.dispose();
    model.dispose();
    xs.dispose();
    ys.dispose();
  }
}

(globalThis as unknown as { flexmoeBench: { run: typeof run } }).flexmoeBench = { run };

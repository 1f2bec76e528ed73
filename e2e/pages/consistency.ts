/**
 * Backend consistency page (bundled by e2e/support/bundle.ts): three local rounds of the real
 * MoeTrainer from one seeded start on the chosen backend, reporting per-round losses, accuracies and
 * weight norms, so the spec can compare every backend with the CPU reference.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRng, type LabeledSet, type NamedTensor } from "@flexmoe/core";
import { MoeTrainer } from "@flexmoe/model";
import { initBackbone, initExpert, initGate, modelSpec, type Preset } from "@flexmoe/model/spec";

setWasmPaths("/");

export interface RoundTrace {
  before: { accuracy: number; loss: number };
  trainLoss: number;
  /** L2 norm of every backbone, expert and gate tensor after the round, in manifest order. */
  norms: number[];
  usage: number[];
}

export interface ConsistencyResult {
  backend: string;
  rounds: RoundTrace[];
  tensorsAfter: number[];
}

const norm = (t: NamedTensor): number => Math.sqrt(t.data.reduce((a, b) => a + b * b, 0));

async function run(backend: string, preset: Preset, rounds: number): Promise<ConsistencyResult> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialize`);
  await tf.ready();
  const spec = modelSpec(preset, 8);
  const rng = createRng(11);
  const n = 64;
  const size = 784;
  // Learnable on purpose: class c brightens one quarter of the image.
  const y = Uint8Array.from({ length: n }, () => rng.int(4));
  const x = new Float32Array(n * size);
  for (let i = 0; i < n; i++) for (let p = 0; p < size; p++) x[i * size + p] = (Math.floor(p / 196) === y[i] ? 0.8 : 0) + 0.2 * rng.next();
  const data: LabeledSet = { x, y, n, shape: [28, 28, 1], numClasses: 10 };
  let backbone = initBackbone(spec, rng);
  let experts = new Map<number, NamedTensor[]>([
    [2, initExpert(spec, 2, rng)],
    [5, initExpert(spec, 5, rng)],
  ]);
  let gate = initGate(spec, rng);
  const trainer = new MoeTrainer(spec);
  const out: ConsistencyResult = { backend: tf.getBackend(), rounds: [], tensorsAfter: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      trainer.load(backbone, experts, gate);
      const before = await trainer.evaluate(data);
      const u = await trainer.train(data, { epochs: 2, batchSize: 32, learningRate: 0.003, rng: createRng(r + 1) });
      backbone = u.backbone;
      experts = new Map(u.experts.map((e) => [e.expert, e.tensors]));
      gate = u.gate;
      out.rounds.push({
        before,
        trainLoss: u.trainLoss,
        norms: [...backbone, ...u.experts.flatMap((e) => e.tensors), ...gate].map(norm),
        usage: u.experts.map((e) => e.usage),
      });
      out.tensorsAfter.push(tf.memory().numTensors);
    }
  } finally {
    trainer.dispose();
  }
  return out;
}

(globalThis as unknown as { flexmoeConsistency: { run: typeof run } }).flexmoeConsistency = { run };

/**
 * Simulator throughput, the experiments' bottleneck: local-training samples per second of one
 * `flexmoe experiment` run in a worker (dense preset, WASM: what the grid runs), against the same
 * trainer's own `MoeTrainer.train` in this process on the same backend and model. The ratio is what
 * the simulator's loop (data, evaluation, feedback, planning, aggregation, IPC) leaves of training.
 */
import { createRng, streamRng } from "@flexmoe/core";
import { MoeTrainer } from "@flexmoe/model";
import { initGate, initWeights, modelSpec } from "@flexmoe/model/spec";
import { initNodeBackend } from "../tf-node.ts";
import type { BenchContext } from "./common.ts";
import { runAll } from "../sim/pool.ts";
import type { RunSpec } from "../sim/types.ts";
import { sig } from "./stats.ts";

export interface SimResult {
  preset: "dense";
  clients: number;
  rounds: number;
  epochs: number;
  /** Training samples per second over the whole simulated run (wall time of the run in its worker). */
  simSamplesPerSec: number;
  /** MoeTrainer.train alone, same model and backend, in this process. */
  trainerSamplesPerSec: number;
  /** simSamplesPerSec / trainerSamplesPerSec. */
  ratio: number;
}

export async function benchSim(ctx: BenchContext): Promise<SimResult> {
  const clients = ctx.quick ? 10 : 20;
  const rounds = ctx.quick ? 4 : 8;
  const samplesPerClient = 200;
  const testFraction = 0.2;
  const epochs = 1;
  const run: RunSpec = {
    data: { dataset: "mnist", clientSamples: clients * samplesPerClient, globalTest: 1000 },
    partition: "classes:4",
    strategy: "flex",
    seed: 0,
    preset: "dense",
    clients,
    experts: 8,
    capacity: "2",
    rounds,
    localEpochs: epochs,
    batchSize: 32,
    learningRate: 0.005,
    fitness: "acc",
    alphaL: 1,
    beta: 0.5,
    q0: 1,
    slack: 0,
    testFraction,
  };
  ctx.progress(`sim: one run, ${clients} clients x ${rounds} rounds (dense, WASM, 1 worker)`);
  const [row] = await runAll([run], 1);
  if (!row) throw new Error("the simulated run returned no row");
  const trainPerClient = Math.round(samplesPerClient * (1 - testFraction));
  const simSamplesPerSec = (clients * rounds * epochs * trainPerClient) / row.seconds;

  ctx.progress("sim: MoeTrainer.train alone, same model and backend");
  await initNodeBackend("wasm", { quiet: true });
  const spec = modelSpec("dense", 8);
  const w = initWeights(spec, streamRng(0, "init"));
  const rng = createRng(1);
  const n = trainPerClient;
  const data = {
    x: Float32Array.from({ length: n * 784 }, () => rng.next()),
    y: Uint8Array.from({ length: n }, (_, i) => i % 10),
    n,
    shape: [28, 28, 1] as [number, number, number],
    numClasses: 10,
  };
  const gate = initGate(spec, streamRng(0, "gate"));
  const trainer = new MoeTrainer(spec);
  const reps = ctx.quick ? 4 : 8;
  let seconds = 0;
  try {
    for (let r = 0; r <= reps; r++) {
      trainer.load(
        w.backbone,
        new Map([
          [0, w.experts[0]!],
          [1, w.experts[1]!],
        ]),
        gate,
      );
      const t0 = performance.now();
      await trainer.train(data, { epochs, batchSize: 32, learningRate: 0.005, rng: createRng(r) });
      // The first call warms the kernels up; it is not timed.
      if (r > 0) seconds += (performance.now() - t0) / 1000;
    }
  } finally {
    trainer.dispose();
  }
  const trainerSamplesPerSec = (reps * epochs * n) / seconds;
  return {
    preset: "dense",
    clients,
    rounds,
    epochs,
    simSamplesPerSec: sig(simSamplesPerSec),
    trainerSamplesPerSec: sig(trainerSamplesPerSec),
    ratio: sig(simSamplesPerSec / trainerSamplesPerSec, 3),
  };
}

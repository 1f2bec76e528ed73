/**
 * One simulated federation run in Node: the same core (assignment, fitness, aggregation, metrics)
 * and the same MoeTrainer the browser uses, with every client in this process and all of them
 * taking part in every round (paper default).
 *
 * Round semantics follow apps/coordinator/src/federation.ts:
 *   assign (Q + deficit) -> each client loads backbone + held experts + its own gate, evaluates on its
 *   held-out split BEFORE training, trains -> aggregate (backbone by |D_c|, experts by usage)
 *   -> Q EMA update with the feedback -> deficit update.
 * After the last round every client is evaluated once more with the final global weights.
 */
import {
  aggregateRound,
  assign,
  createRng,
  encodeTensors,
  FitnessMatrix,
  holdersLoad,
  loadStats,
  parsePartition,
  partitionIndices,
  routedLoad,
  subset,
  updateDeficit,
  type ExpertFeedback,
  type FitnessKind,
  type LabeledSet,
  type NamedTensor,
  type Rng,
} from "@flexmoe/core";
import { MoeTrainer } from "@flexmoe/model";
import {
  countParams,
  backboneManifest,
  expertManifest,
  gateManifest,
  initBackbone,
  initExpert,
  initGate,
  modelSpec,
  type ModelSpec,
} from "@flexmoe/model/spec";
import { parseCapacity } from "./capacity.ts";
import type { SimData } from "./data.ts";
import type { ResultRow, RunProgress, RunSpec } from "./types.ts";

export { parseCapacity };

/** Expert head width of the MoE experts (the model package's default). */
export const EXPERT_HIDDEN = 32;

/** A seeded stream per purpose, so every strategy of a seed sees the same partition, init and shuffles. */
export function streamRng(seed: number, tag: string): Rng {
  // FNV-1a of "seed:tag" (the seed only enters through the text: xoring it into the basis as well
  // would cancel against its own last digit and make every seed hash alike).
  let h = 0x811c9dc5;
  const s = `${seed >>> 0}:${tag}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return createRng(h >>> 0);
}

interface SimClient {
  id: string;
  train: LabeledSet;
  test: LabeledSet;
  capacity: number;
  gate: NamedTensor[];
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Model spec of a run: dense = one expert whose head is widened to the mean capacity's active width. */
export function runModelSpec(run: RunSpec, numClasses: number, capacities: readonly number[]): ModelSpec {
  if (run.strategy === "dense") {
    const k = Math.max(1, Math.round(mean(capacities)));
    return modelSpec("dense", 1, numClasses, { expertHidden: EXPERT_HIDDEN * k });
  }
  return modelSpec("dense", run.experts, numClasses, { expertHidden: EXPERT_HIDDEN });
}

/** The multiplier attacker number `i` applies to its delta. */
function attackStep(a: NonNullable<RunSpec["attack"]>, i: number): number {
  const flip = a.kind === "signflip" || (a.kind === "mixed" && i % 2 === 0);
  return flip ? -a.factor : a.factor;
}

/** Rewrites an honest upload x as g + step (x - g), in place. */
function poison(
  u: { backbone: NamedTensor[]; experts: { expert: number; tensors: NamedTensor[] }[] },
  backbone: readonly NamedTensor[],
  experts: readonly (readonly NamedTensor[])[],
  step: number,
): void {
  const apply = (xs: NamedTensor[], gs: readonly NamedTensor[]) =>
    xs.forEach((x, t) => {
      const g = (gs[t] as NamedTensor).data;
      for (let j = 0; j < x.data.length; j++) x.data[j] = (g[j] as number) + step * ((x.data[j] as number) - (g[j] as number));
    });
  apply(u.backbone, backbone);
  for (const ex of u.experts) apply(ex.tensors, experts[ex.expert] as NamedTensor[]);
}

export async function simulateRun(run: RunSpec, data: SimData, onProgress?: (p: RunProgress) => void): Promise<ResultRow> {
  const t0 = performance.now();
  const { pool, globalTest } = data;
  const C = run.clients;
  const capacities = parseCapacity(run.capacity, C, run.experts);
  const spec = runModelSpec(run, pool.numClasses, capacities);
  const E = spec.experts;
  const fitness: FitnessKind = run.fitness === "acc" ? { kind: "acc" } : { kind: "loss", alphaL: run.alphaL };

  // Shards: the same for every strategy of a seed (ShardStore-style split: held-out part first).
  const parts = partitionIndices(pool.y, pool.numClasses, C, parsePartition(run.partition), streamRng(run.seed, "partition"));
  const shuffleRng = streamRng(run.seed, "shard-order");
  const initRng = streamRng(run.seed, "init");
  const backbone0 = initBackbone(spec, initRng);
  const experts0 = Array.from({ length: E }, (_, e) => initExpert(spec, e, initRng));
  const clients: SimClient[] = parts.map((idx, c) => {
    shuffleRng.shuffle(idx);
    const nTest = Math.max(1, Math.round(idx.length * run.testFraction));
    return {
      id: `c${c + 1}`,
      train: subset(pool, idx.slice(nTest)),
      test: subset(pool, idx.slice(0, nTest)),
      capacity: run.strategy === "full" ? E : run.strategy === "dense" ? 1 : (capacities[c] as number),
      gate: initGate(spec, streamRng(run.seed, `gate:${c}`)),
    };
  });
  const ids = clients.map((c) => c.id);
  const assignRng = streamRng(run.seed, "assign");

  let backbone = backbone0;
  let experts = experts0;
  const Q = new FitnessMatrix(E, run.q0);
  let deficit = new Array<number>(E).fill(0);
  const cumulative = new Array<number>(E).fill(0);

  const row: Pick<
    ResultRow,
    | "accuracy"
    | "loss"
    | "trainLoss"
    | "cvHoldersPerRound"
    | "cvSamplesPerRound"
    | "cvRoutedPerRound"
    | "holdersPerRound"
    | "routedPerRound"
  > = {
    accuracy: [],
    loss: [],
    trainLoss: [],
    cvHoldersPerRound: [],
    cvSamplesPerRound: [],
    cvRoutedPerRound: [],
    holdersPerRound: [],
    routedPerRound: [],
  };
  const maxVio: number[] = [];
  const starved: number[] = [];
  let bytesDown = 0;
  let bytesUp = 0;
  let held: number[][] = clients.map(() => []);
  const trainer = new MoeTrainer(spec);
  const attackers = Math.round((run.attack?.fraction ?? 0) * C);
  const expertsOf = (list: readonly number[]): Map<number, NamedTensor[]> => new Map(list.map((e) => [e, experts[e] as NamedTensor[]]));

  try {
    for (let round = 1; round <= run.rounds; round++) {
      if (run.strategy === "full" || run.strategy === "dense") {
        held = clients.map(() => Array.from({ length: E }, (_, e) => e));
      } else {
        const a = assign(
          { clients: C, experts: E, fitness: Q.toDense(ids), capacity: clients.map((c) => c.capacity), slack: run.slack, deficit },
          run.strategy,
          { rng: assignRng, round },
        );
        held = a.experts.map((l) => [...l]);
      }
      const load = holdersLoad(held, E);

      const updates: {
        backbone: NamedTensor[];
        numSamples: number;
        experts: { expert: number; tensors: NamedTensor[]; usage: number }[];
      }[] = [];
      const feedback: ExpertFeedback[][] = [];
      let accSum = 0;
      let lossSum = 0;
      let evalN = 0;
      let trainLoss = 0;
      for (let c = 0; c < C; c++) {
        const client = clients[c] as SimClient;
        const mine = held[c] as number[];
        const sent = [...backbone, ...mine.flatMap((e) => experts[e] as NamedTensor[])];
        bytesDown += encodeTensors(sent).byteLength;
        trainer.load(backbone, expertsOf(mine), client.gate);
        const ev = await trainer.evaluate(client.test);
        accSum += ev.accuracy * client.test.n;
        lossSum += ev.loss * client.test.n;
        evalN += client.test.n;
        const u = await trainer.train(client.train, {
          epochs: run.localEpochs,
          batchSize: run.batchSize,
          learningRate: run.learningRate,
          rng: streamRng(run.seed, `train:${c}:${round}`),
        });
        client.gate = u.gate;
        if (run.attack && c < attackers) poison(u, backbone, experts, attackStep(run.attack, c));
        bytesUp += encodeTensors([...u.backbone, ...u.experts.flatMap((x) => x.tensors)]).byteLength;
        updates.push({ backbone: u.backbone, numSamples: u.numSamples, experts: u.experts });
        feedback.push(u.feedback);
        trainLoss += u.loss;
        onProgress?.({ round, rounds: run.rounds, client: c + 1, clients: C });
      }

      const next = aggregateRound(backbone, experts, updates, run.aggregation);
      backbone = next.backbone;
      experts = next.experts;
      clients.forEach((client, c) => Q.update(client.id, held[c] as number[], feedback[c] ?? [], { beta: run.beta, fitness }));
      deficit = updateDeficit(
        deficit,
        load,
        load.reduce((a, b) => a + b, 0),
      );
      const routed = routedLoad(feedback, E);
      routed.forEach((r, e) => (cumulative[e] = (cumulative[e] ?? 0) + r));

      const hs = loadStats(load);
      const acc = evalN > 0 ? accSum / evalN : 0;
      row.accuracy.push(acc);
      row.loss.push(evalN > 0 ? lossSum / evalN : 0);
      row.trainLoss.push(trainLoss / C);
      row.cvHoldersPerRound.push(hs.cv);
      row.cvRoutedPerRound.push(loadStats(routed).cv);
      row.cvSamplesPerRound.push(loadStats(cumulative).cv);
      row.holdersPerRound.push(load);
      row.routedPerRound.push(routed);
      maxVio.push(hs.maxOverMean - 1);
      starved.push(hs.starved);
      onProgress?.({ round, rounds: run.rounds, client: C, clients: C, accuracy: acc });
    }

    // Final evaluation: final global weights of the experts each client held last, with its own gate.
    let accSum = 0;
    let lossSum = 0;
    let evalN = 0;
    let globalAcc = 0;
    for (let c = 0; c < C; c++) {
      const client = clients[c] as SimClient;
      trainer.load(backbone, expertsOf(held[c] as number[]), client.gate);
      const ev = await trainer.evaluate(client.test);
      accSum += ev.accuracy * client.test.n;
      lossSum += ev.loss * client.test.n;
      evalN += client.test.n;
      if (globalTest.n > 0) globalAcc += (await trainer.evaluate(globalTest)).accuracy;
    }

    const cs = loadStats(cumulative);
    const perClientParams = clients.map(
      (_c, i) =>
        countParams(backboneManifest(spec)) +
        countParams(gateManifest(spec)) +
        (held[i] as number[]).reduce((s, e) => s + countParams(expertManifest(spec, e)), 0),
    );
    return {
      dataset: run.data.dataset,
      partition: run.partition,
      strategy: run.strategy,
      seed: run.seed,
      capacity: run.capacity,
      fitness: run.fitness,
      clients: C,
      experts: run.experts,
      rounds: run.rounds,
      localEpochs: run.localEpochs,
      finalAccuracy: evalN > 0 ? accSum / evalN : 0,
      finalLoss: evalN > 0 ? lossSum / evalN : 0,
      finalGlobalAccuracy: globalAcc / C,
      ...row,
      cvHolders: mean(row.cvHoldersPerRound),
      cvSamples: cs.cv,
      maxVioHolders: mean(maxVio),
      maxVioSamples: cs.mean === 0 ? 0 : cs.maxOverMean - 1,
      starvedHolders: mean(starved),
      starvedSamples: cs.starved,
      cumulativeRouted: [...cumulative],
      lastAssignment: held.map((list) => Array.from({ length: E }, (_, e) => (list.includes(e) ? 1 : 0))),
      capacities: clients.map((c) => c.capacity),
      bytesDownPerClient: bytesDown / C,
      bytesUpPerClient: bytesUp / C,
      bytesPerClient: (bytesDown + bytesUp) / C,
      activeParams: mean(perClientParams),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    trainer.dispose();
  }
}

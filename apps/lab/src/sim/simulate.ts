/**
 * One simulated federation in Node: a driver around core's round engine (planRound/applyRound, the
 * same functions the live coordinator calls) with every client in this process, taking part in
 * every round (paper default). Each client does what the page does: load the received backbone and
 * experts with its own gate, evaluate on its held-out split BEFORE training, train with the same
 * MoeTrainer, upload. Shards (core's splitShards) and the per-client streams (clientRng) are the
 * coordinator's and the page's, so a seeded live run and a simulation give bit-identical results
 * (apps/lab/src/sim/equivalence.test.ts).
 * After the last round every client is evaluated once more with the final global weights.
 */
import {
  applyRound,
  assignRng,
  clientRng,
  clientTensors,
  encodeTensors,
  initialState,
  parsePartition,
  planRound,
  splitShards,
  streamRng,
  subset,
  type ClientUpdate,
  type EngineState,
  type LabeledSet,
  type NamedTensor,
  type RoundResult,
} from "@flexmoe/core";
import { MoeTrainer, runLocalRound, type LocalRoundResult } from "@flexmoe/model";
import {
  countParams,
  gateForRound,
  gateManifest,
  initGate,
  initWeights,
  modelLayout,
  modelSpec,
  PRESET_DEFAULTS,
  type ModelSpec,
} from "@flexmoe/model/spec";
import { parseCapacity } from "./capacity.ts";
import { runEngineConfig, trainingOf } from "./run-config.ts";
import type { SimData } from "./data.ts";
import type { ResultRow, RunProgress, RunSpec } from "./types.ts";

export { parseCapacity, runEngineConfig, trainingOf };

interface SimClient {
  id: string;
  train: LabeledSet;
  test: LabeledSet;
  capacity: number;
  gate: NamedTensor[];
  /** The experts this client held in its last round (null before its first). */
  held: number[] | null;
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Model spec of a run: the preset's experts; dense = one expert whose head is widened to the mean capacity's active width. */
export function runModelSpec(run: RunSpec, numClasses: number, capacities: readonly number[]): ModelSpec {
  const preset = run.preset ?? "dense";
  if (run.strategy === "dense") {
    const k = Math.max(1, Math.round(mean(capacities)));
    return modelSpec(preset, 1, numClasses, { expertHidden: PRESET_DEFAULTS[preset].expertHidden * k });
  }
  return modelSpec(preset, run.experts, numClasses);
}

/** The Node backend a run needs: WASM is fast but has no Conv2D gradient, so the cnn preset runs on CPU. */
export function runBackend(run: RunSpec): "wasm" | "cpu" {
  return (run.preset ?? "dense") === "cnn" ? "cpu" : "wasm";
}

/** A client's local round as the engine's update (what the coordinator builds from the wire). */
export function clientUpdateOf(clientId: string, ev: LocalRoundResult["eval"], u: LocalRoundResult["update"]): ClientUpdate {
  return {
    clientId,
    numSamples: u.numSamples,
    backbone: u.backbone,
    experts: u.experts,
    feedback: u.feedback,
    evalAccuracy: ev.accuracy,
    evalLoss: ev.loss,
    evalSamples: ev.samples,
    trainLoss: u.trainLoss,
  };
}

/** The multiplier attacker number `i` applies to its delta. */
function attackStep(a: NonNullable<RunSpec["attack"]>, i: number): number {
  const flip = a.kind === "signflip" || (a.kind === "mixed" && i % 2 === 0);
  return flip ? -a.factor : a.factor;
}

/** Rewrites an honest upload x as g + step (x - g), in place. */
function poison(u: ClientUpdate, state: EngineState, step: number): void {
  const apply = (xs: NamedTensor[], gs: readonly NamedTensor[]) =>
    xs.forEach((x, t) => {
      const g = (gs[t] as NamedTensor).data;
      for (let j = 0; j < x.data.length; j++) x.data[j] = (g[j] as number) + step * ((x.data[j] as number) - (g[j] as number));
    });
  apply(u.backbone, state.backbone);
  for (const ex of u.experts) apply(ex.tensors, state.experts[ex.expert] as NamedTensor[]);
}

/** The result row's per-round series, read off the engine's records (one vocabulary). */
function seriesOf(records: readonly RoundResult[]) {
  return {
    accuracy: records.map((r) => r.accuracy),
    loss: records.map((r) => r.loss),
    trainLoss: records.map((r) => r.trainLoss),
    cvPerRound: records.map((r) => r.cv),
    cvRoutedPerRound: records.map((r) => r.cvRouted),
    cvRoutedCumulativePerRound: records.map((r) => r.cvRoutedCumulative),
    loadPerRound: records.map((r) => r.load),
    routedPerRound: records.map((r) => r.routed),
  };
}

/** What a finished simulation leaves besides its row: for tests that compare it with a live run. */
export interface SimOutcome {
  row: ResultRow;
  state: EngineState;
  records: RoundResult[];
}

function qRows(dense: Float64Array, E: number): number[][] {
  return Array.from({ length: dense.length / E }, (_, c) => Array.from(dense.subarray(c * E, (c + 1) * E)));
}

export async function simulateRun(run: RunSpec, data: SimData, onProgress?: (p: RunProgress) => void): Promise<ResultRow> {
  return (await simulate(run, data, onProgress)).row;
}

export async function simulate(run: RunSpec, data: SimData, onProgress?: (p: RunProgress) => void): Promise<SimOutcome> {
  const t0 = performance.now();
  const { pool, globalTest } = data;
  const C = run.clients;
  const capacities = parseCapacity(run.capacity, C, run.experts);
  const spec = runModelSpec(run, pool.numClasses, capacities);
  const layout = modelLayout(spec);
  const E = spec.experts;
  const config = runEngineConfig(run);
  const runId = run.runId ?? `sim-${run.seed}`;

  // Shards as the coordinator deals them (one per client, in id order).
  const shards = splitShards(
    pool.y,
    pool.numClasses,
    { shards: C, partition: parsePartition(run.partition), testFraction: run.testFraction, maxSamples: 0 },
    run.seed,
  );
  const clients: SimClient[] = shards.map((s, c) => {
    const id = `c${c + 1}`;
    return {
      id,
      train: subset(pool, s.train),
      test: subset(pool, s.test),
      capacity: capacities[c] as number,
      gate: initGate(spec, clientRng(runId, id, "gate")),
      held: null,
    };
  });
  let state: EngineState = initialState(initWeights(spec, streamRng(run.seed, "init")), run.q0);
  const records: RoundResult[] = [];
  let bytesDown = 0;
  let bytesUp = 0;
  let held: readonly (readonly number[])[] = clients.map(() => []);
  const trainer = new MoeTrainer(spec);
  const attackers = Math.round((run.attack?.fraction ?? 0) * C);
  const byId = new Map(clients.map((c, i) => [c.id, { client: c, index: i }]));
  const expertsOf = (list: readonly number[]): Map<number, NamedTensor[]> =>
    new Map(list.map((e) => [e, state.experts[e] as NamedTensor[]]));

  try {
    for (let round = 1; round <= run.rounds; round++) {
      const plan = planRound(
        state,
        clients.map((c) => ({ id: c.id, capacity: c.capacity })),
        config,
        assignRng(run.seed, round),
      );
      held = plan.experts;
      const updates: ClientUpdate[] = [];
      for (const [i, id] of plan.participants.entries()) {
        const { client, index } = byId.get(id) as { client: SimClient; index: number };
        const mine = plan.experts[i] as number[];
        bytesDown += encodeTensors(clientTensors(state.backbone, state.experts, mine)).byteLength;
        const { eval: ev, update: u } = await runLocalRound(
          trainer,
          {
            backbone: state.backbone,
            experts: expertsOf(mine),
            gate: gateForRound(client.gate, client.held, mine, trainingOf(run).gateInit ?? "keep"),
          },
          client,
          { ...trainingOf(run), rng: clientRng(runId, id, `train:${round}`) },
        );
        client.gate = u.gate;
        client.held = [...mine];
        const update = clientUpdateOf(id, ev, u);
        if (run.attack && index < attackers) poison(update, state, attackStep(run.attack, index));
        bytesUp += encodeTensors([...update.backbone, ...update.experts.flatMap((x) => x.tensors)]).byteLength;
        updates.push(update);
        onProgress?.({ round, rounds: run.rounds, client: i + 1, clients: C });
      }
      const applied = applyRound(state, plan, updates, config);
      state = applied.state;
      records.push(applied.record);
      onProgress?.({
        round,
        rounds: run.rounds,
        client: C,
        clients: C,
        ...(applied.record.accuracy !== null && { accuracy: applied.record.accuracy }),
      });
    }

    // Final evaluation: final global weights of the experts each client held last, with its own gate.
    let accSum = 0;
    let lossSum = 0;
    let evalN = 0;
    let globalAcc = 0;
    for (const [c, client] of clients.entries()) {
      trainer.load([...state.backbone], expertsOf(held[c] ?? []), client.gate);
      const ev = await trainer.evaluate(client.test);
      accSum += ev.accuracy * client.test.n;
      lossSum += ev.loss * client.test.n;
      evalN += client.test.n;
      if (globalTest.n > 0) globalAcc += (await trainer.evaluate(globalTest)).accuracy;
    }

    const series = seriesOf(records);
    const cum = state.cumulativeRouted;
    const cumMean = mean([...cum]);
    const perClientParams = clients.map(
      (_c, i) =>
        countParams(layout.backbone) +
        countParams(gateManifest(spec)) +
        (held[i] ?? []).reduce((s, e) => s + countParams(layout.experts[e] ?? []), 0),
    );
    const last = records[records.length - 1];
    const row: ResultRow = {
      dataset: run.data.dataset,
      partition: run.partition,
      strategy: run.strategy,
      seed: run.seed,
      capacity: run.capacity,
      fitness: run.fitness,
      feedback: trainingOf(run).feedback,
      clients: C,
      experts: run.experts,
      rounds: run.rounds,
      localEpochs: run.localEpochs,
      finalAccuracy: evalN > 0 ? accSum / evalN : 0,
      finalLoss: evalN > 0 ? lossSum / evalN : 0,
      finalGlobalAccuracy: globalAcc / C,
      ...series,
      cvHolders: mean(records.map((r) => r.cv)),
      cvSamples: last?.cvRoutedCumulative ?? 0,
      maxVioHolders: mean(records.map((r) => r.maxVio)),
      maxVioSamples: cumMean === 0 ? 0 : Math.max(...cum) / cumMean - 1,
      starvedHolders: mean(records.map((r) => r.starved)),
      starvedSamples: cum.filter((v) => v === 0).length,
      cumulativeRouted: [...cum],
      lastAssignment: held.map((list) => Array.from({ length: E }, (_, e) => (list.includes(e) ? 1 : 0))),
      finalQ: qRows(state.fitness.toDense(clients.map((c) => c.id)), E),
      capacities: clients.map((c) => (run.strategy === "full" || run.strategy === "dense" ? E : c.capacity)),
      bytesDownPerClient: bytesDown / C,
      bytesUpPerClient: bytesUp / C,
      bytesPerClient: (bytesDown + bytesUp) / C,
      activeParams: mean(perClientParams),
      seconds: (performance.now() - t0) / 1000,
    };
    return { row, state, records };
  } finally {
    trainer.dispose();
  }
}

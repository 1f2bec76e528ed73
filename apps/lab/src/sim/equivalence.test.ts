/**
 * One engine, two drivers: the same seeded federation run once through the live coordinator (real
 * Socket.IO, four clients that train with the real MoeTrainer on the shards the coordinator serves)
 * and once through the simulator gives bit-identical global weights, Q, deficit and round records.
 */
import { encodeTensors, type LabeledSet } from "@flexmoe/core";
import { createApp, loadMnist, resolveConfig, ShardStore, silentLogger, systemClock, type App } from "@flexmoe/coordinator";
import { TrainingClient } from "@flexmoe/testkit";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { initNodeBackend } from "../tf-node.ts";
import { simulate } from "./simulate.ts";
import type { RunSpec } from "./types.ts";

/** Pixels as the shard format carries them (bytes), so both drivers see the very same values. */
function quantized(set: LabeledSet): LabeledSet {
  return { ...set, x: Float32Array.from(set.x, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255) / 255) };
}

const ROUNDS = 3;
const CLIENTS = 4;
let app: App | null = null;
const clients: TrainingClient[] = [];

beforeAll(async () => {
  await initNodeBackend("wasm");
});
afterAll(async () => {
  for (const c of clients) c.close();
  await app?.close();
});

it("gives bit-identical weights, Q, deficit and records live and simulated after 3 rounds", async () => {
  const pool = quantized(loadMnist({ limit: 240, seed: 0 }));
  const config = resolveConfig({
    experts: 4,
    minClients: CLIENTS,
    rounds: ROUNDS,
    gatherMs: 20,
    roundTimeoutSec: 120,
    preset: "dense",
    shards: CLIENTS,
    partition: "dirichlet:0.8",
    testFraction: 0.2,
    seed: 11,
    // Binds within 3 rounds, so the hold limit is part of what must match.
    maxHold: 2,
    training: { epochs: 1, batchSize: 16, learningRate: 0.005 },
  });
  let tokenNo = 0;
  app = createApp({
    config,
    clock: systemClock,
    logger: silentLogger,
    shards: new ShardStore(pool, { shards: CLIENTS, partition: config.partition, testFraction: 0.2, maxSamples: 0 }, config.seed),
    newToken: () => `equivalence-token-${String(++tokenNo).padStart(4, "0")}`,
  });
  const url = `http://127.0.0.1:${await app.listen(0, "127.0.0.1")}`;
  // Joined one after another, so ids c1..c4 get shards 0..3, as the simulator deals them.
  for (let i = 0; i < CLIENTS; i++) {
    const c = new TrainingClient({ url, capacity: 2, backend: "wasm" });
    clients.push(c);
    await c.join();
  }
  const fed = app.federation;
  await vi.waitFor(() => expect(fed.round).toBe(ROUNDS), { timeout: 120_000, interval: 100 });
  // The last round closes inside the last submit, before that ack is back on its client.
  await vi.waitFor(() => expect(clients.every((c) => c.acks.length === ROUNDS)).toBe(true), { timeout: 10_000, interval: 20 });
  for (const c of clients) {
    expect(c.errors).toEqual([]);
    expect(c.acks.map((a) => a.ok)).toEqual(new Array<boolean>(ROUNDS).fill(true));
  }

  const run: RunSpec = {
    data: { dataset: "mnist", clientSamples: pool.n, globalTest: 0 },
    partition: "dirichlet:0.8",
    strategy: "flex",
    seed: 11,
    preset: "dense",
    clients: CLIENTS,
    experts: 4,
    capacity: "2",
    rounds: ROUNDS,
    localEpochs: 1,
    batchSize: 16,
    learningRate: 0.005,
    fitness: "acc",
    // What the coordinator sends with every round (the default, "pre").
    feedback: config.training.feedback,
    alphaL: 1,
    beta: 0.5,
    q0: 1,
    slack: 0,
    testFraction: 0.2,
    // The coordinator's aggregation defaults (adaptive clipping on), as resolved.
    aggregation: { rule: config.aggregator, trim: config.trim, clipNorm: config.clipNorm, clipFactor: config.clipFactor },
    maxHold: config.maxHold,
    zeroUsage: config.zeroUsage,
    runId: fed.snapshot.runId,
  };
  const empty: LabeledSet = { x: new Float32Array(0), y: new Uint8Array(0), n: 0, shape: [28, 28, 1], numClasses: 10 };
  const sim = await simulate(run, { pool, globalTest: empty });

  const live = fed.snapshot;
  const weights = (s: typeof live | typeof sim.state) => Buffer.from(encodeTensors([...s.backbone, ...s.experts.flat()]));
  expect(weights(live).equals(weights(sim.state))).toBe(true);
  expect(live.fitness.toJSON()).toEqual(sim.state.fitness.toJSON());
  expect(live.deficit).toEqual(sim.state.deficit);
  expect(live.holding).toEqual(sim.state.holding);
  // Streaks are tracked (and compared above), not an empty record on both sides.
  expect(Object.values(live.holding).some((row) => row.some((n) => n > 0))).toBe(true);
  expect(live.cumulativeRouted).toEqual(sim.state.cumulativeRouted);
  const engineRecord = ({ startedAt: _s, closedAt: _c, reason: _r, ...rest }: (typeof live.history)[number]) => rest;
  expect(live.history.map(engineRecord)).toEqual(sim.records);
  // Not vacuous: the model moved and the clients' feedback reached Q.
  expect(sim.records).toHaveLength(ROUNDS);
  expect(sim.records[ROUNDS - 1]!.accuracy).not.toBe(sim.records[0]!.accuracy);
  expect(live.fitness.clientIds()).toHaveLength(CLIENTS);
}, 180_000);

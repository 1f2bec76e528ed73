/**
 * Poisoning: 20% of the clients upload scaled or sign-flipped updates (real training on MNIST with
 * the Node simulator). Plain averaging is hurt; the robust aggregator (coordinate-wise median plus
 * delta clipping) stays within 4 points of the clean run. Numbers go to docs/robustness.md.
 *
 * Run alone: npx vitest run apps/lab/src/sim/poisoning.test.ts
 */
import { beforeAll, expect, it } from "vitest";
import { initNodeBackend } from "../tf-node.ts";
import { loadSimData } from "./data.ts";
import { simulateRun } from "./simulate.ts";
import type { RunSpec } from "./types.ts";

const base: RunSpec = {
  data: { dataset: "mnist", clientSamples: 2000, globalTest: 500 },
  partition: "iid",
  strategy: "flex",
  seed: 1,
  clients: 10,
  experts: 4,
  capacity: "2",
  rounds: 6,
  localEpochs: 1,
  batchSize: 32,
  learningRate: 0.005,
  fitness: "acc",
  alphaL: 1,
  beta: 0.5,
  q0: 1,
  slack: 0,
  testFraction: 0.2,
};
const attack = { fraction: 0.2, kind: "mixed", factor: 10 } as const;
const robust = { rule: "median", clipNorm: 5 };

beforeAll(async () => {
  await initNodeBackend("wasm");
});

it("keeps accuracy within 4 points of the clean run under 20% scaled / sign-flipped updates with median + clipping", async () => {
  const data = loadSimData(base.data);
  const clean = await simulateRun(base, data);
  const cleanRobust = await simulateRun({ ...base, aggregation: robust }, data);
  const attackedMean = await simulateRun({ ...base, attack }, data);
  const attackedRobust = await simulateRun({ ...base, attack, aggregation: robust }, data);
  const pct = (x: number) => (100 * x).toFixed(1);
  const line = (name: string, r: typeof clean) =>
    `${name}: personalized ${pct(r.finalAccuracy)}%, global test ${pct(r.finalGlobalAccuracy)}% (${r.seconds.toFixed(1)} s)`;
  console.log(
    [
      line("clean, mean", clean),
      line("clean, robust", cleanRobust),
      line("attacked, mean", attackedMean),
      line("attacked, robust", attackedRobust),
    ].join("\n"),
  );
  expect(clean.finalAccuracy).toBeGreaterThan(0.6);
  expect(attackedRobust.finalAccuracy).toBeGreaterThanOrEqual(clean.finalAccuracy - 0.04);
  // The defence wins back most of what the attack costs plain averaging.
  const cost = clean.finalAccuracy - attackedMean.finalAccuracy;
  expect(cost).toBeGreaterThan(0.2);
  expect(attackedRobust.finalAccuracy - attackedMean.finalAccuracy).toBeGreaterThan(0.85 * cost);
}, 240_000); // four real training runs: about 30 s idle, 80+ s on a loaded 2-core machine

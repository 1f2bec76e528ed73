import { createRng, streamRng, type LabeledSet } from "@flexmoe/core";
import { beforeAll, describe, expect, it } from "vitest";
import { initNodeBackend } from "../tf-node.ts";
import { parseCapacity, simulateRun } from "./simulate.ts";
import type { RunSpec, SimStrategy } from "./types.ts";

/** Two separable blobs per class on a 28x28 canvas: learnable in a couple of steps. */
function synthetic(n: number, seed: number): LabeledSet {
  const rng = createRng(seed);
  const x = new Float32Array(n * 784);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 10;
    y[i] = c;
    for (let j = 0; j < 784; j++) x[i * 784 + j] = (Math.floor(j / 78) === c ? 0.8 : 0) + 0.2 * rng.next();
  }
  return { x, y, n, shape: [28, 28, 1], numClasses: 10 };
}

const base = (strategy: SimStrategy): RunSpec => ({
  data: { dataset: "mnist", clientSamples: 80, globalTest: 20 },
  partition: "iid",
  strategy,
  seed: 0,
  clients: 2,
  experts: 4,
  capacity: "2",
  rounds: 2,
  localEpochs: 1,
  batchSize: 16,
  learningRate: 0.005,
  fitness: "acc",
  alphaL: 1,
  beta: 0.5,
  q0: 1,
  slack: 0,
  testFraction: 0.25,
});

describe("simulateRun", () => {
  beforeAll(async () => {
    await initNodeBackend("wasm");
  });
  const data = { pool: synthetic(80, 1), globalTest: synthetic(20, 2) };

  it.each(["flex", "greedy", "full", "dense"] as SimStrategy[])("produces a complete row (%s)", async (strategy) => {
    const progress: number[] = [];
    const row = await simulateRun(base(strategy), data, (p) => progress.push(p.round));
    expect(row).toMatchObject({ dataset: "mnist", partition: "iid", strategy, seed: 0 });
    expect(row.finalAccuracy).toBeGreaterThanOrEqual(0);
    expect(row.finalAccuracy).toBeLessThanOrEqual(1);
    expect(row.accuracy).toHaveLength(2);
    expect(row.cvPerRound).toHaveLength(2);
    expect(Number.isFinite(row.cvHolders)).toBe(true);
    expect(Number.isFinite(row.cvSamples)).toBe(true);
    expect(row.bytesPerClient).toBeGreaterThan(0);
    expect(row.lastAssignment).toHaveLength(2);
    const held = row.lastAssignment.map((r) => r.reduce((a, b) => a + b, 0));
    if (strategy === "full") expect(held).toEqual([4, 4]);
    else if (strategy === "dense") expect(held).toEqual([1, 1]);
    else expect(held).toEqual([2, 2]);
    if (strategy === "flex") expect(row.cvHolders).toBe(0);
    // Q is clients x experts, every entry a score in [0, 1] (accuracy fitness).
    expect(row.finalQ?.map((r) => r.length)).toEqual(Array(2).fill(strategy === "dense" ? 1 : 4));
    for (const q of row.finalQ?.flat() ?? []) expect(q >= 0 && q <= 1).toBe(true);
    expect(progress.at(-1)).toBe(2);
  });

  it("is deterministic for a seed", async () => {
    const a = await simulateRun(base("flex"), data);
    const b = await simulateRun(base("flex"), data);
    expect(a.finalAccuracy).toBe(b.finalAccuracy);
    expect(a.lastAssignment).toEqual(b.lastAssignment);
  });

  it("gives every seed and purpose its own stream", () => {
    const first = (seed: number, tag: string): number => streamRng(seed, tag).next();
    expect(new Set([0, 1, 2, 10, 11].map((s) => first(s, "partition"))).size).toBe(5);
    expect(first(0, "partition")).not.toBe(first(0, "init"));
  });

  it("parses capacities and mixes", () => {
    expect(parseCapacity("2", 3, 8)).toEqual([2, 2, 2]);
    expect(parseCapacity("1,2,4", 4, 8)).toEqual([1, 2, 4, 1]);
    expect(() => parseCapacity("9", 2, 8)).toThrow(/capacity/);
    expect(() => parseCapacity("x", 2, 8)).toThrow(/capacity/);
  });
});

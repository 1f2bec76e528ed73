/** Datasets for the simulator: a pool dealt to the clients and a disjoint global test set. */
import { subset, type LabeledSet } from "@flexmoe/core";
import { loadFashionMnist } from "../data/fashion-mnist.ts";
import { loadMnist } from "@flexmoe/coordinator";
import type { DataOptions } from "./types.ts";

export interface SimData {
  pool: LabeledSet;
  globalTest: LabeledSet;
}

const cache = new Map<string, SimData>();

/**
 * MNIST: the bundled ~10k digits, one class-balanced seeded draw split into pool and test.
 * Fashion-MNIST: the pool from the 60k train split, the global test from the 10k test split.
 * The draw is fixed (seed 0): every run seed and strategy sees the same samples; seeds vary the partition.
 */
export function loadSimData(opts: DataOptions): SimData {
  const key = `${opts.dataset}|${opts.clientSamples}|${opts.globalTest}|${opts.fashionDir ?? ""}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let out: SimData;
  if (opts.dataset === "mnist") {
    const all = loadMnist({ limit: opts.clientSamples + opts.globalTest, seed: 0 });
    if (all.n < opts.clientSamples + opts.globalTest)
      throw new RangeError(`mnist has only ${all.n} samples; asked for ${opts.clientSamples} + ${opts.globalTest} global test`);
    const idx = Array.from({ length: all.n }, (_, i) => i);
    out = { pool: subset(all, idx.slice(0, opts.clientSamples)), globalTest: subset(all, idx.slice(opts.clientSamples)) };
  } else {
    const dir = opts.fashionDir === undefined ? {} : { dir: opts.fashionDir };
    out = {
      pool: loadFashionMnist({ ...dir, split: "train", limit: opts.clientSamples, seed: 0 }),
      globalTest: loadFashionMnist({ ...dir, split: "test", limit: opts.globalTest, seed: 0 }),
    };
  }
  cache.set(key, out);
  return out;
}

/**
 * Deals a labelled set into per-client shards (partition scheme from the config), each split
 * into train and held-out parts, encoded once in the compact binary form the page downloads.
 */
import { encodeShard, partitionIndices, subset, type LabeledSet, type PartitionScheme, type Rng } from "@flexmoe/core";

export interface ShardOptions {
  shards: number;
  partition: PartitionScheme;
  testFraction: number;
  /** 0 = no cap. */
  maxSamples: number;
}

export class ShardStore {
  private readonly parts: number[][];
  private readonly cache = new Map<number, Uint8Array>();

  constructor(
    private readonly data: LabeledSet,
    private readonly opts: ShardOptions,
    private readonly rng: Rng,
  ) {
    this.parts = partitionIndices(data.y, data.numClasses, opts.shards, opts.partition, rng.fork());
    for (const p of this.parts) rng.fork().shuffle(p);
  }

  get count(): number {
    return this.parts.length;
  }

  /** Class histogram of a shard (for logs and the dashboard). */
  histogram(i: number): number[] {
    const h = new Array<number>(this.data.numClasses).fill(0);
    for (const idx of this.parts[i] ?? []) h[this.data.y[idx] as number]! += 1;
    return h;
  }

  bytes(i: number): Uint8Array {
    const hit = this.cache.get(i);
    if (hit) return hit;
    let idx = this.parts[i] ?? [];
    if (this.opts.maxSamples > 0) idx = idx.slice(0, this.opts.maxSamples);
    const nTest = Math.max(1, Math.round(idx.length * this.opts.testFraction));
    const encoded = encodeShard({
      train: subset(this.data, idx.slice(nTest)),
      test: subset(this.data, idx.slice(0, nTest)),
    });
    this.cache.set(i, encoded);
    return encoded;
  }
}

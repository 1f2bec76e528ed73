/**
 * Deals a labelled set into per-client shards with core's splitShards (the simulator deals the same
 * way), encoded once in the compact binary form the page downloads.
 */
import { gzipSync } from "node:zlib";
import { encodeShard, splitShards, subset, type LabeledSet, type ShardSplit, type ShardSplitOptions } from "@flexmoe/core";

export type ShardOptions = ShardSplitOptions;

export class ShardStore {
  private readonly parts: ShardSplit[];
  private readonly cache = new Map<number, Uint8Array>();
  private readonly gzCache = new Map<number, Uint8Array | null>();

  /** `seed` is the run's seed: shards depend on nothing else. */
  constructor(
    private readonly data: LabeledSet,
    opts: ShardOptions,
    seed: number,
  ) {
    this.parts = splitShards(data.y, data.numClasses, opts, seed);
  }

  get count(): number {
    return this.parts.length;
  }

  /** Held-out and training sets of shard i (what a client with that shard trains on). */
  sets(i: number): { train: LabeledSet; test: LabeledSet } {
    const p = this.parts[i];
    if (p === undefined) throw new RangeError(`shard ${i} is outside [0, ${this.parts.length})`);
    return { train: subset(this.data, p.train), test: subset(this.data, p.test) };
  }

  /** Training and held-out sizes of shard i. */
  sizes(i: number): { train: number; test: number } {
    const p = this.parts[i];
    if (p === undefined) throw new RangeError(`shard ${i} is outside [0, ${this.parts.length})`);
    return { train: p.train.length, test: p.test.length };
  }

  /** Class histogram of a shard (for logs and the dashboard). */
  histogram(i: number): number[] {
    const h = new Array<number>(this.data.numClasses).fill(0);
    const p = this.parts[i];
    for (const idx of [...(p?.test ?? []), ...(p?.train ?? [])]) h[this.data.y[idx] as number]! += 1;
    return h;
  }

  bytes(i: number): Uint8Array {
    const hit = this.cache.get(i);
    if (hit) return hit;
    const encoded = encodeShard(this.sets(i));
    this.cache.set(i, encoded);
    return encoded;
  }

  /**
   * bytes(i) gzipped, once per shard, or null where that is not smaller (noise-like pixels): digits are
   * 8-bit pixels with large blank areas and shrink several times.
   */
  gzipped(i: number): Uint8Array | null {
    if (this.gzCache.has(i)) return this.gzCache.get(i) ?? null;
    const raw = this.bytes(i);
    const gz = gzipSync(raw, { level: 9 });
    const use = gz.length < raw.length ? gz : null;
    this.gzCache.set(i, use);
    return use;
  }
}

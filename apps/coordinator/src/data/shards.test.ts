import { gunzipSync } from "node:zlib";
import { expect, it } from "vitest";
import { createRng, decodeShard, parsePartition } from "@flexmoe/core";
import { loadMnist } from "./mnist.ts";
import { ShardStore } from "./shards.ts";

const opts = { shards: 4, partition: parsePartition("dirichlet:0.8"), testFraction: 0.2, maxSamples: 0 };

it("gzips a digit shard to well under half its bytes, and the gzip is the same shard", () => {
  const store = new ShardStore(loadMnist({ limit: 800, seed: 0 }), opts, 1);
  for (let i = 0; i < store.count; i++) {
    const raw = store.bytes(i);
    const gz = store.gzipped(i);
    expect(gz).not.toBeNull();
    expect(gz!.length).toBeLessThan(raw.length / 2);
    expect(new Uint8Array(gunzipSync(gz!))).toEqual(raw);
    expect(decodeShard(raw).ok).toBe(true);
    expect(store.gzipped(i)).toBe(gz); // computed once
  }
});

it("does not gzip what gzip cannot shrink (noise pixels)", () => {
  const rng = createRng(12345);
  const n = 100;
  const x = Float32Array.from({ length: n * 784 }, () => rng.int(256) / 255);
  const y = Uint8Array.from({ length: n }, (_, i) => i % 10);
  const store = new ShardStore({ x, y, n, shape: [28, 28, 1], numClasses: 10 }, { ...opts, partition: parsePartition("iid") }, 1);
  expect(store.gzipped(0)).toBeNull();
});

import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { DatasetMissingError, FASHION_MNIST_DIR, loadFashionMnist, parseIdx } from "./fashion-mnist.ts";

function idx(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, magic, false);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

const dir = mkdtempSync(join(tmpdir(), "fmnist-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("fashion-mnist loader", () => {
  it("reads gzipped IDX files, scales pixels and draws a class-balanced subset", () => {
    const n = 40;
    const px = new Uint8Array(n * 4).map((_v, i) => i % 256);
    const labels = new Uint8Array(n).map((_v, i) => i % 10);
    for (const prefix of ["train", "t10k"]) {
      writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(idx(0x803, [n, 2, 2], px)));
      writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(idx(0x801, [n], labels)));
    }
    const set = loadFashionMnist({ dir, limit: 20, seed: 3 });
    expect(set.n).toBe(20);
    expect(set.shape).toEqual([2, 2, 1]);
    expect(set.x.length).toBe(80);
    expect(Math.max(...set.x)).toBeLessThanOrEqual(1);
    const hist = new Array<number>(10).fill(0);
    set.y.forEach((y) => (hist[y] = (hist[y] ?? 0) + 1));
    expect(hist).toEqual(new Array<number>(10).fill(2));
    expect(loadFashionMnist({ dir, split: "test" }).n).toBe(40);
  });

  it("fails with a message naming the file and the Debian package when files are absent", () => {
    const missing = join(dir, "nope");
    expect(() => loadFashionMnist({ dir: missing })).toThrow(DatasetMissingError);
    expect(() => loadFashionMnist({ dir: missing })).toThrow(/train-images-idx3-ubyte\.gz.*dataset-fashion-mnist/);
  });

  it("rejects malformed IDX data", () => {
    expect(() => parseIdx(new Uint8Array([0, 0, 9, 1, 0, 0, 0, 1, 5]), "x")).toThrow(/not an unsigned-byte IDX/);
    expect(() => parseIdx(idx(0x801, [3], new Uint8Array(2)), "x")).toThrow(/expected 11 bytes/);
  });

  it.skipIf(!existsSync(join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")))("loads the installed Debian package", () => {
    const set = loadFashionMnist({ dir: FASHION_MNIST_DIR, split: "test", limit: 100 });
    expect(set.n).toBe(100);
    expect(set.shape).toEqual([28, 28, 1]);
    expect(set.numClasses).toBe(10);
  });
});

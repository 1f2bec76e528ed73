import { describe, expect, it } from "vitest";
import { createRng } from "./rng.ts";
import { classHistograms, formatPartition, parsePartition, partitionIndices, partitionSkew, type PartitionScheme } from "./partition.ts";

/** 10 balanced-ish classes, labels in a fixed pseudo-random order. */
function makeLabels(n: number, numClasses: number, seed = 7): Uint8Array {
  const rng = createRng(seed);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) y[i] = i % numClasses;
  // Uneven class sizes too: relabel a few samples of class 0 as class 1.
  for (let i = 0; i < n; i += 37) if (y[i] === 0) y[i] = 1;
  const idx = rng.shuffle(Array.from(y));
  return Uint8Array.from(idx);
}

function expectExactCover(parts: number[][], n: number): void {
  // Plain checks, one expect: thousands of expect() calls make the suite slow.
  const seen = new Uint8Array(n);
  let bad = 0;
  for (const p of parts) {
    for (const i of p) {
      if (!(Number.isInteger(i) && i >= 0 && i < n) || seen[i] === 1) bad++;
      else seen[i] = 1;
    }
  }
  expect({ bad, missing: seen.filter((v) => v === 0).length }).toEqual({ bad: 0, missing: 0 });
}

describe("parsePartition / formatPartition", () => {
  it("parses the three forms and round-trips", () => {
    const cases: [string, PartitionScheme][] = [
      ["iid", { kind: "iid" }],
      ["dirichlet:0.8", { kind: "dirichlet", alpha: 0.8 }],
      ["dirichlet:100", { kind: "dirichlet", alpha: 100 }],
      ["classes:4", { kind: "classes", k: 4 }],
    ];
    for (const [s, p] of cases) {
      expect(parsePartition(s)).toEqual(p);
      expect(formatPartition(p)).toBe(s);
      expect(parsePartition(formatPartition(p))).toEqual(p);
    }
    expect(parsePartition(" Dirichlet:1e-1 ")).toEqual({ kind: "dirichlet", alpha: 0.1 });
  });

  it("rejects malformed strings with a RangeError", () => {
    for (const s of [
      "",
      "niid",
      "dirichlet",
      "dirichlet:",
      "dirichlet:0",
      "dirichlet:-1",
      "dirichlet:abc",
      "dirichlet:0x10",
      "classes:0",
      "classes:2.5",
      "classes:",
      "classes:-3",
      "shards:2",
    ]) {
      expect(() => parsePartition(s), s).toThrow(RangeError);
    }
    expect(() => parsePartition("foo")).toThrow(/iid.*dirichlet.*classes/);
  });
});

describe("partitionIndices", () => {
  const n = 4000;
  const numClasses = 10;
  const labels = makeLabels(n, numClasses);

  it("iid: even sizes, class mix close to global, exact cover", () => {
    const parts = partitionIndices(labels, numClasses, 8, { kind: "iid" }, createRng(1));
    expectExactCover(parts, n);
    for (const p of parts) expect(p.length).toBe(500);
    expect(parts.every((p) => p.every((v, i) => i === 0 || v > (p[i - 1] as number)))).toBe(true);
    expect(partitionSkew(parts, labels, numClasses)).toBeLessThan(0.08);
    // Uneven split: sizes differ by at most one.
    const uneven = partitionIndices(labels, numClasses, 7, { kind: "iid" }, createRng(1));
    const sizes = uneven.map((p) => p.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expectExactCover(uneven, n);
  });

  it("classes:4: every client holds exactly 4 classes, classes split evenly, exact cover", () => {
    for (const clients of [3, 10, 25]) {
      const parts = partitionIndices(labels, numClasses, clients, { kind: "classes", k: 4 }, createRng(clients));
      expectExactCover(parts, n);
      const hist = classHistograms(parts, labels, numClasses);
      hist.forEach((h, c) => {
        expect(h.filter((v) => v > 0).length).toBe(4);
        if (clients >= numClasses) expect(h[c % numClasses]).toBeGreaterThan(0); // NIID-Bench: class c % K first
      });
      // Among the holders of a class, shares differ by at most one sample.
      for (let y = 0; y < numClasses; y++) {
        const shares = hist.map((h) => h[y] as number).filter((v) => v > 0);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }
    }
  });

  it("classes:k rejects impossible requests", () => {
    expect(() => partitionIndices(labels, numClasses, 2, { kind: "classes", k: 4 }, createRng(1))).toThrow(RangeError);
    expect(() => partitionIndices(labels, numClasses, 20, { kind: "classes", k: 11 }, createRng(1))).toThrow(RangeError);
  });

  it("dirichlet: smaller alpha gives markedly more label skew; min size holds; exact cover", () => {
    const clients = 20;
    const skewed = partitionIndices(labels, numClasses, clients, { kind: "dirichlet", alpha: 0.8 }, createRng(3));
    const flat = partitionIndices(labels, numClasses, clients, { kind: "dirichlet", alpha: 100 }, createRng(3));
    expectExactCover(skewed, n);
    expectExactCover(flat, n);
    for (const p of [...skewed, ...flat]) expect(p.length).toBeGreaterThanOrEqual(10);
    const tvSkewed = partitionSkew(skewed, labels, numClasses);
    const tvFlat = partitionSkew(flat, labels, numClasses);
    expect(tvSkewed).toBeGreaterThan(0.3);
    expect(tvFlat).toBeLessThan(0.12);
    expect(tvSkewed).toBeGreaterThan(3 * tvFlat);
  });

  it("dirichlet: tiny alpha still covers exactly and respects minSize", () => {
    const parts = partitionIndices(labels, numClasses, 10, { kind: "dirichlet", alpha: 0.05 }, createRng(5), { minSize: 5 });
    expectExactCover(parts, n);
    for (const p of parts) expect(p.length).toBeGreaterThanOrEqual(5);
  });

  it("dirichlet: impossible minimum size fails fast and clearly", () => {
    expect(() => partitionIndices(labels.subarray(0, 50), numClasses, 10, { kind: "dirichlet", alpha: 0.5 }, createRng(1))).toThrow(
      /cannot give 10 clients at least 10/,
    );
    expect(() =>
      partitionIndices(labels, numClasses, 40, { kind: "dirichlet", alpha: 0.01 }, createRng(1), { minSize: 100, maxAttempts: 3 }),
    ).toThrow(/3 attempts/);
  });

  it("is reproducible from the seed and differs across seeds", () => {
    for (const scheme of [{ kind: "iid" }, { kind: "dirichlet", alpha: 0.8 }, { kind: "classes", k: 4 }] as PartitionScheme[]) {
      const a = partitionIndices(labels, numClasses, 12, scheme, createRng(42));
      const b = partitionIndices(labels, numClasses, 12, scheme, createRng(42));
      const c = partitionIndices(labels, numClasses, 12, scheme, createRng(43));
      expect(a).toEqual(b);
      expect(a).not.toEqual(c);
    }
  });

  it("rejects labels outside [0, numClasses)", () => {
    expect(() => partitionIndices([0, 1, 10], 10, 1, { kind: "iid" }, createRng(1))).toThrow(/label 10 at index 2/);
    expect(() => partitionIndices([0, 1.5], 10, 1, { kind: "iid" }, createRng(1))).toThrow(RangeError);
  });
});

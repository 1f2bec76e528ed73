import { describe, expect, it } from "vitest";
import { loadMnist } from "./mnist.ts";

describe("loadMnist", () => {
  it("loads ~1000 digits per class, 784 pixels in [0, 1]", () => {
    const d = loadMnist();
    expect(d.shape).toEqual([28, 28, 1]);
    expect(d.numClasses).toBe(10);
    expect(d.x.length).toBe(d.n * 784);
    expect(d.y.length).toBe(d.n);
    const counts = new Array<number>(10).fill(0);
    for (const c of d.y) counts[c] = (counts[c] ?? 0) + 1;
    // The package ships 10,000 digits, 863 (digit 5) to 1,127 (digit 1) per class.
    expect(d.n).toBe(10_000);
    for (const c of counts) expect(c).toBeGreaterThanOrEqual(800);
    let min = Infinity;
    let max = -Infinity;
    for (const v of d.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThanOrEqual(1);
    expect(max).toBeGreaterThan(0.5);
    // Interleaved, not grouped by class.
    expect(new Set(d.y.subarray(0, 50)).size).toBeGreaterThan(5);
  });

  it("takes a class-balanced, seeded subset", () => {
    const a = loadMnist({ limit: 205, seed: 3 });
    expect(a.n).toBe(205);
    const counts = new Array<number>(10).fill(0);
    for (const c of a.y) counts[c] = (counts[c] ?? 0) + 1;
    expect(counts).toEqual([21, 21, 21, 21, 21, 20, 20, 20, 20, 20]);
    const b = loadMnist({ limit: 205, seed: 3 });
    expect(b.y).toEqual(a.y);
    expect(b.x).toEqual(a.x);
    const c = loadMnist({ limit: 205, seed: 4 });
    expect(c.y).not.toEqual(a.y);
    expect(loadMnist({ limit: 0 }).n).toBe(0);
    // More than the smallest class holds per class: the others make up the difference.
    const big = loadMnist({ limit: 9000 });
    expect(big.n).toBe(9000);
    expect(big.y.filter((c) => c === 5).length).toBe(863);
  });
});

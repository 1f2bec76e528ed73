import { describe, expect, it } from "vitest";
import { coefficientOfVariation, CumulativeLoad, holdersLoad, loadStats, routedLoad } from "./metrics.ts";

describe("loadStats", () => {
  it("hand-computed values for [1, 2, 3, 6]", () => {
    // mean 3; deviations -2,-1,0,3 -> var (4+1+0+9)/4 = 3.5; std sqrt(3.5).
    const s = loadStats([1, 2, 3, 6]);
    expect(s.mean).toBe(3);
    expect(s.std).toBeCloseTo(Math.sqrt(3.5), 12);
    expect(s.cv).toBeCloseTo(Math.sqrt(3.5) / 3, 12);
    expect(s.maxOverMean).toBe(2);
    expect(s.starved).toBe(0);
    const p = [1, 2, 3, 6].map((v) => v / 12);
    expect(s.entropy).toBeCloseTo(-p.reduce((a, q) => a + q * Math.log(q), 0) / Math.log(4), 12);
    // Jain: 12^2 / (4 * 50) = 0.72 = 1 / (1 + 3.5/9).
    expect(s.jain).toBeCloseTo(0.72, 12);
  });

  it("uniform load is perfectly balanced", () => {
    const s = loadStats([5, 5, 5, 5]);
    expect(s).toEqual({ mean: 5, std: 0, cv: 0, maxOverMean: 1, starved: 0, entropy: 1, jain: 1 });
  });

  it("all load on one expert: cv = sqrt(E-1), entropy 0, starved E-1, jain 1/E", () => {
    const s = loadStats([0, 8, 0, 0]);
    expect(s.cv).toBeCloseTo(Math.sqrt(3), 12);
    expect(s.maxOverMean).toBe(4);
    expect(s.starved).toBe(3);
    expect(s.entropy).toBe(0);
    expect(s.jain).toBeCloseTo(0.25, 12);
  });

  it("all-zero load and single expert edge cases", () => {
    expect(loadStats([0, 0, 0])).toEqual({ mean: 0, std: 0, cv: 0, maxOverMean: 0, starved: 3, entropy: 0, jain: 0 });
    expect(loadStats([4]).entropy).toBe(1);
    expect(() => loadStats([])).toThrow(RangeError);
    expect(() => loadStats([1, -1])).toThrow(RangeError);
    expect(() => loadStats([1, Number.NaN])).toThrow(RangeError);
  });
});

describe("coefficientOfVariation", () => {
  it("population std over mean", () => {
    expect(coefficientOfVariation([2, 4])).toBeCloseTo(1 / 3, 12); // std 1, mean 3
    expect(coefficientOfVariation(Float64Array.from([3, 3, 3]))).toBe(0);
    expect(coefficientOfVariation([0, 0])).toBe(0);
    expect(coefficientOfVariation([])).toBe(0);
  });
});

describe("load levels", () => {
  it("holdersLoad counts holders per expert", () => {
    expect(holdersLoad([[0, 1], [1, 2], [1]], 4)).toEqual([1, 3, 1, 0]);
    expect(() => holdersLoad([[4]], 4)).toThrow(RangeError);
  });

  it("routedLoad sums usage, ignoring negative or non-finite usage", () => {
    const fb = (expert: number, usage: number) => ({ expert, usage, accuracy: 1, loss: 0 });
    expect(
      routedLoad(
        [
          [fb(0, 10), fb(2, 5)],
          [fb(2, 7), fb(1, -3), fb(1, Number.NaN)],
        ],
        3,
      ),
    ).toEqual([10, 0, 12]);
    expect(() => routedLoad([[fb(3, 1)]], 3)).toThrow(RangeError);
  });

  it("CumulativeLoad accumulates rounds", () => {
    const c = new CumulativeLoad(3);
    c.add([1, 0, 2]);
    c.add(Float64Array.from([1, 3, 0]));
    expect(c.total()).toEqual([2, 3, 2]);
    expect(c.rounds()).toBe(2);
    expect(c.stats().mean).toBeCloseTo(7 / 3, 12);
    expect(c.stats().starved).toBe(0);
    expect(() => c.add([1, 2])).toThrow(RangeError);
    expect(() => c.add([1, -2, 0])).toThrow(RangeError);
    expect(c.total()).toEqual([2, 3, 2]); // a rejected add changes nothing
    c.total()[0] = 99;
    expect(c.total()[0]).toBe(2);
  });
});

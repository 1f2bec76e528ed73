import { describe, expect, it } from "vitest";
import { interval, pairedDifference } from "./seed-stats.ts";

describe("interval", () => {
  it("is the mean with the two-sided 95% t-interval", () => {
    const iv = interval([1, 2, 3, 4, 5]);
    // t(0.975, 4) = 2.7764451; sd = sqrt(2.5).
    const half = (2.7764451 * Math.sqrt(2.5)) / Math.sqrt(5);
    expect(iv.n).toBe(5);
    expect(iv.mean).toBe(3);
    expect(iv.half).toBeCloseTo(half, 6);
    expect(iv.lo).toBeCloseTo(3 - half, 6);
    expect(iv.hi).toBeCloseTo(3 + half, 6);
  });

  it("widens with fewer seeds (t(0.975, 1) = 12.706)", () => {
    expect(interval([0, 1]).half).toBeCloseTo(12.7062047 * (Math.SQRT1_2 / Math.SQRT2), 5);
  });

  it("has no interval for fewer than two values", () => {
    expect(interval([0.7])).toMatchObject({ n: 1, mean: 0.7 });
    expect(interval([0.7]).half).toBeNaN();
    expect(interval([]).mean).toBeNaN();
  });
});

describe("pairedDifference", () => {
  it("pairs by seed, ignores unpaired runs and counts wins", () => {
    const flex = new Map([
      [0, 0.8],
      [1, 0.82],
      [2, 0.79],
    ]);
    const greedy = new Map([
      [2, 0.8],
      [1, 0.8],
      [0, 0.78],
      [3, 0.9],
    ]);
    const d = pairedDifference(flex, greedy);
    expect(d.n).toBe(3);
    expect(d.mean).toBeCloseTo((0.02 + 0.02 - 0.01) / 3, 12);
    expect(d.wins).toBe(2);
    expect(d.beyondNoise).toBe(false);
  });

  it("calls a consistent difference beyond seed noise, in either direction", () => {
    const a = new Map([0, 1, 2, 3, 4].map((s) => [s, 0.8 + 0.01 * s] as [number, number]));
    const b = new Map([0, 1, 2, 3, 4].map((s) => [s, 0.75 + 0.01 * s + (s % 2 ? 0.004 : -0.004)] as [number, number]));
    const up = pairedDifference(a, b);
    expect(up.beyondNoise).toBe(true);
    expect(up.lo).toBeGreaterThan(0);
    expect(up.wins).toBe(5);
    const down = pairedDifference(b, a);
    expect(down.beyondNoise).toBe(true);
    expect(down.hi).toBeLessThan(0);
    expect(down.wins).toBe(0);
  });

  it("says nothing beyond noise from one pair", () => {
    expect(pairedDifference(new Map([[0, 0.9]]), new Map([[0, 0.1]])).beyondNoise).toBe(false);
  });
});

/**
 * Statistics over seeds: a mean with its 95% t-interval, and the paired difference of two strategies
 * run on the same seeds (the same seed gives every strategy the same data split, initial weights and
 * client streams, so pairing removes the split's share of the noise). Pure.
 */
import jStat from "jstat";

export interface Interval {
  n: number;
  mean: number;
  /** Half-width of the two-sided 95% t-interval; NaN for fewer than 2 values. */
  half: number;
  lo: number;
  hi: number;
}

export interface PairedDifference extends Interval {
  /** Pairs where the first strategy is strictly better. */
  wins: number;
  /** True when the 95% interval excludes 0: the difference is beyond seed noise. */
  beyondNoise: boolean;
}

/** Mean and two-sided 95% Student-t interval (sample std, n - 1 degrees of freedom). */
export function interval(xs: readonly number[]): Interval {
  const n = xs.length;
  if (n === 0) return { n, mean: NaN, half: NaN, lo: NaN, hi: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, half: NaN, lo: NaN, hi: NaN };
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  const half = jStat.studentt.inv(0.975, n - 1) * (sd / Math.sqrt(n));
  return { n, mean, half, lo: mean - half, hi: mean + half };
}

/**
 * a - b over the keys both have (runs of the same seed). Keys present in only one side are ignored:
 * an unpaired run says nothing about the paired difference.
 */
export function pairedDifference(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): PairedDifference {
  const diffs: number[] = [];
  for (const [k, x] of [...a].sort((p, q) => p[0] - q[0])) {
    const y = b.get(k);
    if (y !== undefined) diffs.push(x - y);
  }
  const iv = interval(diffs);
  return { ...iv, wins: diffs.filter((d) => d > 0).length, beyondNoise: iv.n >= 2 && (iv.lo > 0 || iv.hi < 0) };
}

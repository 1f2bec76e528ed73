/** Clock-reading helpers shared by the benchmarks, and the progress line (stderr only). */
import { median } from "./stats.ts";

export interface BenchContext {
  quick: boolean;
  /** One progress line per step, to stderr (so --json stdout stays parseable). */
  progress: (msg: string) => void;
}

/** Median wall time (ms) of `reps` calls after `warmup` untimed ones. */
export function timeMedian(fn: () => void, reps: number, warmup = 1): { ms: number; samples: number[] } {
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return { ms: median(samples), samples };
}

/**
 * Interleaves two (or more) measurements, rep by rep, so drift of a shared, noisy machine hits all of them
 * alike; returns the median ms of each, in order.
 */
export function timeInterleaved(fns: readonly (() => void)[], reps: number, warmup = 1): number[] {
  for (let i = 0; i < warmup; i++) for (const f of fns) f();
  const samples = fns.map(() => [] as number[]);
  for (let r = 0; r < reps; r++) {
    fns.forEach((f, i) => {
      const t0 = performance.now();
      f();
      (samples[i] as number[]).push(performance.now() - t0);
    });
  }
  return samples.map(median);
}

/** Keeps a value alive so the optimizer cannot drop the computation that produced it. */
export let sink = 0;
export function consume(x: number): void {
  sink = (sink + x) % 1e9;
}

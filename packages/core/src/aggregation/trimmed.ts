/**
 * Coordinate-wise trimmed mean (unweighted): drop the k smallest and k largest values per coordinate.
 * With n <= 2 updates, or nothing to trim, the weighted mean is used instead: an expert often has only a
 * few holders, and a "trimmed" mean of two would silently be an unweighted one.
 */
import { sortSmall } from "./kernels.ts";
import { weightedMean } from "./mean.ts";
import { defineRule, type RuleInput } from "./rule.ts";

/** Trimmed mean dropping `k` values from each end (k = 0: the weighted mean). */
export function trimmedMean(input: RuleInput, k: number): Float32Array {
  if (k === 0) return weightedMean(input);
  const { g, xs, scale } = input;
  const n = xs.length;
  const out = new Float32Array(g.length);
  const scratch = new Float64Array(n);
  for (let j = 0; j < g.length; j++) {
    const gj = g[j] as number;
    for (let i = 0; i < n; i++) scratch[i] = gj + (scale[i] as number) * (((xs[i] as Float32Array)[j] as number) - gj);
    sortSmall(scratch);
    let acc = 0;
    for (let i = k; i < n - k; i++) acc += scratch[i] as number;
    out[j] = acc / (n - 2 * k);
  }
  return out;
}

export const trimmed = defineRule({
  name: "trimmed",
  summary: "coordinate-wise trimmed mean (--trim from each end)",
  combine(input) {
    const n = input.xs.length;
    const k = n <= 2 ? 0 : Math.min(Math.floor(input.params.trim * n), Math.floor((n - 1) / 2));
    return trimmedMean(input, k);
  },
});

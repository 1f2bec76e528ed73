/** The weighted mean (FedAvg; experts weighted by usage, the backbone by samples). */
import { accumulate, axpy } from "./kernels.ts";
import { defineRule, type RuleInput } from "./rule.ts";

/** g + sum_i ws_i (x_i - g) = (1 - sum ws) g + sum_i ws_i x_i, streaming each update once. */
export function weightedMean({ g, xs, ws, clipped }: RuleInput): Float32Array {
  const out = new Float32Array(g.length);
  // Without clipping sum ws is 1 (up to rounding), so the pass over g is skipped.
  if (clipped) axpy(out, 1 - ws.reduce((a, b) => a + b, 0), g);
  accumulate(out, ws, xs);
  return out;
}

export const mean = defineRule({
  name: "mean",
  summary: "weighted mean (usage for experts, samples for the backbone)",
  combine: weightedMean,
});

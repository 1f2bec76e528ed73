/** Coordinate-wise median (the mean of the two middle values for an even count; weighted mean for n <= 2). */
import { defineRule } from "./rule.ts";
import { trimmedMean } from "./trimmed.ts";

export const median = defineRule({
  name: "median",
  summary: "coordinate-wise median",
  combine(input) {
    const n = input.xs.length;
    return trimmedMean(input, n <= 2 ? 0 : Math.floor((n - 1) / 2));
  },
});

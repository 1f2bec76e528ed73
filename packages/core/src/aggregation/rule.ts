/** What an aggregation rule is: how one tensor's client values become the new global value. */

/** Everything a rule sees for one tensor of one group (the backbone, or one expert). */
export interface RuleInput {
  /** The global value the clients started from. */
  g: Float32Array;
  /** The clients' new local values (not clipped: the value to use is g + scale[i] (xs[i] - g)). */
  xs: readonly Float32Array[];
  /** Normalized weight of each update times its clip scale (sums to 1 without clipping). */
  ws: Float64Array;
  /** Clip scale of each update in (0, 1]. */
  scale: Float64Array;
  /** Whether any scale is below 1. */
  clipped: boolean;
  /** The run's knobs (trim fraction for the trimmed mean). */
  params: RuleParams;
}

export interface RuleParams {
  /** Fraction in [0, 0.5] cut from each end by the trimmed mean. */
  trim: number;
}

export interface AggregationRule<N extends string = string> {
  readonly name: N;
  /** One line for CLI help and docs. */
  readonly summary: string;
  combine(input: RuleInput): Float32Array;
}

/** Keeps the literal name type, so the registry's name union derives from its list. */
export const defineRule = <N extends string>(r: AggregationRule<N>): AggregationRule<N> => r;

/**
 * Expert load-balance metrics (paper section 9, anchors-moe section 2.1). Loads are non-negative
 * per-expert numbers at one of three levels: holders per round, samples routed (usage) per round or
 * cumulative, or routing on a test set. The std is the population std throughout.
 */
import type { ExpertFeedback } from "./types.ts";

/** Balance summary of one load vector over E experts. */
export interface LoadStats {
  mean: number;
  /** Population standard deviation. */
  std: number;
  /** std / mean; 0 = perfectly balanced, sqrt(E - 1) = all load on one expert. */
  cv: number;
  /** max / mean (MaxVio = maxOverMean - 1). */
  maxOverMean: number;
  /** Experts with load exactly 0. */
  starved: number;
  /** Normalized entropy -sum p log p / log E of the load shares; 1 = uniform. */
  entropy: number;
  /** Jain's index (sum l)^2 / (E sum l^2) = 1 / (1 + cv^2); 1 = uniform. */
  jain: number;
}

/**
 * Balance statistics of a per-expert load. An all-zero load has nothing to balance: cv 0,
 * maxOverMean 0, starved E, entropy 0 and jain 0. With a single expert, a positive load has
 * entropy 1 (trivially uniform).
 * @throws RangeError on an empty load or a negative or non-finite entry.
 */
export function loadStats(load: ArrayLike<number>): LoadStats {
  const e = load.length;
  if (e === 0) throw new RangeError("metrics: load over zero experts");
  let sum = 0;
  let max = 0;
  let starved = 0;
  for (let i = 0; i < e; i++) {
    const v = load[i] as number;
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`metrics: load[${i}] must be finite and >= 0, got ${v}`);
    sum += v;
    if (v > max) max = v;
    if (v === 0) starved++;
  }
  const mean = sum / e;
  const std = populationStd(load, mean);
  if (sum === 0) return { mean: 0, std: 0, cv: 0, maxOverMean: 0, starved, entropy: 0, jain: 0 };
  let h = 0;
  for (let i = 0; i < e; i++) {
    const p = (load[i] as number) / sum;
    if (p > 0) h -= p * Math.log(p);
  }
  const cv = std / mean;
  return {
    mean,
    std,
    cv,
    maxOverMean: max / mean,
    starved,
    entropy: e === 1 ? 1 : h / Math.log(e),
    jain: 1 / (1 + cv * cv),
  };
}

/**
 * Population std / mean of the values; 0 when the mean is 0 (or there are no values).
 * Meant for non-negative loads.
 */
export function coefficientOfVariation(values: ArrayLike<number>): number {
  const n = values.length;
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i] as number;
  const mean = sum / n;
  return mean === 0 ? 0 : populationStd(values, mean) / mean;
}

/**
 * Level 1, assignment load: how many clients hold each expert this round.
 * `assignment[c]` lists client c's experts.
 * @throws RangeError on an expert index outside [0, experts).
 */
export function holdersLoad(assignment: readonly (readonly number[])[], experts: number): number[] {
  const load = new Array<number>(experts).fill(0);
  assignment.forEach((list, c) => {
    for (const e of list) {
      if (!(Number.isInteger(e) && e >= 0 && e < experts))
        throw new RangeError(`metrics: client ${c} holds expert ${e}, outside [0, ${experts})`);
      load[e] = (load[e] as number) + 1;
    }
  });
  return load;
}

/**
 * Level 2, sample-weighted training load: total usage u_{c,e} per expert over clients.
 * `feedback[c]` is client c's feedback. Usage is self-reported, so a negative or non-finite usage
 * counts as 0 rather than poisoning the totals.
 * @throws RangeError on an expert index outside [0, experts).
 */
export function routedLoad(feedback: readonly (readonly ExpertFeedback[])[], experts: number): number[] {
  const load = new Array<number>(experts).fill(0);
  feedback.forEach((list, c) => {
    for (const f of list) {
      const e = f.expert;
      if (!(Number.isInteger(e) && e >= 0 && e < experts))
        throw new RangeError(`metrics: client ${c} reports expert ${e}, outside [0, ${experts})`);
      if (Number.isFinite(f.usage) && f.usage > 0) load[e] = (load[e] as number) + f.usage;
    }
  });
  return load;
}

/** Running per-expert sum of loads over rounds (the cumulative load of section 9). */
export class CumulativeLoad {
  readonly experts: number;
  private readonly sums: Float64Array;
  private count = 0;

  constructor(experts: number) {
    if (!(Number.isSafeInteger(experts) && experts >= 1)) throw new RangeError(`metrics: experts must be an integer >= 1, got ${experts}`);
    this.experts = experts;
    this.sums = new Float64Array(experts);
  }

  /**
   * Resumes from stored totals after `rounds` rounds.
   * @throws RangeError on a negative or non-finite total.
   */
  static from(totals: ArrayLike<number>, rounds = 0): CumulativeLoad {
    const c = new CumulativeLoad(totals.length);
    c.add(totals);
    c.count = rounds;
    return c;
  }

  /**
   * Adds one round's load.
   * @throws RangeError on a length mismatch or a negative or non-finite entry (nothing is added then).
   */
  add(load: ArrayLike<number>): void {
    if (load.length !== this.experts) throw new RangeError(`metrics: load has ${load.length} entries, expected ${this.experts}`);
    for (let i = 0; i < load.length; i++) {
      const v = load[i] as number;
      if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`metrics: load[${i}] must be finite and >= 0, got ${v}`);
    }
    for (let i = 0; i < load.length; i++) this.sums[i] = (this.sums[i] as number) + (load[i] as number);
    this.count++;
  }

  /** Number of loads added. */
  rounds(): number {
    return this.count;
  }

  /** Per-expert totals so far (a copy). */
  total(): number[] {
    return Array.from(this.sums);
  }

  /** {@link loadStats} of the totals. */
  stats(): LoadStats {
    return loadStats(this.sums);
  }
}

function populationStd(values: ArrayLike<number>, mean: number): number {
  let ss = 0;
  for (let i = 0; i < values.length; i++) {
    const d = (values[i] as number) - mean;
    ss += d * d;
  }
  return Math.sqrt(ss / values.length);
}

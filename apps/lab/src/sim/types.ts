/** Shapes of the Node experiment simulator: one run's settings and its result row. */
import { STRATEGY_NAMES, type FeedbackMode, type StrategyName } from "@flexmoe/core";

export type DatasetName = "mnist" | "fashion-mnist";
export const DATASETS: readonly DatasetName[] = ["mnist", "fashion-mnist"];

/** The registered strategies (full included) plus the dense FedAvg reference (one expert, widened). */
export type SimStrategy = StrategyName | "dense";
export const SIM_STRATEGIES: readonly SimStrategy[] = [...STRATEGY_NAMES, "dense"];

export interface DataOptions {
  dataset: DatasetName;
  /** Samples dealt to the clients in total (train + held-out). */
  clientSamples: number;
  /** Samples of the global test set (never seen by a client). */
  globalTest: number;
  /** Fashion-MNIST folder override. */
  fashionDir?: string;
}

export interface RunSpec {
  data: DataOptions;
  /** "iid", "dirichlet:0.8", "classes:4". */
  partition: string;
  strategy: SimStrategy;
  seed: number;
  /** The model the clients train: dense (fast in Node) or cnn (what the page trains). @default "dense" */
  preset?: "cnn" | "dense";
  clients: number;
  experts: number;
  /** One capacity for everyone ("2") or a mix dealt cyclically over the clients ("1,2,4"). */
  capacity: string;
  rounds: number;
  localEpochs: number;
  batchSize: number;
  learningRate: number;
  fitness: "acc" | "loss";
  /** When the clients measure their per-expert feedback. @default "pre" (the coordinator's default) */
  feedback?: FeedbackMode;
  /** The gate's balance term weight (TrainingConfig.balance). @default 0 */
  balance?: number;
  /** TrainingConfig.gateInit. @default "keep" */
  gateInit?: "keep" | "mean";
  alphaL: number;
  beta: number;
  q0: number;
  slack: number;
  /** Fraction of each client's shard held out for the personalized accuracy. */
  testFraction: number;
  /** Robustness runs: hostile clients and the server's defence (both absent = the paper's setting). */
  attack?: AttackSpec;
  /** The server's aggregation (rule names from core's registry). @default mean, trim 0.2, no clipping of either kind */
  aggregation?: { rule?: string; trim?: number; clipNorm?: number; clipFactor?: number };
  /** Consecutive rounds a client may hold one expert (the engine's maxHold). @default 0: no limit */
  maxHold?: number;
  /** The engine's zero-usage rule. @default "keep" */
  zeroUsage?: "keep" | "zero";
  /** The engine's qDecay (exploration). @default 0 */
  qDecay?: number;
  /** The run's id, which seeds the clients' own streams (gate, shuffles); default `sim-<seed>`. */
  runId?: string;
}

/**
 * The first round(fraction * clients) clients train honestly but upload g + s (x - g) instead of x
 * (g: the global weights they received): s = factor ("scale"), -factor ("signflip"), or alternating
 * between the two over the attackers ("mixed").
 */
export interface AttackSpec {
  fraction: number;
  kind: "scale" | "signflip" | "mixed";
  factor: number;
}

export interface ResultRow {
  dataset: DatasetName;
  partition: string;
  strategy: SimStrategy;
  seed: number;
  capacity: string;
  fitness: "acc" | "loss";
  /** Rows written before the knob existed have none; they were measured after training (`post`). */
  feedback: FeedbackMode;
  clients: number;
  experts: number;
  rounds: number;
  localEpochs: number;
  /** Personalized accuracy after the last round (each client: final global weights of its experts + own gate, own held-out split), sample-weighted. */
  finalAccuracy: number;
  finalLoss: number;
  /** Mean over clients of each personalized model's accuracy on the global test set. */
  finalGlobalAccuracy: number;
  /** Per round: personalized accuracy measured BEFORE local training (the round record's; null if none was measured). */
  accuracy: (number | null)[];
  loss: (number | null)[];
  /** Mean local training loss per round. */
  trainLoss: (number | null)[];
  /** Mean over rounds of the CV of holders per expert (level-1 load). */
  cvHolders: number;
  cvPerRound: number[];
  /** CV of the cumulative samples routed per expert after the last round (level-2 load). */
  cvSamples: number;
  /** CV of the cumulative routed samples after each round. */
  cvRoutedCumulativePerRound: number[];
  /** CV of the samples routed in each round alone. */
  cvRoutedPerRound: number[];
  /** Mean over rounds of max/mean - 1 of the holders. */
  maxVioHolders: number;
  /** max/mean - 1 of the cumulative routed samples. */
  maxVioSamples: number;
  /** Mean over rounds of experts with no holder. */
  starvedHolders: number;
  /** Experts that never received a routed sample. */
  starvedSamples: number;
  loadPerRound: number[][];
  routedPerRound: number[][];
  cumulativeRouted: number[];
  /** Client x expert 0/1 assignment of the last round. */
  lastAssignment: number[][];
  /** Client x expert fitness matrix Q after the last round (absent in rows from before it was recorded). */
  finalQ?: number[][];
  capacities: number[];
  /** Mean per client over the run: model bytes received (backbone + held experts) and uploaded. */
  bytesDownPerClient: number;
  bytesUpPerClient: number;
  /** Down + up. */
  bytesPerClient: number;
  /** Parameters a client trains and evaluates with (backbone + held experts + gate), mean over clients. */
  activeParams: number;
  seconds: number;
  /** Provenance, set by `flexmoe experiment` (absent in rows from before it): the commit the run ran at. */
  commit?: string;
  /** Whether tracked files differed from {@link ResultRow.commit}. */
  dirty?: boolean;
  /** The command line that regenerates this run alone, every knob explicit. */
  command?: string;
  /** The run's complete settings. */
  config?: RunSpec;
}

/** Progress of one run, reported after each client and round. */
export interface RunProgress {
  round: number;
  rounds: number;
  /** Clients finished in this round. */
  client: number;
  clients: number;
  /** Latest pre-training accuracy (after a round closes). */
  accuracy?: number;
}

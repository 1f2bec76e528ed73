/**
 * Coordinator configuration: `CoordinatorConfig` is what users may set (CLI flags),
 * `resolveConfig` fills the defaults once at start-up into a complete, read-only object.
 */
import {
  builtinRules,
  builtinStrategies,
  FEEDBACK_MODES,
  parsePartition,
  type AggregatorName,
  type FeedbackMode,
  type FitnessKind,
  type PartitionScheme,
  type StrategyName,
  type ZeroUsageRule,
  ZERO_USAGE_RULES,
} from "@flexmoe/core";
import type { Preset } from "@flexmoe/model/spec";

export interface CoordinatorConfig {
  /** @default 8 */
  experts?: number;
  /** Clients that must be ready before a round starts. @default 2 */
  minClients?: number;
  /** Stop after this many rounds; 0 = unbounded. @default 0 */
  rounds?: number;
  /** A round closes without the clients that have not answered by then. @default 120 */
  roundTimeoutSec?: number;
  /** Once min-clients are ready, wait this long for more before starting the round. @default 1500 */
  gatherMs?: number;
  /** @default "flex" */
  strategy?: StrategyName;
  /** @default "acc" */
  fitness?: "acc" | "loss";
  /** Loss-driven fitness exp(-alphaL * loss). @default 1 */
  alphaL?: number;
  /** EMA rate of the fitness matrix Q. @default 0.5 */
  beta?: number;
  /** Initial fitness of untried pairs (optimistic). @default 1 */
  q0?: number;
  /** Load-bound slack delta. @default 0 */
  slack?: number;
  /** Largest capacity a client may hold (a larger ask is capped); at most E. @default min(E, 4) */
  maxCapacity?: number;
  /** Own (drawn) samples a page may train on beyond its dealt shard; bounds the claimed sample count. @default 200 */
  maxOwnSamples?: number;
  /** @default "mnist" */
  dataset?: "mnist";
  /** @default "dirichlet:0.8" */
  partition?: string;
  /** Number of data shards joining clients are dealt from. @default 16 */
  shards?: number;
  /** Cap on samples per shard (train + held-out); 0 = no cap. @default 0 */
  maxSamplesPerClient?: number;
  /** Fraction of each shard held out for the personalized accuracy. @default 0.2 */
  testFraction?: number;
  /** Model preset the browser trains. @default "cnn" */
  preset?: Preset;
  /**
   * Local training, sent to the clients with every round. `feedback`: when a client measures the
   * per-expert feedback it uploads (docs/protocol.md, "Feedback").
   * @default { epochs: DEFAULT_EPOCHS (10), batchSize: 32, learningRate: 0.005, feedback: "pre" }
   */
  training?: {
    epochs?: number;
    batchSize?: number;
    learningRate?: number;
    feedback?: FeedbackMode;
    balance?: number;
    gateInit?: "keep" | "mean";
  };
  /** Wire precision for model frames sent to clients. @default "float32" */
  wireDType?: "float32" | "float16";
  /** Seed for partitioning, initial weights and random strategies. @default 1 */
  seed?: number;
  /** A round that closes with fewer updates than this is abandoned (not applied) and redone. @default 1 */
  quorum?: number;
  /** How updates are combined: weighted mean, coordinate-wise trimmed mean, or coordinate-wise median. @default "mean" */
  aggregator?: AggregatorName;
  /** Fraction trimmed from each end by the trimmed aggregator. @default 0.2 */
  trim?: number;
  /** Clip each client's delta (per backbone and per expert) to this L2 norm; 0 = off. @default 0 */
  clipNorm?: number;
  /** Adaptive clipping: each delta to this many times the round's lower-median delta norm of its kind; 0 = off. @default 3 */
  clipFactor?: number;
  /**
   * Consecutive rounds a client may hold one expert before it must leave it for a round; 0 = no limit.
   * Bounds expert capture through self-reported feedback. @default 4
   */
  maxHold?: number;
  /** Q of an assigned expert that got no routed sample: kept, or scored 0. @default DEFAULT_ZERO_USAGE */
  zeroUsage?: ZeroUsageRule;
  /** Exploration: per round, unassigned experts' Q moves this fraction back to q0. @default DEFAULT_Q_DECAY */
  qDecay?: number;
  /** Forget clients offline this long (registry entry, token, Q row); 0 = never. @default 3600 */
  pruneAfterSec?: number;
  /** Per-connection token bucket: burst size and refill per second. @default { burst: 40, perSec: 20 } */
  rateLimit?: { burst?: number; perSec?: number };
}

export type { AggregatorName, StrategyName };

export interface ResolvedConfig {
  readonly experts: number;
  readonly minClients: number;
  readonly rounds: number;
  readonly roundTimeoutMs: number;
  readonly gatherMs: number;
  readonly strategy: StrategyName;
  readonly fitness: FitnessKind;
  readonly beta: number;
  readonly q0: number;
  readonly slack: number;
  readonly maxCapacity: number;
  readonly maxOwnSamples: number;
  readonly dataset: "mnist";
  readonly partition: PartitionScheme;
  readonly partitionLabel: string;
  readonly shards: number;
  readonly maxSamplesPerClient: number;
  readonly testFraction: number;
  readonly preset: Preset;
  readonly training: {
    readonly epochs: number;
    readonly batchSize: number;
    readonly learningRate: number;
    readonly feedback: FeedbackMode;
    readonly balance: number;
    readonly gateInit: "keep" | "mean";
  };
  readonly wireDType: "float32" | "float16";
  readonly seed: number;
  readonly quorum: number;
  readonly aggregator: AggregatorName;
  readonly trim: number;
  /** 0 = no clipping. */
  readonly clipNorm: number;
  /** 0 = no adaptive clipping. */
  readonly clipFactor: number;
  /** 0 = no limit. */
  readonly maxHold: number;
  readonly zeroUsage: ZeroUsageRule;
  readonly qDecay: number;
  /** 0 = never prune. */
  readonly pruneAfterMs: number;
  readonly rateLimit: { readonly burst: number; readonly perSec: number };
}

/**
 * The expert-capture bound's default (docs/robustness.md). 6, not 4: with 4 every page of a small class
 * leaves the experts it held since round 1 in round 5 at once and accuracy dips there; in the simulator
 * 6 and 4 do not differ beyond seed noise, 8 does worse (docs/results/ablations.md).
 */
export const DEFAULT_MAX_HOLD = 6;
/**
 * Local epochs per round, chosen on three headless pages (README, Classroom): 10 read 0.92-0.94 in
 * round 5 in every run measured, 5 read 0.80-0.91, 1 did not pass 0.70. The simulator keeps 1.
 */
export const DEFAULT_EPOCHS = 10;
/** docs/results/ablations.md has the measurement behind it. */
export const DEFAULT_ZERO_USAGE: ZeroUsageRule = "zero";
/** Off until an ablation says otherwise (docs/results/ablations.md). */
export const DEFAULT_BALANCE = 0;
/** Until an ablation says otherwise (docs/results/ablations.md). */
export const DEFAULT_GATE_INIT: "keep" | "mean" = "keep";
/** Off until an ablation says otherwise (docs/results/ablations.md). */
export const DEFAULT_Q_DECAY = 0;

function int(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}
function num(name: string, v: number, min: number, max: number): number {
  if (!Number.isFinite(v) || v < min || v > max) throw new RangeError(`${name} must be a number in [${min}, ${max}], got ${v}`);
  return v;
}

/** Fill defaults and check ranges; throws RangeError naming the option. */
export function resolveConfig(c: CoordinatorConfig = {}): ResolvedConfig {
  const experts = int("experts", c.experts ?? 8, 2, 64);
  const strategy = c.strategy ?? "flex";
  if (!builtinStrategies.has(strategy))
    throw new RangeError(`strategy must be one of ${builtinStrategies.names.join(", ")}, got ${String(strategy)}`);
  const partitionLabel = c.partition ?? "dirichlet:0.8";
  const aggregator = c.aggregator ?? "mean";
  const oneOf = <T extends string>(name: string, v: T, allowed: readonly T[]): T => {
    if (!allowed.includes(v)) throw new RangeError(`${name} must be one of ${allowed.join(", ")}, got ${String(v)}`);
    return v;
  };
  if (!builtinRules.has(aggregator))
    throw new RangeError(`aggregator must be one of ${builtinRules.names.join(", ")}, got ${String(aggregator)}`);
  return Object.freeze({
    experts,
    minClients: int("min-clients", c.minClients ?? 2, 1, 100_000),
    rounds: int("rounds", c.rounds ?? 0, 0, 1_000_000),
    roundTimeoutMs: num("round-timeout", c.roundTimeoutSec ?? 120, 1, 86_400) * 1000,
    gatherMs: int("gather-ms", c.gatherMs ?? 1500, 0, 600_000),
    strategy,
    fitness:
      oneOf("fitness", c.fitness ?? "acc", ["acc", "loss"]) === "acc"
        ? ({ kind: "acc" } as const)
        : ({ kind: "loss", alphaL: num("alpha-l", c.alphaL ?? 1, 1e-6, 1e6) } as const),
    beta: num("beta", c.beta ?? 0.5, 1e-6, 1),
    q0: num("q0", c.q0 ?? 1, 0, 1),
    slack: num("slack", c.slack ?? 0, 0, 10),
    maxCapacity: int("max-capacity", Math.min(c.maxCapacity ?? 4, experts), 1, experts),
    maxOwnSamples: int("max-own-samples", c.maxOwnSamples ?? 200, 0, 100_000),
    dataset: oneOf("dataset", c.dataset ?? "mnist", ["mnist"]),
    partition: parsePartition(partitionLabel),
    partitionLabel,
    shards: int("shards", c.shards ?? 16, 1, 10_000),
    maxSamplesPerClient: int("max-samples", c.maxSamplesPerClient ?? 0, 0, 10_000_000),
    testFraction: num("test-fraction", c.testFraction ?? 0.2, 0.01, 0.9),
    preset: oneOf("preset", c.preset ?? "cnn", ["cnn", "dense"]),
    training: Object.freeze({
      epochs: int("epochs", c.training?.epochs ?? DEFAULT_EPOCHS, 1, 100),
      batchSize: int("batch-size", c.training?.batchSize ?? 32, 1, 4096),
      learningRate: num("lr", c.training?.learningRate ?? 0.005, 1e-7, 10),
      feedback: oneOf("feedback", c.training?.feedback ?? "pre", FEEDBACK_MODES),
      balance: num("balance", c.training?.balance ?? DEFAULT_BALANCE, 0, 10),
      gateInit: oneOf("gate-init", c.training?.gateInit ?? DEFAULT_GATE_INIT, ["keep", "mean"] as const),
    }),
    wireDType: oneOf("wire", c.wireDType ?? "float32", ["float32", "float16"]),
    seed: int("seed", c.seed ?? 1, 0, 2 ** 32 - 1),
    quorum: int("quorum", c.quorum ?? 1, 1, 100_000),
    aggregator,
    trim: num("trim", c.trim ?? 0.2, 0, 0.5),
    clipNorm: num("clip", c.clipNorm ?? 0, 0, 1e12),
    clipFactor: num("clip-factor", c.clipFactor ?? 3, 0, 1e6),
    maxHold: int("max-hold", c.maxHold ?? DEFAULT_MAX_HOLD, 0, 1_000_000),
    zeroUsage: oneOf("zero-usage", c.zeroUsage ?? DEFAULT_ZERO_USAGE, ZERO_USAGE_RULES),
    qDecay: num("q-decay", c.qDecay ?? DEFAULT_Q_DECAY, 0, 1),
    // Whole milliseconds: Redis's PEXPIRE (the cluster's identity expiry) takes integers only.
    pruneAfterMs: Math.round(num("prune-after", c.pruneAfterSec ?? 3600, 0, 10 * 365 * 86_400) * 1000),
    rateLimit: Object.freeze({
      burst: int("rate-burst", c.rateLimit?.burst ?? 40, 1, 1_000_000),
      perSec: num("rate-per-sec", c.rateLimit?.perSec ?? 20, 0.001, 1_000_000),
    }),
  });
}

/**
 * A run's settings resolved with the simulator's defaults: what the engine and the clients get.
 * Type imports only, so `flexmoe experiment --report-only` can use it without TensorFlow.js.
 */
import type { EngineConfig, FitnessKind, TrainingConfig } from "@flexmoe/core";
import type { RunSpec } from "./types.ts";

/** The engine's knobs for a run (dense runs the full strategy over its single expert). */
export function runEngineConfig(run: RunSpec): EngineConfig {
  const fitness: FitnessKind = run.fitness === "acc" ? { kind: "acc" } : { kind: "loss", alphaL: run.alphaL };
  return {
    strategy: run.strategy === "dense" ? "full" : run.strategy,
    fitness,
    beta: run.beta,
    slack: run.slack,
    aggregation: {
      rule: run.aggregation?.rule ?? "mean",
      trim: run.aggregation?.trim ?? 0.2,
      clipNorm: run.aggregation?.clipNorm ?? 0,
      clipFactor: run.aggregation?.clipFactor ?? 0,
    },
    maxHold: run.maxHold ?? 0,
    zeroUsage: run.zeroUsage ?? "keep",
    qDecay: run.qDecay ?? 0,
  };
}

/** The local training knobs of a run (what the coordinator sends in round:started). */
export function trainingOf(run: RunSpec): TrainingConfig {
  return {
    epochs: run.localEpochs,
    batchSize: run.batchSize,
    learningRate: run.learningRate,
    feedback: run.feedback ?? "pre",
    balance: run.balance ?? 0,
    gateInit: run.gateInit ?? "keep",
  };
}

/**
 * Where an experiment row came from: the commit it ran at (and whether the tree was dirty) and the
 * one command line that regenerates that run alone. The simulation is deterministic, so the command
 * at the same commit gives the same numbers (apps/lab/src/sim/provenance.test.ts).
 */
import { execFileSync } from "node:child_process";
import { runEngineConfig, trainingOf } from "./run-config.ts";
import type { RunSpec } from "./types.ts";

export interface Provenance {
  /** HEAD's sha, or "unknown" outside a git checkout. */
  commit: string;
  /** Tracked files differ from HEAD: the numbers may not be the commit's. */
  dirty: boolean;
}

export function gitProvenance(cwd = process.cwd()): Provenance {
  const git = (...args: string[]): string =>
    execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const commit = git("rev-parse", "HEAD");
    // Untracked files (experiment outputs, scratch) do not change what the simulator runs.
    const dirty = git("status", "--porcelain", "--untracked-files=no").length > 0;
    return { commit, dirty };
  } catch {
    return { commit: "unknown", dirty: true };
  }
}

/** The flags of `flexmoe experiment` that reproduce exactly this run (every knob explicit, so later default changes do not matter). */
export function runArgs(run: RunSpec): string[] {
  if (run.attack) throw new Error("runArgs: attack runs are not expressible on the experiment command line");
  if (run.runId !== undefined) throw new Error("runArgs: a custom runId is not expressible on the experiment command line");
  // The values the simulator resolves, not a second copy of its defaults.
  const { aggregation: agg, maxHold, zeroUsage, qDecay } = runEngineConfig(run);
  const args: [string, string | number][] = [
    ["dataset", run.data.dataset],
    ["partition", run.partition],
    ["strategy", run.strategy],
    ["seed", run.seed],
    ["clients", run.clients],
    ["experts", run.experts],
    ["capacity", run.capacity],
    ["rounds", run.rounds],
    ["epochs", run.localEpochs],
    ["batch-size", run.batchSize],
    ["lr", run.learningRate],
    ["fitness", run.fitness],
    ["feedback", trainingOf(run).feedback],
    ["alpha-l", run.alphaL],
    ["beta", run.beta],
    ["q0", run.q0],
    ["slack", run.slack],
    ["samples-per-client", run.data.clientSamples / run.clients],
    ["global-test", run.data.globalTest],
    ["test-fraction", run.testFraction],
    ["preset", run.preset ?? "dense"],
    ["aggregator", agg.rule],
    ["trim", agg.trim],
    ["clip", agg.clipNorm],
    ["clip-factor", agg.clipFactor],
    ["max-hold", maxHold ?? 0],
    ["zero-usage", zeroUsage ?? "keep"],
    ["q-decay", qDecay ?? 0],
    ["balance", trainingOf(run).balance ?? 0],
    ["gate-init", trainingOf(run).gateInit ?? "keep"],
  ];
  const out = args.flatMap(([k, v]) => [`--${k}`, String(v)]);
  if (run.data.fashionDir !== undefined) out.push("--fashion-dir", run.data.fashionDir);
  return out;
}

/** {@link runArgs} as one shell line (no value needs quoting: knob values are numbers and plain words). */
export function runCommand(run: RunSpec): string {
  return ["npx flexmoe experiment", ...runArgs(run).map((a) => (/^[\w.,:/-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`))].join(" ");
}

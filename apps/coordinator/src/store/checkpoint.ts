/**
 * What a coordinator persists after every completed round, and how it becomes a Federation's
 * starting state again. Pure: the bytes come from and go to a {@link RunStore}.
 *
 * A checkpoint is one binary file, so it is replaced atomically as a whole:
 *   "FMS1" | u32 LE length J | J bytes of UTF-8 JSON (everything but the weights) | zero pad to 4 |
 *   one wire frame (core wire.ts, float32: exact) of the backbone followed by every expert in id order.
 */
import { decodeTensors, encodeTensors, err, FitnessMatrix, ok, type FitnessMatrixJSON, type NamedTensor, type Result } from "@flexmoe/core";
import { backboneManifest, expertManifest, modelSpec } from "@flexmoe/model/spec";
import type { ResolvedConfig } from "../config.ts";
import type { FederationState, PersistedClient, RoundRecord } from "../federation.ts";

export const CHECKPOINT_VERSION = 1;
const MAGIC = [0x46, 0x4d, 0x53, 0x31]; // "FMS1"

/** Everything but the weights, as stored (JSON). */
export interface CheckpointMeta {
  version: number;
  runId: string;
  /** Completed rounds. */
  round: number;
  savedAt: number;
  config: ResolvedConfig;
  fitness: FitnessMatrixJSON;
  deficit: number[];
  cumulativeRouted: number[];
  history: RoundRecord[];
  clients: PersistedClient[];
}

export interface Checkpoint {
  meta: CheckpointMeta;
  /** Backbone then experts 0..E-1, flat. */
  weights: NamedTensor[];
}

export type StoreErrorCode = "CORRUPT" | "INCOMPATIBLE" | "IO";
export interface StoreError {
  code: StoreErrorCode;
  message: string;
}

export function checkpointOf(
  state: Readonly<FederationState>,
  clients: readonly PersistedClient[],
  config: ResolvedConfig,
  savedAt: number,
): Checkpoint {
  return {
    meta: {
      version: CHECKPOINT_VERSION,
      runId: state.runId,
      round: state.round,
      savedAt,
      config,
      fitness: state.fitness.toJSON(),
      deficit: [...state.deficit],
      cumulativeRouted: [...state.cumulativeRouted],
      history: [...state.history],
      clients: [...clients],
    },
    weights: [...state.backbone, ...state.experts.flat()],
  };
}

export function encodeCheckpoint(cp: Checkpoint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(cp.meta));
  const frame = encodeTensors(cp.weights, "float32");
  const start = (8 + json.length + 3) & ~3;
  const out = new Uint8Array(start + frame.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, json.length, true);
  out.set(json, 8);
  out.set(frame, start);
  return out;
}

/** Parses a checkpoint file; weights are decoded without a manifest (that check is {@link restoreCheckpoint}'s). */
export function decodeCheckpoint(bytes: Uint8Array): Result<Checkpoint, StoreError> {
  const corrupt = (why: string) => err<StoreError>({ code: "CORRUPT", message: `checkpoint: ${why}` });
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) return corrupt("bad magic (expected FMS1)");
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (8 + len > bytes.length) return corrupt("metadata runs past the end of the file");
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + len))) as CheckpointMeta;
  } catch (e) {
    return corrupt(`metadata is not JSON (${(e as Error).message})`);
  }
  if (typeof meta !== "object" || meta === null || meta.version !== CHECKPOINT_VERSION)
    return corrupt(`unsupported version ${String(meta?.version)}`);
  if (!Number.isInteger(meta.round) || meta.round < 0 || typeof meta.runId !== "string") return corrupt("round or runId missing");
  if (!Array.isArray(meta.history) || !Array.isArray(meta.clients) || !Array.isArray(meta.deficit) || !Array.isArray(meta.cumulativeRouted))
    return corrupt("history, clients, deficit or cumulativeRouted missing");
  const start = (8 + len + 3) & ~3;
  const weights = decodeTensors(bytes.subarray(start));
  if (!weights.ok) return corrupt(`weights: ${weights.error.message}`);
  return ok({ meta, weights: weights.value });
}

/** Settings that define the model's shapes or the clients' data: a run cannot continue under other values. */
const IDENTITY_KEYS = ["experts", "preset", "dataset", "partitionLabel", "shards", "maxSamplesPerClient", "testFraction", "seed"] as const;
/** Settings that may change between restarts; a change is reported, not refused. */
const TUNABLE_KEYS = [
  "strategy",
  "minClients",
  "rounds",
  "roundTimeoutMs",
  "quorum",
  "aggregator",
  "trim",
  "clipNorm",
  "clipFactor",
  "maxCapacity",
  "maxOwnSamples",
  "beta",
  "slack",
] as const;

export interface Restored {
  initial: FederationState;
  clients: PersistedClient[];
  /** Tunable settings that differ from the stored run ("strategy: flex -> greedy"). */
  changed: string[];
}

/** Checks a checkpoint against this server's configuration and turns it into a Federation's starting state. */
export function restoreCheckpoint(cp: Checkpoint, config: ResolvedConfig): Result<Restored, StoreError> {
  const stored = cp.meta.config as unknown as Record<string, unknown>;
  const current = config as unknown as Record<string, unknown>;
  const clash = IDENTITY_KEYS.filter((k) => JSON.stringify(stored[k]) !== JSON.stringify(current[k]));
  if (clash.length > 0) {
    const diff = clash.map((k) => `${k}: stored ${JSON.stringify(stored[k])}, now ${JSON.stringify(current[k])}`).join("; ");
    return err({
      code: "INCOMPATIBLE",
      message: `the stored run ${cp.meta.runId} (round ${cp.meta.round}) cannot continue with these settings (${diff}). Start it with the stored settings, or use another --data-dir for a new run.`,
    });
  }
  const changed = TUNABLE_KEYS.filter((k) => JSON.stringify(stored[k]) !== JSON.stringify(current[k])).map(
    (k) => `${k}: ${JSON.stringify(stored[k])} -> ${JSON.stringify(current[k])}`,
  );
  const spec = modelSpec(config.preset, config.experts);
  const groups = [backboneManifest(spec), ...Array.from({ length: config.experts }, (_, e) => expertManifest(spec, e))];
  const manifest = groups.flat();
  if (cp.weights.length !== manifest.length)
    return err({ code: "CORRUPT", message: `checkpoint: ${cp.weights.length} tensors, the model has ${manifest.length}` });
  for (let i = 0; i < manifest.length; i++) {
    const want = manifest[i]!;
    const got = cp.weights[i]!;
    if (got.name !== want.name || got.shape.length !== want.shape.length || got.shape.some((d, k) => d !== want.shape[k]))
      return err({
        code: "CORRUPT",
        message: `checkpoint: tensor ${i} is ${got.name} [${got.shape.join(",")}], expected ${want.name} [${want.shape.join(",")}]`,
      });
  }
  let fitness: FitnessMatrix;
  try {
    fitness = FitnessMatrix.fromJSON(cp.meta.fitness);
  } catch (e) {
    return err({ code: "CORRUPT", message: `checkpoint: ${(e as Error).message}` });
  }
  const E = config.experts;
  if (fitness.experts !== E || cp.meta.deficit.length !== E || cp.meta.cumulativeRouted.length !== E)
    return err({ code: "CORRUPT", message: `checkpoint: fitness, deficit or routed load is not over ${E} experts` });
  let offset = 0;
  const take = (n: number) => cp.weights.slice(offset, (offset += n));
  const backbone = take(groups[0]!.length);
  const experts = groups.slice(1).map((g) => take(g.length));
  return ok({
    initial: {
      runId: cp.meta.runId,
      round: cp.meta.round,
      backbone,
      experts,
      fitness,
      deficit: [...cp.meta.deficit],
      cumulativeRouted: [...cp.meta.cumulativeRouted],
      history: cp.meta.history,
    },
    clients: cp.meta.clients,
    changed,
  });
}

/**
 * What a coordinator persists after every completed round, and how it becomes a Federation's
 * starting state again. Pure: the bytes come from and go to a {@link RunStore}.
 *
 * A checkpoint is one binary file, so it is replaced atomically as a whole:
 *   "FMS2" | u32 LE length J | J bytes of UTF-8 JSON (everything but the weights) | zero pad to 4 |
 *   one wire frame (core wire.ts, float32: exact) of the backbone followed by every expert in id order |
 *   32 bytes: SHA-256 of everything before them.
 * A flipped bit anywhere fails the checksum; the metadata is then parsed by a schema, so a file that
 * passes the checksum but was crafted still cannot put ill-typed records into the run. "FMS1" files
 * (no checksum, written before it existed) are still read.
 */
import { createHash } from "node:crypto";
import {
  decodeTensors,
  encodeTensors,
  err,
  expertFeedbackSchema,
  FitnessMatrix,
  ok,
  type FitnessMatrixJSON,
  type NamedTensor,
  type Result,
} from "@flexmoe/core";
import { z } from "zod";
import { backboneManifest, expertManifest, modelSpec } from "@flexmoe/model/spec";
import type { ResolvedConfig } from "../config.ts";
import type { FederationState, PersistedClient, RoundRecord } from "../federation.ts";

export const CHECKPOINT_VERSION = 1;
const MAGIC = [0x46, 0x4d, 0x53, 0x32]; // "FMS2"
const MAGIC_V1 = [0x46, 0x4d, 0x53, 0x31]; // "FMS1": no checksum
const DIGEST_BYTES = 32;

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
  /** The engine's holding streaks (absent in checkpoints written before the hold limit: none). */
  holding: Record<string, number[]>;
  history: RoundRecord[];
  clients: PersistedClient[];
}

export interface Checkpoint {
  meta: CheckpointMeta;
  /** Backbone then experts 0..E-1, flat. */
  weights: NamedTensor[];
  /** Set by a store that fell back to an older copy (why, for the operator); never stored. */
  recovered?: string;
}

export type StoreErrorCode = "CORRUPT" | "INCOMPATIBLE" | "IO" | "LOCKED";
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
      holding: Object.fromEntries(Object.entries(state.holding).map(([id, row]) => [id, [...row]])),
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
  const body = start + frame.length;
  const out = new Uint8Array(body + DIGEST_BYTES);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, json.length, true);
  out.set(json, 8);
  out.set(frame, start);
  out.set(sha256(out.subarray(0, body)), body);
  return out;
}

const sha256 = (bytes: Uint8Array): Uint8Array => createHash("sha256").update(bytes).digest();

// What a checkpoint's JSON may hold. Bounds are generous (nothing a real run reaches) but finite.
const finite = z.number().finite();
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const id = z.string().min(1).max(64);
const experts = z.array(z.number().int().min(0).max(4095)).max(4096);
const numbers = z.array(finite).max(4096);
/** Statistics a round stores but never computes with again; JSON turns a non-finite one into null. */
const stat = z.number().nullable();
const roundRecordSchema = z.object({
  round: count.min(1),
  strategy: z.string().max(32),
  participants: count,
  accuracy: finite.nullable(),
  loss: finite.nullable(),
  load: numbers,
  cv: finite,
  routed: numbers,
  cvRouted: finite,
  startedAt: finite,
  closedAt: finite,
  reason: z.enum(["complete", "timeout"]),
  assigned: z.record(id, experts),
  capacities: z.record(id, count),
  bounds: z.object({ lower: numbers, upper: numbers }).nullable(),
  deficitBefore: numbers,
  cvRoutedCumulative: stat,
  // Checkpoints written before the round engine have neither (they had maxOverMean = max/mean).
  maxVio: stat.default(0),
  trainLoss: stat.default(null),
  starved: count,
  objective: stat,
  feedback: z.record(id, z.array(expertFeedbackSchema).max(4096)),
});
const persistedClientSchema = z.object({
  id: z.string().regex(/^c[0-9]{1,15}$/),
  token: z.string().min(1).max(256),
  shard: count,
  capacity: count.min(1),
  backend: z.string().max(32),
  label: z.string().max(200).nullable(),
  lastRound: count,
  accuracy: finite.nullable(),
  // Written since token rotation; absent in older files.
  prevToken: z.string().min(1).max(256).nullable().optional(),
  lastSeen: finite.optional(),
});
/** One entry of the client registry (checkpoint or clients.jsonl), or null when it is not one. */
export function parsePersistedClient(v: unknown): PersistedClient | null {
  return persistedClientSchema.safeParse(v).success ? (v as PersistedClient) : null;
}
const metaSchema = z.object({
  version: z.literal(CHECKPOINT_VERSION),
  runId: z.string().min(1).max(64),
  round: count,
  savedAt: finite,
  // Only its identity keys are read (restoreCheckpoint compares them); the run uses the live config.
  config: z.record(z.string(), z.unknown()),
  fitness: z.object({
    experts: count.min(1).max(4096),
    q0: finite,
    rows: z.array(z.object({ id, q: numbers })),
  }),
  deficit: numbers,
  cumulativeRouted: numbers,
  holding: z.record(id, numbers).default({}),
  history: z.array(roundRecordSchema),
  clients: z.array(persistedClientSchema),
});

/** Parses a checkpoint file; weights are decoded without a manifest (that check is {@link restoreCheckpoint}'s). */
export function decodeCheckpoint(bytes: Uint8Array): Result<Checkpoint, StoreError> {
  const corrupt = (why: string) => err<StoreError>({ code: "CORRUPT", message: `checkpoint: ${why}` });
  const v1 = bytes.length >= 8 && MAGIC_V1.every((b, i) => bytes[i] === b);
  if (bytes.length < 8 || (!v1 && MAGIC.some((b, i) => bytes[i] !== b))) return corrupt("bad magic (expected FMS2)");
  let body = bytes;
  if (!v1) {
    if (bytes.length < 8 + DIGEST_BYTES) return corrupt("truncated");
    body = bytes.subarray(0, bytes.length - DIGEST_BYTES);
    const stored = bytes.subarray(bytes.length - DIGEST_BYTES);
    if (!Buffer.from(sha256(body)).equals(Buffer.from(stored))) return corrupt("checksum mismatch (the file was altered or damaged)");
  }
  const len = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(4, true);
  if (8 + len > body.length) return corrupt("metadata runs past the end of the file");
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body.subarray(8, 8 + len)));
  } catch (e) {
    return corrupt(`metadata is not JSON (${(e as Error).message})`);
  }
  const parsed = metaSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return corrupt(`metadata: ${issue ? `${issue.path.join(".") || "root"}: ${issue.message}` : "invalid"}`);
  }
  // Validated, but the original is kept (zod's copy reorders keys, and the history must round-trip
  // byte for byte). The stored config is only compared key by key; the run uses the live one.
  const meta = json as CheckpointMeta;
  const start = (8 + len + 3) & ~3;
  const weights = decodeTensors(body.subarray(start));
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
  "maxHold",
  "zeroUsage",
  "qDecay",
  "pruneAfterMs",
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
/** Checkpoint bytes (a cluster keeps them in Redis) decoded and restored against the live config. */
export function restoreCheckpointBytes(bytes: Uint8Array, config: ResolvedConfig): Result<Restored, StoreError> {
  const cp = decodeCheckpoint(bytes);
  return cp.ok ? restoreCheckpoint(cp.value, config) : cp;
}

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
  const inconsistent = inconsistency(cp.meta, E, config.shards);
  if (inconsistent) return err({ code: "CORRUPT", message: `checkpoint: ${inconsistent}` });
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
      holding: cp.meta.holding ?? {},
      history: cp.meta.history,
    },
    clients: cp.meta.clients,
    changed,
  });
}

/** What the schema cannot see: records that disagree with the run's shape or with each other. */
function inconsistency(meta: CheckpointMeta, E: number, shards: number): string | null {
  let prev = 0;
  for (const h of meta.history) {
    if (h.round <= prev || h.round > meta.round) return `history round ${h.round} out of order (after ${prev}, run at ${meta.round})`;
    prev = h.round;
    if (h.load.length !== E || h.routed.length !== E || h.deficitBefore.length !== E)
      return `history round ${h.round}: load, routed or deficit is not over ${E} experts`;
    for (const ex of Object.values(h.assigned)) if (ex.some((e) => e >= E)) return `history round ${h.round}: expert beyond ${E - 1}`;
  }
  const ids = new Set<string>();
  const tokens = new Set<string>();
  for (const c of meta.clients) {
    if (ids.has(c.id) || tokens.has(c.token)) return `client ${c.id} is listed twice`;
    ids.add(c.id);
    tokens.add(c.token);
    if (c.shard >= shards) return `client ${c.id} holds shard ${c.shard}, the run has ${shards}`;
  }
  return null;
}

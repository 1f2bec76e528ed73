/**
 * Admission of one uploaded update against the round plan: the checks any process that receives
 * updates runs (the coordinator today, an edge tomorrow), before anything touches global state.
 */
import { ErrorCode, protocolError, type AckResult } from "../protocol/errors.ts";
import type { UpdateMeta } from "../protocol/schemas.ts";
import { decodeTensors } from "../wire.ts";
import { heldBy, type ClientUpdate, type RoundPlan } from "./engine.ts";
import { clientManifest, paramCount, splitClientTensors, type ModelLayout } from "./layout.ts";

export interface AdmitOptions {
  /** Extra bytes allowed over the float32 size of the client's manifest (header, names). @default 64 KiB */
  headerSlack?: number;
  /**
   * Most training samples this client can have: the shard the server dealt plus the page's own drawn
   * samples (bounded). A larger claim would buy the client a larger share of the backbone. @default no bound
   */
  maxSamples?: number;
  /** Most held-out samples this client can have (its dealt held-out split). @default no bound */
  maxEvalSamples?: number;
  /** Largest |weight| accepted; trained weights of these models stay far below. @default MAX_ABS_WEIGHT */
  maxAbs?: number;
}

/** Default bound on any uploaded weight's magnitude (Glorot-initialized weights here are below 1). */
export const MAX_ABS_WEIGHT = 1e3;

/** The first inconsistency between the claimed feedback and the experts the client holds, or null. */
export function checkFeedback(meta: UpdateMeta, held: readonly number[]): { code: ErrorCode; message: string } | null {
  const seen = new Set<number>();
  let usage = 0;
  let mass = 0;
  for (const f of meta.feedback) {
    if (!held.includes(f.expert)) return { code: ErrorCode.NOT_ASSIGNED, message: `feedback for expert ${f.expert}, not assigned` };
    if (seen.has(f.expert)) return { code: ErrorCode.INVALID_PAYLOAD, message: `duplicate feedback for expert ${f.expert}` };
    seen.add(f.expert);
    if (f.accuracy < 0 || f.accuracy > 1)
      return { code: ErrorCode.INVALID_PAYLOAD, message: `feedback accuracy ${f.accuracy} outside [0, 1]` };
    if (f.loss < 0) return { code: ErrorCode.INVALID_PAYLOAD, message: `feedback loss ${f.loss} < 0` };
    usage += f.usage;
    mass += f.mass ?? 0;
  }
  if (usage > meta.numSamples) return { code: ErrorCode.INVALID_PAYLOAD, message: `usage ${usage} exceeds numSamples ${meta.numSamples}` };
  // Gate weights of a sample sum to 1, so the masses sum to the samples (up to float rounding).
  if (mass > meta.numSamples * (1 + 1e-6))
    return { code: ErrorCode.INVALID_PAYLOAD, message: `gate mass ${mass} exceeds numSamples ${meta.numSamples}` };
  if (meta.evalAccuracy < 0 || meta.evalAccuracy > 1)
    return { code: ErrorCode.INVALID_PAYLOAD, message: `evalAccuracy ${meta.evalAccuracy} outside [0, 1]` };
  if (meta.evalLoss < 0 || meta.trainLoss < 0) return { code: ErrorCode.INVALID_PAYLOAD, message: "losses must be >= 0" };
  return null;
}

/**
 * Checks an update (its metadata and binary frame) from `clientId` against the plan and the layout
 * and turns it into the engine's {@link ClientUpdate}. Round number, duplicates and membership of the
 * open round are the driver's checks; this one answers NOT_PARTICIPANT, NOT_ASSIGNED, INVALID_PAYLOAD,
 * OUT_OF_BOUNDS (claims beyond the given bounds, absurd magnitudes) and the frame's codes (BAD_FRAME, NAME_MISMATCH, SHAPE_MISMATCH, SIZE_MISMATCH, NON_FINITE, TOO_LARGE).
 */
export function admitUpdate(
  plan: RoundPlan,
  layout: ModelLayout,
  clientId: string,
  meta: UpdateMeta,
  frame: Uint8Array,
  opts: AdmitOptions = {},
): AckResult<ClientUpdate> {
  const held = heldBy(plan, clientId);
  if (!held) return protocolError(ErrorCode.NOT_PARTICIPANT, `client ${clientId} is not in round ${plan.round}`);
  const fbErr = checkFeedback(meta, held);
  if (fbErr) return protocolError(fbErr.code, fbErr.message);
  if (opts.maxSamples !== undefined && meta.numSamples > opts.maxSamples)
    return protocolError(ErrorCode.OUT_OF_BOUNDS, `numSamples ${meta.numSamples} exceeds the ${opts.maxSamples} this client can have`);
  if (opts.maxEvalSamples !== undefined && meta.evalSamples > opts.maxEvalSamples)
    return protocolError(
      ErrorCode.INVALID_PAYLOAD,
      `evalSamples ${meta.evalSamples} exceeds the ${opts.maxEvalSamples} held out for this client`,
    );
  const manifest = clientManifest(layout, held);
  // Bound the frame by what this manifest can need in float32, before the header is even parsed.
  const maxBytes = 4 * paramCount(manifest) + (opts.headerSlack ?? 64 << 10);
  const decoded = decodeTensors(frame, manifest, { maxBytes, maxAbs: opts.maxAbs ?? MAX_ABS_WEIGHT });
  if (!decoded.ok) return protocolError(decoded.error.code, decoded.error.message);
  const split = splitClientTensors(layout, held, decoded.value);
  return {
    ok: true,
    value: {
      clientId,
      numSamples: meta.numSamples,
      backbone: split.backbone,
      experts: split.experts.map((x) => ({ ...x, usage: meta.feedback.find((f) => f.expert === x.expert)?.usage ?? 0 })),
      feedback: meta.feedback,
      evalAccuracy: meta.evalAccuracy,
      evalLoss: meta.evalLoss,
      evalSamples: meta.evalSamples,
      trainLoss: meta.trainLoss,
    },
  };
}

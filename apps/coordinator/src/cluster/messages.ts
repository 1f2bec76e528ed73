/**
 * The messages of the cluster's two streams, as schemas that derive their types. Every message a
 * leader sends carries its epoch; every partial an edge sends carries the epoch and round it answers,
 * so a stale leader's or edge's messages are recognised and ignored.
 */
import { expertFeedbackSchema, FEEDBACK_MODES } from "@flexmoe/core";
import { z } from "zod";

const finite = z.number().finite();
const count = z.number().int().min(0);

export const planSchema = z.object({
  round: z.number().int().min(1),
  strategy: z.string(),
  participants: z.array(z.string()),
  capacities: z.array(count),
  experts: z.array(z.array(count)),
  load: z.array(count),
  bounds: z.object({ lower: z.array(finite), upper: z.array(finite) }).nullable(),
  objective: finite,
  deficitBefore: z.array(finite),
});

const trainingSchema = z.object({
  epochs: count,
  batchSize: count,
  learningRate: finite,
  feedback: z.enum(FEEDBACK_MODES),
  balance: z.number().finite().min(0).optional(),
  gateInit: z.enum(["keep", "mean"]).optional(),
});

const summarySchema = z.object({
  round: z.number().int(),
  participants: count,
  accuracy: finite.nullable(),
  loss: finite.nullable(),
  load: z.array(count),
  cv: finite,
});

/** Leader -> edges. */
export const ctlMessageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("round:open"),
    epoch: z.number().int().min(1),
    runId: z.string(),
    plan: planSchema,
    /** Blob hash of the global model (float32 wire frame: backbone, then every expert in id order). */
    model: z.string(),
    /** Edges that hold participants: each must answer with one partial. */
    edges: z.array(z.string()),
    training: trainingSchema,
    timeoutMs: z.number().int().min(1),
    wire: z.enum(["float32", "float16"]),
    /**
     * The round's aggregation and claim bounds, from the leader that opened it: an edge started under
     * an earlier leader's config folds and checks this round as this leader says.
     */
    aggregation: z.object({
      rule: z.string(),
      trim: z.number().min(0).max(0.5),
      clipNorm: z.number().min(0),
      clipFactor: z.number().min(0),
    }),
    maxOwnSamples: z.number().int().min(0),
  }),
  z.object({ type: z.literal("round:closed"), epoch: z.number().int(), summary: summarySchema }),
  z.object({ type: z.literal("round:abandoned"), epoch: z.number().int(), round: z.number().int() }),
]);
export type CtlMessage = z.infer<typeof ctlMessageSchema>;
export type RoundOpen = Extract<CtlMessage, { type: "round:open" }>;

export const reportSchema = z.object({
  clientId: z.string(),
  numSamples: z.number().int().min(1),
  feedback: z.array(expertFeedbackSchema),
  evalAccuracy: finite,
  evalLoss: finite,
  evalSamples: count,
  trainLoss: finite,
});

/** Edges -> leader. */
export const upMessageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("partial"),
    epoch: z.number().int(),
    round: z.number().int(),
    edge: z.string(),
    /** The per-client part the fitness matrix and the metrics need (weights are in the blob). */
    reports: z.array(reportSchema),
    meta: z.object({
      backboneWeight: finite,
      experts: z.array(z.object({ expert: count, weight: finite })),
    }),
    /** Blob hash of the partial's frame. */
    blob: z.string(),
  }),
  z.object({ type: z.literal("ready"), edge: z.string() }),
]);
export type UpMessage = z.infer<typeof upMessageSchema>;
export type PartialMessage = Extract<UpMessage, { type: "partial" }>;

/** A ready client's entry in the ready hash. */
export const readyEntrySchema = z.object({ edge: z.string(), capacity: z.number().int().min(1) });

/** The run key: which run the leader leads and how many rounds it applied. */
export const runInfoSchema = z.object({ runId: z.string(), round: z.number().int().min(0) });

/**
 * Inbound payload schemas. Types are derived from them (z.infer) so the two cannot drift.
 * Everything a client sends is `unknown` until one of these has parsed it; semantic checks
 * (round id, assignment, tensor manifest) follow in the coordinator against its state.
 */
import { z } from "zod";
import { STRATEGY_NAMES } from "../assignment/registry.ts";

/** Upper bound on experts any coordinator runs; capacities and expert ids are checked against the live E. */
export const MAX_EXPERTS = 64;

const finite = z.number().finite();
const nonNegInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** Binary frames arrive as Buffer (Node, a Uint8Array) or ArrayBuffer (browser). */
export const binarySchema = z.custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, {
  message: "expected a binary frame",
});

export const backendSchema = z.enum(["webgpu", "webgl", "wasm", "cpu"]);
export type BackendName = z.infer<typeof backendSchema>;

export const joinRequestSchema = z
  .object({
    protocol: z.number().int(),
    /** Identity from an earlier join: rejoin keeps the client id, shard and fitness row. */
    token: z
      .string()
      .min(16)
      .max(128)
      .regex(/^[A-Za-z0-9_-]+$/)
      .optional(),
    capacity: z.number().int().min(1).max(MAX_EXPERTS),
    backend: backendSchema,
    /** Free text for the dashboard, trimmed. */
    label: z.string().max(64).optional(),
  })
  .strict();
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export const readyRequestSchema = z.object({ ready: z.boolean() }).strict();
export type ReadyRequest = z.infer<typeof readyRequestSchema>;

export const expertFeedbackSchema = z
  .object({
    expert: z
      .number()
      .int()
      .min(0)
      .max(MAX_EXPERTS - 1),
    usage: nonNegInt,
    mass: z.number().finite().nonnegative().optional(),
    accuracy: finite,
    loss: finite,
  })
  .strict();

export const updateMetaSchema = z
  .object({
    round: z.number().int().min(1),
    /** Training samples used this round (weights the backbone average). */
    numSamples: z.number().int().min(1).max(10_000_000),
    feedback: z.array(expertFeedbackSchema).max(MAX_EXPERTS),
    /** Personalized model on the held-out split, measured before local training. */
    evalAccuracy: finite,
    evalLoss: finite,
    evalSamples: z.number().int().min(0).max(10_000_000),
    trainLoss: finite,
    trainMs: z.number().finite().nonnegative(),
  })
  .strict();
export type UpdateMeta = z.infer<typeof updateMetaSchema>;

export const updateSubmitSchema = z.object({ meta: updateMetaSchema, weights: binarySchema }).strict();
export type UpdateSubmit = z.infer<typeof updateSubmitSchema>;

/** Strategies an admin may switch to at run time (same names as the assignment module). */
export const strategySchema = z.enum(STRATEGY_NAMES);

/**
 * `POST /api/admin` body (the dashboard and `flexmoe admin` send it; the token travels in
 * `Authorization: Bearer <token>`). `value` is required by set-strategy and set-rounds only.
 */
export const adminCommandSchema = z.discriminatedUnion("action", [
  z.object({ action: z.literal("start") }).strict(),
  z.object({ action: z.literal("pause") }).strict(),
  z.object({ action: z.literal("reset") }).strict(),
  z.object({ action: z.literal("set-strategy"), value: strategySchema }).strict(),
  z.object({ action: z.literal("set-rounds"), value: z.number().int().min(0).max(1_000_000) }).strict(),
]);
export type AdminCommand = z.infer<typeof adminCommandSchema>;
export type AdminAction = AdminCommand["action"];

/**
 * Socket handlers, one factory per event group. Every payload is parsed by a core schema
 * before anything else; failures become typed acks, never exceptions.
 */
import {
  ErrorCode,
  joinRequestSchema,
  PROTOCOL_VERSION,
  protocolError,
  readyRequestSchema,
  toBytes,
  updateSubmitSchema,
  type AckResult,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SocketData,
} from "@flexmoe/core";
import type { Socket } from "socket.io";
import type { z } from "zod";
import type { Federation } from "../federation.ts";
import type { RejectStats, TokenBucket } from "../guard.ts";
import type { Logger } from "../logger.ts";

export type FlexSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

type Ack<T> = (res: AckResult<T>) => void;

export const clientRoom = (clientId: string): string => `client:${clientId}`;

/** Per-connection defences: a rate limit checked before parsing, and counters of rejections. */
export interface Guard {
  limiter?: Pick<TokenBucket, "take">;
  /**
   * New registrations (client:join without a token) from this connection's address, shared by all
   * its connections. Rejoins with a token are not charged: they add nothing to the registry, and a
   * whole class reconnects at once after a coordinator restart.
   */
  joinLimiter?: Pick<TokenBucket, "take">;
  stats?: RejectStats;
}

/** The first schema issue as "path: message" (`root` names an issue at the top level). */
export function issueText(error: z.ZodError, root: string): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join(".") || root}: ${issue.message}` : "invalid";
}

/**
 * Rate-limit, parse with `schema`, run `handler`, answer through the ack. A missing ack is tolerated
 * (the work still happens); a thrown error becomes INTERNAL and is logged, not sent.
 */
export function withValidation<S extends z.ZodType, T>(
  schema: S,
  log: Logger,
  event: string,
  handler: (payload: z.infer<S>) => AckResult<T>,
  guard: Guard = {},
): (payload: unknown, ack?: unknown) => void {
  return (payload, ack) => {
    const reply: Ack<T> = typeof ack === "function" ? (ack as Ack<T>) : () => {};
    let res: AckResult<T>;
    const parsed = guard.limiter && !guard.limiter.take() ? null : schema.safeParse(payload);
    if (parsed === null) {
      res = protocolError(ErrorCode.RATE_LIMITED, `${event}: too many requests from this connection or address; slow down`);
    } else if (!parsed.success) {
      res = protocolError(ErrorCode.INVALID_PAYLOAD, `${event}: ${issueText(parsed.error, "payload")}`);
    } else {
      try {
        res = handler(parsed.data);
      } catch (e) {
        log.error({ err: e, event }, "handler failed");
        res = protocolError(ErrorCode.INTERNAL, "internal error");
      }
    }
    if (!res.ok) {
      guard.stats?.rejected(res.error.code);
      log.warn({ event, code: res.error.code, msg: res.error.message }, "rejected");
    }
    reply(res);
  };
}

export function createClientHandlers(deps: { federation: Federation; socket: FlexSocket; log: Logger; guard?: Guard }) {
  const { federation, socket, log } = deps;
  const guard = deps.guard ?? {};
  const joined = (): string | null => socket.data.clientId ?? null;

  return {
    join: withValidation(
      joinRequestSchema,
      log,
      "client:join",
      (req) => {
        if (req.protocol !== PROTOCOL_VERSION)
          return protocolError(
            ErrorCode.UNSUPPORTED_PROTOCOL,
            `protocol ${req.protocol} not supported (server speaks ${PROTOCOL_VERSION})`,
          );
        if (joined()) return protocolError(ErrorCode.INVALID_PAYLOAD, "already joined on this connection");
        if (req.token === undefined && guard.joinLimiter && !guard.joinLimiter.take())
          return protocolError(ErrorCode.RATE_LIMITED, "client:join: too many new clients from this address; slow down");
        const res = federation.join(req, socket.id);
        if (res.ok) {
          socket.data.clientId = res.value.clientId;
          // One room per client id: the federation addresses clients, not sockets (O(1) per send).
          void socket.join(clientRoom(res.value.clientId));
          socket.data.backend = req.backend;
        }
        return res;
      },
      guard,
    ),
    ready: withValidation(
      readyRequestSchema,
      log,
      "client:ready",
      (req) => {
        const id = joined();
        if (!id) return protocolError(ErrorCode.NOT_JOINED, "join first");
        if (!federation.setReady(id, req.ready, socket.id))
          return protocolError(ErrorCode.NOT_JOINED, "this connection was superseded by a newer one of the same client");
        return { ok: true, value: { ready: req.ready } };
      },
      guard,
    ),
    submit: withValidation(
      updateSubmitSchema,
      log,
      "update:submit",
      (req) => {
        const id = joined();
        if (!id) return protocolError(ErrorCode.NOT_JOINED, "join first");
        return federation.submit(id, req.meta, toBytes(req.weights), socket.id);
      },
      guard,
    ),
    disconnect: () => {
      const id = joined();
      if (id) federation.leave(id, socket.id);
    },
  };
}

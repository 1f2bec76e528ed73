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
  type JoinInfo,
  type JoinRequest,
  type UpdateMeta,
  type ServerToClientEvents,
  type SocketData,
} from "@flexmoe/core";
import type { Socket } from "socket.io";
import type { z } from "zod";
import type { RejectStats, TokenBucket } from "../guard.ts";
import type { Logger } from "../logger.ts";

export type FlexSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

type Ack<T> = (res: AckResult<T>) => void;
type MaybeAsync<T> = T | Promise<T>;

/**
 * What the handlers drive: the one-process Federation, or a cluster edge (whose joins and readiness
 * go through Redis, hence the promises).
 */
export interface ClientEndpoint {
  join(req: JoinRequest, session?: string): MaybeAsync<AckResult<JoinInfo>>;
  setReady(clientId: string, ready: boolean, session?: string): MaybeAsync<boolean>;
  submit(clientId: string, meta: UpdateMeta, frame: Uint8Array, session?: string): MaybeAsync<AckResult<{ round: number }>>;
  leave(clientId: string, session?: string): void;
}

const isPromise = <T>(v: MaybeAsync<T>): v is Promise<T> => typeof (v as { then?: unknown } | null)?.then === "function";

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
  handler: (payload: z.infer<S>) => MaybeAsync<AckResult<T>>,
  guard: Guard = {},
): (payload: unknown, ack?: unknown) => void {
  return (payload, ack) => {
    const reply: Ack<T> = typeof ack === "function" ? (ack as Ack<T>) : () => {};
    const answer = (res: AckResult<T>): void => {
      if (!res.ok) {
        guard.stats?.rejected(res.error.code);
        log.warn({ event, code: res.error.code, msg: res.error.message }, "rejected");
      }
      reply(res);
    };
    const failed = (e: unknown): AckResult<T> => {
      log.error({ err: e, event }, "handler failed");
      return protocolError(ErrorCode.INTERNAL, "internal error");
    };
    let res: MaybeAsync<AckResult<T>>;
    const parsed = guard.limiter && !guard.limiter.take() ? null : schema.safeParse(payload);
    if (parsed === null) {
      res = protocolError(ErrorCode.RATE_LIMITED, `${event}: too many requests from this connection or address; slow down`);
    } else if (!parsed.success) {
      res = protocolError(ErrorCode.INVALID_PAYLOAD, `${event}: ${issueText(parsed.error, "payload")}`);
    } else {
      try {
        res = handler(parsed.data);
      } catch (e) {
        res = failed(e);
      }
    }
    if (isPromise(res)) res.then(answer, (e: unknown) => answer(failed(e)));
    else answer(res);
  };
}

export function createClientHandlers(deps: { federation: ClientEndpoint; socket: FlexSocket; log: Logger; guard?: Guard }) {
  const { federation, socket, log } = deps;
  const guard = deps.guard ?? {};
  const joined = (): string | null => socket.data.clientId ?? null;
  // A join in flight (an edge's goes through Redis): a second one on the same connection is refused.
  let joining = false;

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
        if (joined() || joining) return protocolError(ErrorCode.INVALID_PAYLOAD, "already joined on this connection");
        if (req.token === undefined && guard.joinLimiter && !guard.joinLimiter.take())
          return protocolError(ErrorCode.RATE_LIMITED, "client:join: too many new clients from this address; slow down");
        const done = (res: AckResult<JoinInfo>): AckResult<JoinInfo> => {
          joining = false;
          if (res.ok) {
            socket.data.clientId = res.value.clientId;
            // One room per client id: the federation addresses clients, not sockets (O(1) per send).
            void socket.join(clientRoom(res.value.clientId));
            socket.data.backend = req.backend;
          }
          return res;
        };
        joining = true;
        const res = federation.join(req, socket.id);
        if (!isPromise(res)) return done(res);
        return res.then(done, (e: unknown) => {
          joining = false;
          throw e;
        });
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
        const answer = (ok: boolean): AckResult<{ ready: boolean }> =>
          ok
            ? { ok: true, value: { ready: req.ready } }
            : protocolError(ErrorCode.NOT_JOINED, "this connection was superseded by a newer one of the same client");
        const res = federation.setReady(id, req.ready, socket.id);
        return isPromise(res) ? res.then(answer) : answer(res);
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

/**
 * `createApp(deps)`: Express for the page and the JSON API, Socket.IO for the protocol.
 * Only main/serve read the environment; everything here comes in through deps.
 */
import { existsSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import { Server } from "socket.io";
import {
  ErrorCode,
  fullModelParams,
  type ClientToServerEvents,
  type ErrorCode as Code,
  type ServerToClientEvents,
  type SocketData,
} from "@flexmoe/core";
import { modelLayout, modelSpec } from "@flexmoe/model/spec";
import { viewOf, type ClientRecord, type PersistedClient } from "./clients.ts";
import type { Clock } from "./clock.ts";
import type { ResolvedConfig } from "./config.ts";
import type { ShardStore } from "./data/shards.ts";
import { Federation, type FederationState, type RoundRecord, type RunSnapshot } from "./federation.ts";
import {
  boundedParser,
  CLIENT_EVENTS,
  ConnectionCounter,
  DEFAULT_NET_LIMITS,
  KeyedBuckets,
  originPolicy,
  RejectStats,
  addressOf,
  enforceConnectionCap,
  TokenBucket,
  type NetLimits,
  type RejectedCounts,
} from "./guard.ts";
import { clientRoom, createClientHandlers, type FlexSocket } from "./handlers/client.handlers.ts";
import { createAdminHandler } from "./handlers/admin.handlers.ts";
import { DashboardHub } from "./dashboard/hub.ts";
import { staticPage } from "./static.ts";
import { listedClients } from "./dashboard/state.ts";
import { modelJson, roundsCsv, weightsBin } from "./export.ts";
import type { Logger } from "./logger.ts";

export interface AppDeps {
  config: ResolvedConfig;
  clock: Clock;
  logger: Logger;
  shards: ShardStore;
  newToken: () => string;
  /** Built web client (index.html + assets); served when it exists. */
  webRoot?: string;
  initial?: FederationState;
  onRoundClosed?: (record: RoundRecord, run: RunSnapshot) => void;
  /** Client registry restored from the store (tokens survive a restart). */
  initialClients?: readonly PersistedClient[];
  onClientChanged?: (client: ClientRecord) => void;
  onReset?: (run: RunSnapshot) => void;
  /** Bearer token for `POST /api/admin`; without one the admin endpoint answers UNAUTHORIZED. */
  adminToken?: string;
  /** Join URLs for the dashboard's QR code (the first is encoded); read on every push. */
  joinUrls?: () => readonly string[];
  /** Serve over TLS (PEM strings): the page, the API and Socket.IO. */
  tls?: { key: string; cert: string };
  /** Network bounds (per address, parser); defaults in guard.ts. */
  limits?: Partial<NetLimits>;
  /**
   * Origins (or URLs) a browser page may connect from, besides loopback ones (any port): the join
   * URLs and `--allow-origin`. Read on every check. Requests without an Origin header are allowed.
   */
  allowedOrigins?: () => readonly string[];
}

export interface App {
  http: HttpServer | HttpsServer;
  dashboard: DashboardHub;
  io: Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
  federation: Federation;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

/** A client's shard (404 UNKNOWN_TOKEN for a token no one issued), the same in serve and on an edge. */
export function sendShard(req: Request, res: Response, shards: ShardStore, shard: number | undefined): void {
  if (shard === undefined) {
    res.status(404).json({ error: { code: "UNKNOWN_TOKEN", message: "unknown token" } });
    return;
  }
  // Gzipped where the client takes it (every browser does): a phone on a slow link waits on this.
  res.type("application/octet-stream").vary("Accept-Encoding");
  const gz = req.acceptsEncodings("gzip") === "gzip" ? shards.gzipped(shard) : null;
  if (gz) res.set("Content-Encoding", "gzip").send(Buffer.from(gz));
  else res.send(Buffer.from(shards.bytes(shard)));
}

export function createApp(deps: AppDeps): App {
  const log = deps.logger;
  const web = express();
  const http = deps.tls ? createHttpsServer({ key: deps.tls.key, cert: deps.tls.cert }, web) : createServer(web);
  const limits: NetLimits = { ...DEFAULT_NET_LIMITS, ...deps.limits };
  const originAllowed = originPolicy(deps.allowedOrigins ?? (() => []));
  const connections = new ConnectionCounter(limits.connectionsPerIp);
  const joinsPerIp = new KeyedBuckets(limits.joinBurstPerIp, limits.joinPerSecPerIp, deps.clock);
  // Weight frames are binary: allow one full model in float32 plus headroom, nothing more.
  const io = new Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>(http, {
    maxHttpBufferSize: maxFrameBytes(deps.config.preset, deps.config.experts),
    serveClient: false,
    parser: boundedParser(limits, deps.clock),
    // Handshakes only (engine.io's verify): a page on another origin, or one address over its cap, is refused.
    allowRequest: (req, done) => {
      if (!originAllowed(req.headers.origin)) {
        log.warn({ origin: String(req.headers.origin).slice(0, 200) }, "socket from a foreign origin refused (see --allow-origin)");
        done("origin not allowed", false);
      } else if (connections.full(addressOf(req.socket.remoteAddress))) done("too many connections from this address", false);
      else done(null, true);
    },
  });
  enforceConnectionCap(io.engine, connections);

  const federation: Federation = new Federation({
    config: deps.config,
    clock: deps.clock,
    logger: log,
    newToken: deps.newToken,
    shardUrl: (token) => `/api/shard/${token}`,
    shardSizes: (shard) => deps.shards.sizes(shard),
    send: (clientId, start) => {
      io.to(clientRoom(clientId)).emit("round:started", start);
      dashboard.changed();
    },
    broadcast: (summary) => {
      io.emit("round:closed", summary);
      dashboard.changed();
    },
    endSession: (session, end) => {
      const socket = io.sockets.sockets.get(session);
      if (!socket) return;
      socket.emit("session:ended", end);
      // Its later events and its drop no longer count (the federation checks the session); close it.
      socket.disconnect(true);
    },
    ...(deps.initial ? { initial: deps.initial } : {}),
    ...(deps.onRoundClosed ? { onRoundClosed: deps.onRoundClosed } : {}),
    ...(deps.initialClients ? { initialClients: deps.initialClients } : {}),
    ...(deps.onClientChanged ? { onClientChanged: deps.onClientChanged } : {}),
    ...(deps.onReset ? { onReset: deps.onReset } : {}),
  });
  const rejected = new RejectStats();

  const dashboard = new DashboardHub(
    io as unknown as Server,
    federation,
    deps.clock,
    deps.joinUrls ?? (() => []),
    log.child({ module: "dashboard" }),
  );

  io.on("connection", (socket: FlexSocket) => {
    const socketLog = log.child({ socket: socket.id });
    socket.on("disconnect", () => dashboard.changed());
    socket.onAny((event: unknown) => {
      // Any request (join, ready, update) or a drop may change what the dashboard shows; pushes are coalesced.
      dashboard.changed();
      // Events outside the protocol are ignored (no handler answers them) and counted.
      if (typeof event === "string" && CLIENT_EVENTS.has(event)) return;
      rejected.unknownEvent();
      socketLog.debug({ event: String(event).slice(0, 64) }, "unknown event ignored");
    });
    const limiter = new TokenBucket(deps.config.rateLimit.burst, deps.config.rateLimit.perSec, deps.clock);
    const ip = addressOf(socket.handshake.address);
    const joinLimiter = { take: () => joinsPerIp.take(ip) };
    const h = createClientHandlers({ federation, socket, log: socketLog, guard: { limiter, joinLimiter, stats: rejected } });
    socket.on("client:join", h.join);
    socket.on("client:ready", h.ready);
    socket.on("update:submit", h.submit);
    socket.on("disconnect", h.disconnect);
    socket.on("error", (err) => log.warn({ err, socket: socket.id }, "socket error"));
  });
  io.engine.on("connection_error", (err: { code: number; message: string }) =>
    log.warn({ code: err.code, msg: err.message }, "engine connection error"),
  );

  web.disable("x-powered-by");
  // A page on another origin gets nothing from the API (the page's own requests carry no Origin or an allowed one).
  web.use("/api", (req, res, next) => {
    if (originAllowed(req.get("origin"))) return next();
    sendError(res, 403, ErrorCode.UNAUTHORIZED, "origin not allowed");
  });
  web.get("/api/status", (_req, res) => {
    res.json(statusOf(federation, rejected.snapshot()));
  });
  web.post(
    "/api/admin",
    express.json({ limit: "4kb" }),
    createAdminHandler({
      federation,
      adminToken: deps.adminToken,
      log: log.child({ module: "admin" }),
      changed: () => dashboard.changed(),
    }),
  );
  web.get("/api/export/model.json", (_req, res) => {
    res.attachment("model.json").json(modelJson(federation));
  });
  web.get("/api/export/weights.bin", (_req, res) => {
    res.attachment("weights.bin").type("application/octet-stream").send(weightsBin(federation));
  });
  web.get("/api/export/rounds.csv", (_req, res) => {
    res.attachment("rounds.csv").type("text/csv").send(roundsCsv(federation));
  });
  web.get("/api/shard/:token", (req, res) => sendShard(req, res, deps.shards, federation.shardOf(req.params.token)));
  web.use("/api", (req, res) => sendError(res, 404, ErrorCode.INVALID_PAYLOAD, `${req.method} ${req.path}: no such API route`));
  if (deps.webRoot && existsSync(path.join(deps.webRoot, "index.html"))) {
    web.use(staticPage(deps.webRoot));
  } else {
    web.get("/", (_req, res) => {
      res.type("text/plain").send("FLEX-MoE coordinator is running, but the web client is not built: run `npm run build`.\n");
    });
  }

  web.use((req, res) => sendError(res, 404, ErrorCode.INVALID_PAYLOAD, `${req.method} ${req.path}: not found`));
  // Last: every error answers JSON, never Express's HTML page with a stack trace and absolute paths.
  web.use((e: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(e);
    const status = httpStatusOf(e);
    if (status === 413) return sendError(res, 413, ErrorCode.TOO_LARGE, "request body too large");
    if (status >= 400 && status < 500) {
      const why = (e as { type?: unknown }).type === "entity.parse.failed" ? "body is not valid JSON" : "bad request";
      return sendError(res, 400, ErrorCode.INVALID_PAYLOAD, why);
    }
    log.error({ err: e, path: req.path }, "request failed");
    sendError(res, 500, ErrorCode.INTERNAL, "internal error");
  });

  return {
    http,
    io,
    federation,
    dashboard,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(port, host, () => resolve((http.address() as AddressInfo).port));
      }),
    close: async () => {
      federation.close();
      dashboard.close();
      await io.close();
      if (http.listening) await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

function sendError(res: Response, status: number, code: Code, message: string): void {
  res.status(status).json({ ok: false, error: { code, message } });
}

function httpStatusOf(e: unknown): number {
  const s = (e as { status?: unknown; statusCode?: unknown } | null)?.status ?? (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === "number" && Number.isInteger(s) ? s : 500;
}

/** One full model in float32 plus 25% and 1 MiB of headroom for the frame header and metadata. */
export function maxFrameBytes(preset: "cnn" | "dense", experts: number): number {
  return Math.ceil(fullModelParams(modelLayout(modelSpec(preset, experts))) * 4 * 1.25) + (1 << 20);
}

/** /api/status lists at most this many clients (online first) and rounds (the latest); the rest is counted. */
export const STATUS_CLIENTS = 200;
export const STATUS_ROUNDS = 100;

export function statusOf(f: Federation, rejected?: RejectedCounts) {
  const s = f.snapshot;
  const all = f.clientList();
  return {
    ...(rejected && { rejected }),
    runId: s.runId,
    round: s.round,
    currentRound: f.currentRound,
    phase: f.phase,
    experts: f.spec.experts,
    totals: {
      clients: all.length,
      online: all.filter((c) => c.online).length,
      ready: all.filter((c) => c.ready).length,
      rounds: s.history.length,
    },
    clients: listedClients(all, STATUS_CLIENTS).map(viewOf),
    deficit: s.deficit,
    history: s.history.slice(-STATUS_ROUNDS).map((h) => ({
      round: h.round,
      participants: h.participants,
      durationMs: h.closedAt - h.startedAt,
      accuracy: h.accuracy,
      loss: h.loss,
      load: h.load,
      cv: h.cv,
      routed: h.routed,
      cvRouted: h.cvRouted,
      cvRoutedCumulative: h.cvRoutedCumulative,
      maxVio: h.maxVio,
      starved: h.starved,
      reason: h.reason,
      // Bounded like the client list; the full log is in /api/export/rounds.csv.
      assigned: Object.fromEntries(Object.entries(typeof h.assigned === "object" && h.assigned ? h.assigned : {}).slice(0, STATUS_CLIENTS)),
    })),
  };
}

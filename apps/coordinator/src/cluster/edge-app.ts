/**
 * `createEdgeApp(deps)`: an edge's Express and Socket.IO, with the one-process coordinator's socket
 * handlers, parser bounds, rate limits and origin policy. WebSocket only, so a plain load balancer
 * needs no sticky sessions; Socket.IO's Redis streams adapter carries the few commands that must
 * reach another edge's socket (ending a superseded connection).
 */
import { existsSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import express from "express";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import type { ClientToServerEvents, DashboardState, ServerToClientEvents, SocketData } from "@flexmoe/core";
import { modelSpec } from "@flexmoe/model/spec";
import type { Redis } from "ioredis";
import { maxFrameBytes, sendShard } from "../app.ts";
import type { TimerHandle } from "../clock.ts";
import type { DashboardNamespace } from "../dashboard/hub.ts";
import { modelJson, roundsCsv, weightsBin, type Exportable } from "../export.ts";
import { restoreCheckpointBytes } from "../store/checkpoint.ts";
import {
  addressOf,
  boundedParser,
  ConnectionCounter,
  enforceConnectionCap,
  KeyedBuckets,
  DEFAULT_NET_LIMITS,
  originPolicy,
  TokenBucket,
  type NetLimits,
} from "../guard.ts";
import { clientRoom, createClientHandlers, type FlexSocket } from "../handlers/client.handlers.ts";
import { staticPage } from "../static.ts";
import { clusterKeys } from "./bus.ts";
import { Edge, type EdgeDeps } from "./edge.ts";

export interface EdgeAppDeps extends Omit<EdgeDeps, "send" | "broadcast" | "endSession"> {
  /** A connection the Socket.IO adapter may use (it duplicates it for its subscriptions). */
  adapterRedis: Redis;
  webRoot?: string;
  limits?: Partial<NetLimits>;
  allowedOrigins?: () => readonly string[];
  /** The URLs volunteers join by (a load balancer's), shown on the dashboard. @default this edge's own */
  joinUrls?: () => readonly string[];
}

/** How often an edge looks for a new dashboard state from the leader (it changes per round). */
export const DASHBOARD_POLL_MS = 1000;

export interface EdgeApp {
  edge: Edge;
  http: HttpServer;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

export function createEdgeApp(deps: EdgeAppDeps): EdgeApp {
  const log = deps.logger;
  const web = express();
  const http = createServer(web);
  const limits: NetLimits = { ...DEFAULT_NET_LIMITS, ...deps.limits };
  const originAllowed = originPolicy(deps.allowedOrigins ?? (() => []));
  const connections = new ConnectionCounter(limits.connectionsPerIp);
  const joinsPerIp = new KeyedBuckets(limits.joinBurstPerIp, limits.joinPerSecPerIp, deps.clock);
  const io = new Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>(http, {
    transports: ["websocket"],
    maxHttpBufferSize: maxFrameBytes(deps.config.preset, deps.config.experts),
    serveClient: false,
    parser: boundedParser(limits, deps.clock),
    adapter: createAdapter(deps.adapterRedis, { streamName: `${deps.prefix}:sio` }),
    allowRequest: (req, done) => {
      if (!originAllowed(req.headers.origin)) done("origin not allowed", false);
      else if (connections.full(addressOf(req.socket.remoteAddress))) done("too many connections from this address", false);
      else done(null, true);
    },
  });
  enforceConnectionCap(io.engine, connections);
  const edge = new Edge({
    ...deps,
    // Local only: every edge hears the leader and addresses its own sockets.
    send: (clientId, start) => io.local.to(clientRoom(clientId)).emit("round:started", start),
    broadcast: (summary) => io.local.emit("round:closed", summary),
    endSession: (socketId, end) => {
      io.to(socketId).emit("session:ended", end);
      io.in(socketId).disconnectSockets(true);
    },
  });
  io.on("connection", (socket: FlexSocket) => {
    const limiter = new TokenBucket(deps.config.rateLimit.burst, deps.config.rateLimit.perSec, deps.clock);
    const ip = addressOf(socket.handshake.address);
    const joinLimiter = { take: () => joinsPerIp.take(ip) };
    const h = createClientHandlers({ federation: edge, socket, log: log.child({ socket: socket.id }), guard: { limiter, joinLimiter } });
    socket.on("client:join", h.join);
    socket.on("client:ready", h.ready);
    socket.on("update:submit", h.submit);
    socket.on("disconnect", h.disconnect);
  });

  // The dashboard, read-only: the leader writes its state to Redis, each edge pushes it to its own
  // dashboards (admin commands need the one-process coordinator; see docs/scale-out.md).
  const keys = clusterKeys(deps.prefix);
  const dashboards = io.of("/dashboard") as unknown as DashboardNamespace;
  let listenUrl = "";
  let dashboardRaw: string | null = null;
  let dashboardPoll: TimerHandle | null = null;
  let closed = false;
  const dashboardState = (raw: string | null): DashboardState | null => {
    if (raw === null) return null;
    try {
      return { ...(JSON.parse(raw) as DashboardState), joinUrls: [...(deps.joinUrls?.() ?? (listenUrl ? [listenUrl] : []))] };
    } catch {
      return null;
    }
  };
  const pollDashboard = async (): Promise<void> => {
    const raw = await deps.redis.get(keys.dashboard);
    if (raw === dashboardRaw) return;
    dashboardRaw = raw;
    const s = dashboardState(raw);
    if (s) dashboards.local.emit("dashboard:state", s);
  };
  const armDashboard = (): void => {
    if (closed) return;
    dashboardPoll = deps.clock.timeout(DASHBOARD_POLL_MS, () => {
      pollDashboard().then(armDashboard, (e: unknown) => {
        log.warn({ err: e }, "dashboard state not read");
        armDashboard();
      });
    });
  };
  // A new dashboard gets the state as it is now (the others get it at the next poll).
  dashboards.on("connection", (socket) => {
    deps.redis.get(keys.dashboard).then(
      (raw) => {
        const s = dashboardState(raw);
        if (s) socket.emit("dashboard:state", s);
      },
      (e: unknown) => log.warn({ err: e }, "dashboard state not read"),
    );
  });

  // Exports from the last checkpoint (what the leader committed); decoded per request (a human clicks it).
  const spec = modelSpec(deps.config.preset, deps.config.experts);
  const lastCheckpoint = async (): Promise<Exportable | null> => {
    const raw = await deps.redis.getBuffer(keys.checkpoint);
    if (!raw) return null;
    const restored = restoreCheckpointBytes(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), deps.config);
    if (!restored.ok) throw new Error(`cluster checkpoint: ${restored.error.message}`);
    return { snapshot: restored.value.initial, spec };
  };
  const exportRoute =
    (send: (f: Exportable, res: express.Response) => void): express.RequestHandler =>
    (_req, res, next) => {
      lastCheckpoint()
        .then((f) => {
          if (f) send(f, res);
          else res.status(404).json({ ok: false, error: { code: "INVALID_PAYLOAD", message: "no checkpoint yet" } });
        })
        .catch(next);
    };

  web.disable("x-powered-by");
  web.use("/api", (req, res, next) => {
    if (originAllowed(req.get("origin"))) return next();
    res.status(403).json({ ok: false, error: { code: "UNAUTHORIZED", message: "origin not allowed" } });
  });
  web.get("/api/status", (_req, res, next) => {
    deps.redis
      .get(keys.status)
      .then((raw) => {
        let cluster: unknown = null;
        try {
          cluster = raw ? JSON.parse(raw) : null;
        } catch {
          cluster = null;
        }
        res.json({ edge: edge.id, clients: edge.clients, currentRound: edge.roundOpen, cluster });
      })
      .catch(next);
  });
  web.get(
    "/api/export/model.json",
    exportRoute((f, res) => res.attachment("model.json").json(modelJson(f))),
  );
  web.get(
    "/api/export/weights.bin",
    exportRoute((f, res) => res.attachment("weights.bin").type("application/octet-stream").send(weightsBin(f))),
  );
  web.get(
    "/api/export/rounds.csv",
    exportRoute((f, res) => res.attachment("rounds.csv").type("text/csv").send(roundsCsv(f))),
  );
  web.get("/api/shard/:token", (req, res, next) => {
    edge
      .shardOf(req.params.token)
      .then((shard) => sendShard(req, res, deps.shards, shard))
      .catch(next);
  });
  if (deps.webRoot && existsSync(path.join(deps.webRoot, "index.html"))) web.use(staticPage(deps.webRoot));
  web.use((req, res) => {
    res.status(404).json({ ok: false, error: { code: "INVALID_PAYLOAD", message: `${req.method} ${req.path}: not found` } });
  });

  return {
    edge,
    http,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(port, host, () => {
          const bound = (http.address() as AddressInfo).port;
          // A wildcard address is not one a browser can open; an IPv6 literal needs brackets.
          const shown = host === undefined || host === "0.0.0.0" || host === "::" ? "localhost" : host.includes(":") ? `[${host}]` : host;
          listenUrl = `http://${shown}:${bound}/`;
          dashboardPoll?.cancel();
          void pollDashboard().catch(() => undefined);
          armDashboard();
          resolve(bound);
        });
      }),
    close: async () => {
      closed = true;
      dashboardPoll?.cancel();
      await edge.stop();
      await io.close();
      if (http.listening) await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

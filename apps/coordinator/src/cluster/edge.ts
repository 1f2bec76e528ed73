/**
 * A cluster edge: holds client connections, validates every update exactly as the one-process
 * coordinator does (core's admitUpdate, the same sample bounds), and folds the admitted ones into a
 * partial (core's PartialAccumulator: the mean streams, nothing is kept per update). At its round's
 * end it stores the partial once as a blob and tells the leader, with the per-client reports the
 * fitness matrix needs. It keeps no durable state: identities and tokens are in Redis, so a client
 * whose edge died rejoins with its token on any other.
 */
import {
  admitUpdate,
  aggregateOptionsOf,
  clientTensors,
  decodeTensors,
  encodePartial,
  encodeTensors,
  ErrorCode,
  PartialAccumulator,
  protocolError,
  splitClientTensors,
  type AckResult,
  type ClientReport,
  type JoinInfo,
  type JoinRequest,
  type ModelLayout,
  type NamedTensor,
  type RoundStart,
  type RoundSummary,
  type SessionEnded,
  type UpdateMeta,
} from "@flexmoe/core";
import { modelLayout, modelSpec, type ModelSpec } from "@flexmoe/model/spec";
import type { Redis } from "ioredis";
import type { Clock, TimerHandle } from "../clock.ts";
import type { ResolvedConfig } from "../config.ts";
import type { ShardStore } from "../data/shards.ts";
import { engineConfigOf, reportOf } from "../federation.ts";
import type { ClientEndpoint } from "../handlers/client.handlers.ts";
import type { Logger } from "../logger.ts";
import { Bus, StreamReader } from "./bus.ts";
import { ctlMessageSchema, runInfoSchema, type CtlMessage, type RoundOpen } from "./messages.ts";

export interface EdgeDeps {
  id: string;
  /** The leader's config, as it wrote it to Redis. */
  config: ResolvedConfig;
  clock: Clock;
  logger: Logger;
  redis: Redis;
  /** For the blocking read of the control stream (closed by stop()). */
  blocking: Redis;
  prefix: string;
  shards: ShardStore;
  newToken: () => string;
  send: (clientId: string, start: RoundStart) => void;
  broadcast: (summary: RoundSummary) => void;
  /** Ends a connection on any edge (Socket.IO's Redis adapter carries it to the edge that holds it). */
  endSession: (socketId: string, end: SessionEnded) => void;
  /** Heartbeat period; the key expires after three. @default 1000 */
  heartbeatMs?: number;
}

interface LocalClient {
  session: string;
  capacity: number;
  shard: number;
  ready: boolean;
  /** Its current token was used on this connection (recorded in Redis once). */
  confirmed: boolean;
}

interface LocalRound {
  msg: RoundOpen;
  backbone: NamedTensor[];
  experts: NamedTensor[][];
  acc: PartialAccumulator;
  awaiting: Set<string>;
  answered: Set<string>;
  reports: ClientReport[];
  timer: TimerHandle;
  flushed: boolean;
}

/** Removes the ready entry and the session only while they are this connection's (a rejoin elsewhere wins). */
/**
 * Rotation with reuse detection, as the one-process registry does it (docs/protocol.md "Identity"):
 * the presented token becomes the previous one and a new one is current; a previous token presented
 * after its successor was used revokes the identity (both tokens go). Answers {"unknown"},
 * {"joined", id, shard} or {"reused", id}. KEYS[1] the token hash; ARGV prefix, token, new token,
 * the identity's expiry in ms (0 = none). A token of an expired identity is unknown (and dropped).
 */
const ROTATE = `
local id = redis.call('HGET', KEYS[1], ARGV[2])
if not id then return {'unknown'} end
local k = ARGV[1] .. ':ident:' .. id
if redis.call('EXISTS', k) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  return {'unknown'}
end
local cur = redis.call('HGET', k, 'token')
local prev = redis.call('HGET', k, 'prev')
local confirmed = redis.call('HGET', k, 'confirmed')
if ARGV[2] == prev and confirmed == '1' then
  redis.call('HDEL', KEYS[1], cur, prev)
  redis.call('HSET', k, 'token', ARGV[3], 'prev', '', 'confirmed', '0')
  return {'reused', id}
end
if prev and prev ~= '' and prev ~= ARGV[2] then redis.call('HDEL', KEYS[1], prev) end
if cur and cur ~= ARGV[2] then redis.call('HDEL', KEYS[1], cur) end
redis.call('HSET', KEYS[1], ARGV[3], id)
redis.call('HSET', k, 'token', ARGV[3], 'prev', ARGV[2], 'confirmed', '0')
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', k, ARGV[4]) end
return {'joined', id, redis.call('HGET', k, 'shard')}
`;

const CONFIRM = `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'confirmed', '1') end return 1`;

const LEAVE = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) redis.call('HDEL', KEYS[2], ARGV[1]) return 1 else return 0 end`;

export class Edge implements ClientEndpoint {
  readonly spec: ModelSpec;
  readonly layout: ModelLayout;
  private readonly bus: Bus;
  private readonly log: Logger;
  private readonly local = new Map<string, LocalClient>();
  private live: LocalRound | null = null;
  private epoch = 0;
  private run = { runId: "", round: 0 };
  private reader: StreamReader<typeof ctlMessageSchema> | null = null;
  private beat: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  private lastTouch = 0;

  constructor(private readonly deps: EdgeDeps) {
    this.bus = new Bus(deps.redis, deps.prefix);
    this.log = deps.logger.child({ module: "edge", edge: deps.id });
    this.spec = modelSpec(deps.config.preset, deps.config.experts);
    this.layout = modelLayout(this.spec);
  }

  get id(): string {
    return this.deps.id;
  }
  get clients(): number {
    return this.local.size;
  }
  get roundOpen(): number | null {
    return this.live && !this.live.flushed ? this.live.msg.plan.round : null;
  }

  async start(): Promise<void> {
    const k = this.bus.keys;
    const hb = this.deps.heartbeatMs ?? 1000;
    await this.heartbeat(hb);
    this.beat = setInterval(() => void this.heartbeat(hb).catch(() => undefined), hb);
    this.beat.unref?.();
    // After a Redis restart, say again who is connected and ready here.
    this.deps.redis.on("ready", () => void this.reassert().catch((e: unknown) => this.log.warn({ err: e }, "reassert failed")));
    const after = await this.bus.lastId(k.ctl);
    await this.readRun();
    const open = await this.deps.redis.get(k.open);
    if (open) {
      const m = ctlMessageSchema.safeParse(JSON.parse(open));
      if (m.success) await this.onCtl(m.data);
    }
    this.reader = new StreamReader(
      this.deps.blocking,
      k.ctl,
      after,
      ctlMessageSchema,
      (m) => this.onCtl(m),
      (why) => this.log.warn({ why }, "control entry skipped"),
    );
    this.log.info({ epoch: this.epoch, round: this.run.round }, "edge ready");
  }

  private async heartbeat(periodMs: number): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.redis.set(this.bus.keys.edge(this.deps.id), String(now), "PX", 3 * periodMs);
    // A connected client is never pruned (as in serve): its identity's expiry is pushed back well
    // before it runs out, and counts down from its leave (or from this edge's death).
    const ttl = this.deps.config.pruneAfterMs;
    if (ttl > 0 && this.local.size > 0 && now - this.lastTouch >= Math.min(60_000, ttl / 3)) {
      this.lastTouch = now;
      const p = this.deps.redis.pipeline();
      for (const id of this.local.keys()) p.pexpire(this.bus.keys.ident(id), ttl);
      await p.exec();
    }
  }

  private async readRun(): Promise<void> {
    const raw = await this.deps.redis.get(this.bus.keys.run);
    const parsed = raw ? runInfoSchema.safeParse(JSON.parse(raw)) : null;
    if (parsed?.success) this.run = parsed.data;
  }

  private async reassert(): Promise<void> {
    const k = this.bus.keys;
    for (const [id, c] of this.local) {
      await this.deps.redis.hset(k.session, id, `${this.deps.id} ${c.session}`);
      if (c.ready) await this.deps.redis.hset(k.ready, id, JSON.stringify({ edge: this.deps.id, capacity: c.capacity }));
    }
  }

  // --- the client endpoint (the socket handlers call these) ---

  async join(req: JoinRequest, session = ""): Promise<AckResult<JoinInfo>> {
    const k = this.bus.keys;
    const r = this.deps.redis;
    const capacity = Math.min(req.capacity, this.deps.config.maxCapacity);
    const token = this.deps.newToken();
    let id: string;
    let shard: number;
    if (req.token !== undefined) {
      // One script: two concurrent rejoins with one token cannot both rotate it.
      const res = (await r.eval(ROTATE, 1, k.tokens, this.deps.prefix, req.token, token, this.deps.config.pruneAfterMs)) as [
        string,
        string?,
        string?,
      ];
      if (res[0] === "unknown")
        return protocolError(ErrorCode.UNKNOWN_TOKEN, "token not issued by this cluster (or forgotten); join without one");
      id = res[1] as string;
      if (res[0] === "reused") {
        this.log.warn({ client: id }, "a replaced token was presented after its successor was used: token copied; client revoked");
        const live = await r.hget(k.session, id);
        if (live !== null)
          this.deps.endSession(live.split(" ")[1] ?? "", { reason: "revoked", message: "this identity's token was used from two places" });
        await r.hdel(k.session, id);
        await r.hdel(k.ready, id);
        this.local.delete(id);
        return protocolError(
          ErrorCode.TOKEN_REUSED,
          "this token was replaced and its successor is in use; identity revoked, join without a token",
        );
      }
      shard = Number(res[2]);
    } else {
      const n = await r.incr(k.seq);
      id = `c${n}`;
      shard = (n - 1) % this.deps.config.shards;
      await r.hset(k.ident(id), "token", token, "prev", "", "confirmed", "0", "shard", String(shard));
      await this.touch(id);
      await r.hset(k.tokens, token, id);
    }
    const mine = `${this.deps.id} ${session}`;
    const before = await r.hget(k.session, id);
    await r.hset(k.session, id, mine);
    if (before !== null && before !== mine) {
      const old = before.split(" ")[1] ?? "";
      this.log.info({ client: id, old: before }, "rejoined on a new connection; the old one is superseded");
      this.deps.endSession(old, { reason: "superseded", message: "this client joined on another connection" });
    }
    this.local.set(id, { session, capacity, shard: Number.isInteger(shard) ? shard : 0, ready: false, confirmed: false });
    await this.readRun();
    this.log.info({ client: id, capacity, backend: req.backend, new: req.token === undefined }, "client joined");
    return {
      ok: true,
      value: {
        clientId: id,
        token,
        capacity,
        experts: this.deps.config.experts,
        preset: this.spec.preset,
        numClasses: this.spec.numClasses,
        shardUrl: `/api/shard/${token}`,
        runId: this.run.runId,
        round: this.run.round,
      },
    };
  }

  /**
   * Starts (at join and leave) the --prune-after countdown of an identity: its Redis hash expires
   * and the leader then drops its token entries and Q row; while connected, heartbeat() keeps
   * pushing it back. 0 keeps identities forever.
   */
  private async touch(clientId: string): Promise<void> {
    const ttl = this.deps.config.pruneAfterMs;
    if (ttl > 0) await this.deps.redis.pexpire(this.bus.keys.ident(clientId), ttl);
  }

  /** Shard of a token's client (any edge's token), or undefined. */
  async shardOf(token: string): Promise<number | undefined> {
    const id = await this.deps.redis.hget(this.bus.keys.tokens, token);
    if (id === null) return undefined;
    const s = Number(await this.deps.redis.hget(this.bus.keys.ident(id), "shard"));
    return Number.isInteger(s) && s >= 0 && s < this.deps.shards.count ? s : undefined;
  }

  async setReady(clientId: string, ready: boolean, session?: string): Promise<boolean> {
    const c = this.local.get(clientId);
    if (!c || (session !== undefined && c.session !== session)) return false;
    c.ready = ready;
    const k = this.bus.keys;
    await this.confirm(clientId, c);
    if (ready) {
      await this.deps.redis.hset(k.ready, clientId, JSON.stringify({ edge: this.deps.id, capacity: c.capacity }));
      await this.bus.publish(k.up, { type: "ready", edge: this.deps.id });
    } else await this.deps.redis.hdel(k.ready, clientId);
    return true;
  }

  /** The token this connection received is in use: from now on its predecessor coming back is a copy. */
  private async confirm(clientId: string, c: LocalClient): Promise<void> {
    if (c.confirmed) return;
    c.confirmed = true;
    // Only on a live identity: an expired one must stay gone, not come back as a stub.
    await this.deps.redis.eval(CONFIRM, 1, this.bus.keys.ident(clientId));
  }

  leave(clientId: string, session?: string): void {
    const c = this.local.get(clientId);
    if (!c || (session !== undefined && c.session !== session)) return;
    this.local.delete(clientId);
    const k = this.bus.keys;
    void this.deps.redis
      .eval(LEAVE, 2, k.session, k.ready, clientId, `${this.deps.id} ${c.session}`)
      .catch((e: unknown) => this.log.warn({ err: e }, "leave not recorded"));
    void this.touch(clientId).catch((e: unknown) => this.log.warn({ err: e }, "identity expiry not set"));
    this.log.info({ client: clientId }, "client left");
    const live = this.live;
    if (live && !live.flushed && live.awaiting.delete(clientId) && live.awaiting.size === 0) void this.flush(live);
  }

  submit(clientId: string, meta: UpdateMeta, frame: Uint8Array, session?: string): AckResult<{ round: number }> {
    const c = this.local.get(clientId);
    if (!c || (session !== undefined && c.session !== session))
      return protocolError(ErrorCode.NOT_JOINED, "this connection was superseded by a newer one of the same client");
    void this.confirm(clientId, c).catch((e: unknown) => this.log.warn({ err: e }, "token confirmation not recorded"));
    const live = this.live;
    const plan = live?.msg.plan;
    if (!live || !plan || live.flushed || meta.round !== plan.round)
      return protocolError(
        ErrorCode.STALE_ROUND,
        `round ${meta.round} is not open here (open: ${live && !live.flushed ? plan?.round : "none"})`,
      );
    if (live.answered.has(clientId)) return protocolError(ErrorCode.DUPLICATE_UPDATE, `this client already answered round ${plan.round}`);
    const sizes = this.deps.shards.sizes(c.shard);
    const admitted = admitUpdate(plan, this.layout, clientId, meta, frame, {
      maxSamples: sizes.train + live.msg.maxOwnSamples,
      maxEvalSamples: sizes.test,
    });
    if (!admitted.ok) {
      // As in the one-process coordinator: a claim beyond what was dealt ends this client's part in the round.
      if (admitted.error.code === ErrorCode.OUT_OF_BOUNDS) {
        live.answered.add(clientId);
        if (live.awaiting.delete(clientId) && live.awaiting.size === 0) void this.flush(live);
      }
      return admitted;
    }
    const u = admitted.value;
    live.acc.add({ backbone: u.backbone, numSamples: u.numSamples, experts: u.experts });
    live.reports.push(reportOf(u));
    live.answered.add(clientId);
    live.awaiting.delete(clientId);
    if (live.awaiting.size === 0) void this.flush(live);
    return { ok: true, value: { round: plan.round } };
  }

  // --- the leader's control stream ---

  private async onCtl(m: CtlMessage): Promise<void> {
    if (m.epoch < this.epoch) {
      this.log.debug({ epoch: m.epoch, current: this.epoch, type: m.type }, "control message of a stale leader ignored");
      return;
    }
    if (m.epoch > this.epoch) {
      // A new leader: whatever round the old one had open is void (the new one redoes it).
      this.epoch = m.epoch;
      this.drop();
    }
    if (m.type === "round:open") await this.openRound(m);
    else if (m.type === "round:abandoned") {
      if (this.live?.msg.plan.round === m.round) this.drop();
    } else {
      this.run = { runId: this.run.runId, round: m.summary.round };
      if (this.live?.msg.plan.round === m.summary.round) this.drop();
      this.deps.broadcast(m.summary);
    }
  }

  private drop(): void {
    this.live?.timer.cancel();
    this.live = null;
  }

  private async openRound(m: RoundOpen): Promise<void> {
    if (this.live && this.live.msg.epoch === m.epoch && this.live.msg.plan.round === m.plan.round) return;
    this.drop();
    this.run = { runId: m.runId, round: m.plan.round - 1 };
    if (!m.edges.includes(this.deps.id)) return;
    const blob = await this.bus.getBlob(m.model);
    const full = [...this.layout.backbone, ...this.layout.experts.flat()];
    const decoded = blob ? decodeTensors(blob, full) : null;
    if (!decoded?.ok) {
      this.log.error({ round: m.plan.round, why: decoded ? decoded.error.message : "model blob missing" }, "cannot take part in the round");
      return;
    }
    const all = splitClientTensors(
      this.layout,
      this.layout.experts.map((_, e) => e),
      decoded.value,
    );
    const backbone = all.backbone;
    const experts = all.experts.map((x) => x.tensors);
    const participants = m.plan.participants.filter((id) => this.local.has(id));
    const live: LocalRound = {
      msg: m,
      backbone,
      experts,
      acc: new PartialAccumulator(
        backbone,
        experts,
        aggregateOptionsOf({ ...engineConfigOf(this.deps.config), aggregation: m.aggregation }),
      ),
      awaiting: new Set(participants),
      answered: new Set(),
      reports: [],
      flushed: false,
      timer: this.deps.clock.timeout(m.timeoutMs, () => void this.flush(live)),
    };
    this.live = live;
    // Clients holding the same expert set get the same bytes: encode each distinct set once.
    const frames = new Map<string, Uint8Array>();
    const index = new Map(m.plan.participants.map((id, i) => [id, i]));
    for (const id of participants) {
      const held = m.plan.experts[index.get(id) as number] ?? [];
      const key = held.join(",");
      let frame = frames.get(key);
      if (!frame) {
        frame = encodeTensors(clientTensors(backbone, experts, held), m.wire);
        frames.set(key, frame);
      }
      this.deps.send(id, { round: m.plan.round, experts: [...held], weights: frame, training: { ...m.training }, timeoutMs: m.timeoutMs });
    }
    this.log.info({ round: m.plan.round, epoch: m.epoch, local: participants.length }, "round started here");
    if (live.awaiting.size === 0) await this.flush(live);
  }

  private async flush(live: LocalRound): Promise<void> {
    if (live.flushed) return;
    live.flushed = true;
    live.timer.cancel();
    // Participants that never answered are not ready any more (as in the one-process coordinator).
    for (const id of live.awaiting) {
      const c = this.local.get(id);
      if (c) c.ready = false;
      await this.deps.redis.hdel(this.bus.keys.ready, id);
    }
    const { meta, frame } = encodePartial(live.acc.finish(), live.backbone);
    const blob = await this.bus.putBlob(frame);
    await this.bus.publish(this.bus.keys.up, {
      type: "partial",
      epoch: live.msg.epoch,
      round: live.msg.plan.round,
      edge: this.deps.id,
      reports: live.reports,
      meta,
      blob,
    });
    this.log.info({ round: live.msg.plan.round, updates: live.acc.size, bytes: frame.length }, "partial sent");
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.drop();
    if (this.beat) clearInterval(this.beat);
    await this.reader?.stop();
    // A clean stop leaves at once (a killed edge is found out when its heartbeat expires).
    await this.deps.redis.del(this.bus.keys.edge(this.deps.id)).catch(() => undefined);
  }
}

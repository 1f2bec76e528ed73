/**
 * The round leader of a cluster: the same round engine as the one-process coordinator (core's
 * planRound and settleRound), with the edges' partials in place of the clients' updates. It holds a
 * lease in Redis, stamps its epoch on every control message, and commits a round by writing the
 * checkpoint fenced by that epoch: a round is applied exactly when its checkpoint lands, so a leader
 * that dies mid-round costs that round (its successor redoes it from the checkpoint) and never
 * applies one twice.
 *
 *   idle --(min clients ready on live edges, gather window)--> open --(every edge's partial | deadline)--> idle
 */
import {
  assignRng,
  combineModeOf,
  combinePartials,
  compareClientIds,
  decodePartial,
  encodeTensors,
  forgetClients,
  planRound,
  settleRound,
  type ClientReport,
  type DashboardClient,
  type DashboardState,
  type RoundPartial,
  type RoundPlan,
} from "@flexmoe/core";
import { modelLayout, modelSpec, type ModelSpec } from "@flexmoe/model/spec";
import { STATUS_ROUNDS } from "../app.ts";
import type { Clock, TimerHandle } from "../clock.ts";
import type { ResolvedConfig } from "../config.ts";
import { dashboardView } from "../dashboard/state.ts";
import { engineConfigOf, freshState, summaryOf, type FederationState, type RoundRecord } from "../federation.ts";
import type { Logger } from "../logger.ts";
import { checkpointOf, encodeCheckpoint, restoreCheckpointBytes } from "../store/checkpoint.ts";
import { Bus, StreamReader, newId } from "./bus.ts";
import { readyEntrySchema, upMessageSchema, type PartialMessage, type RoundOpen, type UpMessage } from "./messages.ts";
import type { Redis } from "ioredis";

/** How often the leader looks for expired identities (between rounds). */
export const PRUNE_SWEEP_MS = 60_000;
/** Token entries and Q rows one sweep looks at (the rest wait for the next sweeps). */
export const PRUNE_BATCH = 1000;

export interface LeaderDeps {
  config: ResolvedConfig;
  clock: Clock;
  logger: Logger;
  /** Commands. */
  redis: Redis;
  /** A second connection for the blocking stream read (closed by stop()). */
  blocking: Redis;
  prefix: string;
  /** Lease TTL; a dead leader's successor takes over after at most this. @default 3000 */
  leaseMs?: number;
  /** How long after the round's deadline partials are still awaited (edges flush at the deadline). @default 2000 */
  graceMs?: number;
  /** The lease went to another holder (or the epoch moved on): this leader must stop. */
  onLost?: (why: string) => void;
  newToken?: () => string;
  /** How often expired identities are looked for. @default PRUNE_SWEEP_MS */
  pruneSweepMs?: number;
}

interface OpenRound {
  plan: RoundPlan;
  epoch: number;
  startedAt: number;
  deadline: TimerHandle;
  /** Edges that hold participants (each answers once). */
  edges: Set<string>;
  partials: Map<string, PartialMessage>;
}

export class Leader {
  readonly id = newId();
  readonly spec: ModelSpec;
  private readonly bus: Bus;
  private readonly log: Logger;
  private readonly leaseMs: number;
  private epochValue = 0;
  private state: FederationState | null = null;
  private open: OpenRound | null = null;
  private gather: TimerHandle | null = null;
  private renewTimer: ReturnType<typeof setInterval> | null = null;
  private poll: ReturnType<typeof setInterval> | null = null;
  private reader: StreamReader<typeof upMessageSchema> | null = null;
  private busy = false;
  private lastSweep = 0;
  private tokenCursor = "0";
  private qOffset = 0;
  private again = false;
  private stopped = false;

  constructor(private readonly deps: LeaderDeps) {
    this.bus = new Bus(deps.redis, deps.prefix);
    this.log = deps.logger.child({ module: "leader", leader: this.id });
    this.leaseMs = deps.leaseMs ?? 3000;
    this.spec = modelSpec(deps.config.preset, deps.config.experts);
  }

  get epoch(): number {
    return this.epochValue;
  }
  /** Applied rounds. */
  get round(): number {
    return this.state?.round ?? 0;
  }
  get snapshot(): FederationState | null {
    return this.state;
  }

  /**
   * Waits for the lease (a standby leader waits here while another holds it), takes the next epoch,
   * resumes from the checkpoint (or starts a run) and begins leading.
   */
  async start(): Promise<void> {
    const k = this.bus.keys;
    while (!this.stopped && !(await this.bus.acquireLease(this.id, this.leaseMs))) await sleep(Math.max(100, this.leaseMs / 4));
    if (this.stopped) return;
    this.epochValue = await this.deps.redis.incr(k.epoch);
    this.renewTimer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref?.();
    await this.deps.redis.set(k.config, JSON.stringify(this.deps.config));
    const stored = await this.deps.redis.getBuffer(k.checkpoint);
    if (stored) {
      const restored = restoreCheckpointBytes(new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength), this.deps.config);
      if (!restored.ok) throw new Error(`cluster checkpoint: ${restored.error.message}`);
      this.state = restored.value.initial;
      await this.deps.redis.set(k.run, JSON.stringify({ runId: this.state.runId, round: this.state.round }));
    } else {
      this.state = freshState(this.deps.config, (this.deps.newToken ?? newId)().slice(0, 12));
      if (!(await this.commit(this.state))) return;
    }
    // An announcement of the previous epoch's open round is void now (this leader redoes it).
    await this.deps.redis.del(k.open);
    const after = await this.bus.lastId(k.up);
    this.reader = new StreamReader(
      this.deps.blocking,
      k.up,
      after,
      upMessageSchema,
      (m) => this.onUp(m),
      (why) => this.log.warn({ why }, "up stream entry skipped"),
    );
    // Readiness is also polled: a nudge can be lost across a Redis restart.
    this.poll = setInterval(() => this.kick(), 1000);
    this.poll.unref?.();
    this.log.info({ epoch: this.epochValue, round: this.state.round, runId: this.state.runId }, "leader ready");
    this.kick();
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    try {
      if (await this.bus.renewLease(this.id, this.leaseMs)) return;
      // Expired without a successor (Redis was down longer than the TTL): take it back while the epoch
      // is still ours; a successor would have raised it.
      const back = await this.bus.acquireLease(this.id, this.leaseMs);
      if (back && Number(await this.deps.redis.get(this.bus.keys.epoch)) === this.epochValue) {
        this.log.warn({ epoch: this.epochValue }, "lease had expired; re-acquired with the same epoch");
        return;
      }
      if (back) await this.bus.releaseLease(this.id);
      this.lose("the lease is held by another leader");
    } catch (e) {
      this.log.warn({ err: e }, "lease renewal failed (Redis unreachable?)");
    }
  }

  private lose(why: string): void {
    if (this.stopped) return;
    this.log.error({ why, epoch: this.epochValue }, "leadership lost; stopping");
    void this.stop();
    this.deps.onLost?.(why);
  }

  private onUp(m: UpMessage): void {
    if (m.type === "partial") {
      const o = this.open;
      if (!o || m.epoch !== o.epoch || m.round !== o.plan.round || !o.edges.has(m.edge) || o.partials.has(m.edge)) {
        this.log.debug({ edge: m.edge, epoch: m.epoch, round: m.round }, "partial ignored (stale or unexpected)");
        return;
      }
      o.partials.set(m.edge, m);
    }
    this.kick();
  }

  /** Runs step() now, or once more after the running one (steps never overlap). */
  private kick(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.step();
        } while (this.again && !this.stopped);
      } catch (e) {
        this.log.error({ err: e }, "leader step failed; retrying");
        setTimeout(() => this.kick(), 500).unref?.();
      } finally {
        this.busy = false;
      }
    })();
  }

  private async step(): Promise<void> {
    const state = this.state;
    if (!state || this.stopped) return;
    const o = this.open;
    if (o) {
      const live = await this.liveEdges([...o.edges]);
      const waiting = [...o.edges].filter((e) => live.has(e) && !o.partials.has(e));
      if (waiting.length === 0) await this.close("complete");
      return;
    }
    await this.sweep(state);
    const cfg = this.deps.config;
    if (cfg.rounds > 0 && state.round >= cfg.rounds) return;
    const ready = await this.eligible();
    if (ready.length < cfg.minClients || this.gather) return;
    this.gather = this.deps.clock.timeout(cfg.gatherMs, () => {
      this.gather = null;
      void this.openRound().catch((e: unknown) => this.log.error({ err: e }, "opening a round failed"));
    });
  }

  /**
   * Between rounds, at most every `pruneSweepMs`: identities whose Redis hash expired (--prune-after
   * after their client left, set by the edges) lose their token entries and their Q rows and streaks,
   * committed like a round (fenced by the epoch). Bounded work per sweep: one page of the token hash
   * and PRUNE_BATCH Q rows, each resumed where the last sweep stopped.
   */
  private async sweep(state: FederationState): Promise<void> {
    const now = this.deps.clock.now();
    if (!(this.deps.config.pruneAfterMs > 0) || now - this.lastSweep < (this.deps.pruneSweepMs ?? PRUNE_SWEEP_MS)) return;
    this.lastSweep = now;
    const k = this.bus.keys;
    const r = this.deps.redis;
    const missing = async (ids: readonly string[]): Promise<Set<string>> => {
      if (ids.length === 0) return new Set();
      const p = r.pipeline();
      for (const id of ids) p.exists(k.ident(id));
      const alive = (await p.exec()) ?? [];
      return new Set(ids.filter((_, j) => alive[j]?.[1] === 0));
    };
    const [next, flat] = await r.hscan(k.tokens, this.tokenCursor, "COUNT", PRUNE_BATCH);
    this.tokenCursor = next;
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i] as string, flat[i + 1] as string]);
    const goneTokens = await missing([...new Set(pairs.map(([, id]) => id))]);
    const stale = pairs.filter(([, id]) => goneTokens.has(id)).map(([t]) => t);
    if (stale.length > 0) await r.hdel(k.tokens, ...stale);
    const ids = state.fitness.clientIds();
    if (this.qOffset >= ids.length) this.qOffset = 0;
    const batch = ids.slice(this.qOffset, this.qOffset + PRUNE_BATCH);
    this.qOffset += batch.length;
    const forgotten = [...(await missing(batch))];
    if (stale.length > 0 || forgotten.length > 0)
      this.log.info({ tokens: stale.length, clients: forgotten.length }, "expired identities pruned");
    // A round that opened or closed meanwhile (its timers run outside step()) wins: retry next sweep.
    if (forgotten.length === 0 || this.open || this.state !== state) return;
    await this.commit({ ...forgetClients(state, forgotten), runId: state.runId, history: state.history });
  }

  /** The ready hash, parsed: valid entries by client id, and the ids of entries that are not. */
  private async readyEntries(): Promise<{ valid: Map<string, { capacity: number; edge: string }>; invalid: string[] }> {
    const valid = new Map<string, { capacity: number; edge: string }>();
    const invalid: string[] = [];
    for (const [id, v] of Object.entries(await this.deps.redis.hgetall(this.bus.keys.ready))) {
      let entry;
      try {
        entry = readyEntrySchema.safeParse(JSON.parse(v));
      } catch {
        entry = null;
      }
      if (entry?.success) valid.set(id, entry.data);
      else invalid.push(id);
    }
    return { valid, invalid };
  }

  /** Ready clients on edges whose heartbeat is alive; entries of dead edges are removed. */
  private async eligible(): Promise<{ id: string; capacity: number; edge: string }[]> {
    const k = this.bus.keys;
    const { valid, invalid } = await this.readyEntries();
    if (invalid.length > 0) await this.deps.redis.hdel(k.ready, ...invalid);
    const out = [...valid].map(([id, e]) => ({ id, capacity: e.capacity, edge: e.edge }));
    const live = await this.liveEdges([...new Set(out.map((c) => c.edge))]);
    const dead = out.filter((c) => !live.has(c.edge));
    if (dead.length > 0) await this.deps.redis.hdel(k.ready, ...dead.map((c) => c.id));
    return out.filter((c) => live.has(c.edge)).sort((a, b) => compareClientIds(a.id, b.id));
  }

  private async liveEdges(edges: readonly string[]): Promise<Set<string>> {
    if (edges.length === 0) return new Set();
    const alive = await this.deps.redis.mget(...edges.map((e) => this.bus.keys.edge(e)));
    return new Set(edges.filter((_, i) => alive[i] !== null));
  }

  private async openRound(): Promise<void> {
    const state = this.state;
    if (!state || this.open || this.stopped) return;
    const cfg = this.deps.config;
    const ready = await this.eligible();
    if (ready.length < cfg.minClients) return;
    const round = state.round + 1;
    // Capacities are bounded here, whatever an edge wrote (never trust a claim beyond what the server bounds).
    const plan = planRound(
      state,
      ready.map((c) => ({ id: c.id, capacity: Math.max(1, Math.min(c.capacity, cfg.maxCapacity)) })),
      engineConfigOf(cfg),
      assignRng(cfg.seed, round),
    );
    const edgeOf = new Map(ready.map((c) => [c.id, c.edge]));
    const edges = [...new Set(plan.participants.map((id) => edgeOf.get(id) as string))].sort();
    // The model is stored once per round by content hash; edges fetch it once and build client frames.
    const model = await this.bus.putBlob(encodeTensors([...state.backbone, ...state.experts.flat()], "float32"));
    const msg: RoundOpen = {
      type: "round:open",
      epoch: this.epochValue,
      runId: state.runId,
      plan,
      model,
      edges,
      training: { ...cfg.training },
      timeoutMs: cfg.roundTimeoutMs,
      wire: cfg.wireDType,
      aggregation: { ...engineConfigOf(cfg).aggregation },
      maxOwnSamples: cfg.maxOwnSamples,
    };
    this.open = {
      plan,
      epoch: this.epochValue,
      startedAt: this.deps.clock.now(),
      edges: new Set(edges),
      partials: new Map(),
      deadline: this.deps.clock.timeout(cfg.roundTimeoutMs + (this.deps.graceMs ?? 2000), () => {
        void this.close("timeout").catch((e: unknown) => this.log.error({ err: e }, "closing a round failed"));
      }),
    };
    const k = this.bus.keys;
    await this.deps.redis.set(k.open, JSON.stringify(msg));
    await this.bus.publish(k.ctl, msg);
    this.log.info({ round, epoch: this.epochValue, participants: plan.participants.length, edges, load: plan.load }, "round opened");
    await this.publishStatus();
  }

  private async close(reason: RoundRecord["reason"]): Promise<void> {
    const o = this.open;
    const state = this.state;
    if (!o || !state || this.stopped) return;
    this.open = null;
    o.deadline.cancel();
    const cfg = this.deps.config;
    const layout = modelLayout(this.spec);
    const partials: RoundPartial[] = [];
    const reports: ClientReport[] = [];
    const seen = new Set<string>();
    const planned = new Set(o.plan.participants);
    // Bytes this leader read for the round: the partials' blobs and their messages (what scales with edges).
    let ingressBytes = 0;
    // Edges in id order: the combination does not depend on arrival order.
    for (const edge of [...o.partials.keys()].sort()) {
      const m = o.partials.get(edge) as PartialMessage;
      const blob = await this.bus.getBlob(m.blob);
      ingressBytes += (blob?.length ?? 0) + JSON.stringify(m).length;
      const decoded = blob ? decodePartial(layout, m.meta, blob) : null;
      if (!decoded?.ok) {
        this.log.warn({ edge, why: decoded ? decoded.error.message : "blob missing" }, "partial dropped");
        continue;
      }
      partials.push(decoded.value);
      // A client counts once (it may have reached two edges); reports for non-participants are dropped.
      for (const r of m.reports) {
        if (!planned.has(r.clientId) || seen.has(r.clientId)) continue;
        seen.add(r.clientId);
        reports.push(r);
      }
    }
    const k = this.bus.keys;
    if (reports.length < Math.max(1, cfg.quorum)) {
      this.log.warn(
        { round: o.plan.round, reason, received: reports.length, quorum: cfg.quorum },
        "round abandoned (below quorum); it will be redone",
      );
      await this.deps.redis.del(k.open);
      await this.bus.publish(k.ctl, { type: "round:abandoned", epoch: this.epochValue, round: o.plan.round });
      this.kick();
      return;
    }
    const engine = engineConfigOf(cfg);
    const next = combinePartials(state.backbone, state.experts, partials, combineModeOf(engine.aggregation.rule));
    const applied = settleRound(state, o.plan, reports, next, engine);
    const record: RoundRecord = { ...applied.record, startedAt: o.startedAt, closedAt: this.deps.clock.now(), reason };
    const nextState: FederationState = { ...applied.state, runId: state.runId, history: [...state.history, record] };
    // The commit point: without it (a successor's epoch), nothing of this round happened.
    // commit() makes nextState this leader's state once it has landed.
    if (!(await this.commit(nextState))) return;
    await this.deps.redis.del(k.open);
    await this.bus.publish(k.ctl, { type: "round:closed", epoch: this.epochValue, summary: summaryOf(record) });
    this.log.info(
      {
        round: record.round,
        reason,
        participants: record.participants,
        edges: partials.length,
        ingressBytes,
        accuracy: record.accuracy,
        cv: record.cv,
      },
      "round closed",
    );
    this.kick();
  }

  /** What an edge's /api/status shows of the run (bounded: the last 100 rounds). */
  private async publishStatus(): Promise<void> {
    const s = this.state;
    if (!s) return;
    const status = {
      leader: this.id,
      epoch: this.epochValue,
      runId: s.runId,
      round: s.round,
      currentRound: this.open?.plan.round ?? null,
      participants: this.open?.plan.participants.length ?? null,
      edges: this.open ? [...this.open.edges] : [],
      history: s.history.slice(-STATUS_ROUNDS).map((h) => ({
        round: h.round,
        participants: h.participants,
        durationMs: h.closedAt - h.startedAt,
        accuracy: h.accuracy,
        loss: h.loss,
        load: h.load,
        cv: h.cv,
        reason: h.reason,
      })),
    };
    await this.deps.redis.set(this.bus.keys.status, JSON.stringify(status));
    await this.deps.redis.set(this.bus.keys.dashboard, JSON.stringify(await this.dashboard(s)));
  }

  /**
   * The dashboard of the run as the leader knows it: no client registry here (identities live on the
   * edges), so the clients are the ready ones, the open round's and the last round's participants.
   */
  private async dashboard(s: FederationState): Promise<DashboardState> {
    const cfg = this.deps.config;
    const ready = (await this.readyEntries()).valid;
    const plan = this.open?.plan;
    const openAssignment = plan ? Object.fromEntries(plan.participants.map((id, i) => [id, plan.experts[i] ?? []])) : null;
    const recent = s.history.slice(-STATUS_ROUNDS);
    const lastRound = new Map<string, number>();
    for (const h of recent) for (const id of Object.keys(h.assigned)) lastRound.set(id, h.round);
    const ids = [...new Set([...ready.keys(), ...Object.keys(openAssignment ?? {}), ...Object.keys(recent.at(-1)?.assigned ?? {})])].sort(
      compareClientIds,
    );
    const clients: DashboardClient[] = ids.map((id) => {
      const experts = openAssignment?.[id] ?? recent.at(-1)?.assigned[id] ?? [];
      return {
        id,
        label: null,
        backend: "",
        capacity: ready.get(id)?.capacity ?? experts.length,
        experts: [...experts],
        online: ready.has(id) || openAssignment?.[id] !== undefined,
        ready: ready.has(id),
        lastRound: lastRound.get(id) ?? 0,
        accuracy: null,
      };
    });
    return dashboardView(
      {
        runId: s.runId,
        phase: this.open ? "training" : cfg.rounds > 0 && s.round >= cfg.rounds ? "finished" : "waiting",
        round: s.round,
        currentRound: plan?.round ?? null,
        rounds: cfg.rounds,
        strategy: cfg.strategy,
        experts: this.spec.experts,
        minClients: cfg.minClients,
        clients,
        view: (c) => c,
        history: s.history,
        fitness: s.fitness,
        openAssignment,
      },
      [],
    );
  }

  /** Writes the checkpoint while this leader's epoch is current; false (and stops) when it is not. */
  private async commit(state: FederationState): Promise<boolean> {
    const bytes = encodeCheckpoint(checkpointOf(state, [], this.deps.config, this.deps.clock.now()));
    if (await this.bus.fencedSet(this.bus.keys.checkpoint, this.epochValue, bytes)) {
      await this.deps.redis.set(this.bus.keys.run, JSON.stringify({ runId: state.runId, round: state.round }));
      this.state = state;
      // The round is committed whatever happens to the operators' view of it.
      await this.publishStatus().catch((e: unknown) => this.log.warn({ err: e }, "status not published"));
      return true;
    }
    this.lose("the epoch moved on (a newer leader)");
    return false;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.gather?.cancel();
    this.open?.deadline.cancel();
    this.open = null;
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.poll) clearInterval(this.poll);
    await this.reader?.stop();
    await this.bus.releaseLease(this.id).catch(() => undefined);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

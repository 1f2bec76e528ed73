/**
 * The live driver of the round engine (core's planRound/applyRound): phases, timers, quorum and the
 * client registry around it. The app turns its outputs (send/broadcast callbacks) into Socket.IO
 * emits; tests drive it directly.
 *
 * waiting --(min clients ready, gather window)--> training --(all answered | deadline | all gone)--> waiting
 */
import {
  admitUpdate,
  aggregateOptionsOf,
  applyRound,
  assignRng,
  clientTensors,
  combinePartials,
  compareClientIds,
  encodeTensors,
  ErrorCode,
  forgetClients,
  initialState,
  PartialAccumulator,
  planRound,
  protocolError,
  settleRound,
  streams,
  streamRng,
  type AckResult,
  type ClientReport,
  type ClientUpdate,
  type EngineConfig,
  type EngineState,
  type JoinInfo,
  type JoinRequest,
  type ModelLayout,
  type RoundPlan,
  type RoundResult,
  type RoundStart,
  type RoundSummary,
  type SessionEnded,
  type UpdateMeta,
} from "@flexmoe/core";
import { initWeights, modelLayout, modelSpec, type ModelSpec } from "@flexmoe/model/spec";
import { ClientRegistry, type ClientRecord, type PersistedClient } from "./clients.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { ResolvedConfig, StrategyName } from "./config.ts";
import type { Logger } from "./logger.ts";

export type { ClientRecord, PersistedClient } from "./clients.ts";

export type Phase = "waiting" | "training" | "paused" | "finished";

/** A completed round: the engine's record plus when and why it closed. */
export interface RoundRecord extends RoundResult {
  startedAt: number;
  closedAt: number;
  /** Abandoned rounds (below quorum) are not recorded: they are redone. */
  reason: "complete" | "timeout";
}

/** The engine's state plus the run's identity and log. */
export interface FederationState extends EngineState {
  readonly runId: string;
  readonly history: readonly RoundRecord[];
}

/** What persistence needs after a change: the state, the registry and the live config. */
export interface RunSnapshot {
  state: FederationState;
  clients: PersistedClient[];
  config: ResolvedConfig;
}

interface LiveRound {
  plan: RoundPlan;
  startedAt: number;
  awaiting: Set<string>;
  /** Held updates, for rules that need all of them at the close; empty when `acc` folds them. */
  updates: ClientUpdate[];
  /**
   * The mean (with at most fixed clipping) streams: each accepted update is added here when it arrives
   * and dropped, so the close is one pass over the model, not over every update.
   */
  acc: PartialAccumulator | null;
  /** Every accepted update's bookkeeping (Q, metrics), in arrival order. */
  reports: ClientReport[];
  answered: Set<string>;
  timer: TimerHandle;
}

export interface FederationDeps {
  config: ResolvedConfig;
  clock: Clock;
  logger: Logger;
  newToken: () => string;
  /** Shard URL for a token (the app serves it). */
  shardUrl: (token: string) => string;
  /** Training and held-out sizes of a dealt shard: what a client's sample claims are bounded by. */
  shardSizes?: (shard: number) => { train: number; test: number };
  send: (clientId: string, start: RoundStart) => void;
  broadcast: (summary: RoundSummary) => void;
  /** After every applied round, before the broadcast (persistence hooks in here). */
  onRoundClosed?: (record: RoundRecord, run: RunSnapshot) => void;
  /**
   * A client registered, or its token changed (every rejoin rotates it): the token must outlive a
   * restart, so the store appends the record (O(1) per join) before the join is answered.
   */
  onClientChanged?: (client: ClientRecord) => void;
  /** End a connection's session: tell the socket why, then disconnect it (the app owns sockets). */
  endSession?: (session: string, end: SessionEnded) => void;
  /** An admin reset replaced the state with a fresh run (so the store forgets the old one). */
  onReset?: (run: RunSnapshot) => void;
  initial?: FederationState;
  /** Client registry restored from a store: rejoining with these tokens keeps identity and shard. */
  initialClients?: readonly PersistedClient[];
}

/** The round engine's view of the coordinator's config. */
export function engineConfigOf(c: ResolvedConfig): EngineConfig {
  return {
    strategy: c.strategy,
    fitness: c.fitness,
    beta: c.beta,
    slack: c.slack,
    aggregation: { rule: c.aggregator, trim: c.trim, clipNorm: c.clipNorm, clipFactor: c.clipFactor },
    maxHold: c.maxHold,
    zeroUsage: c.zeroUsage,
    qDecay: c.qDecay,
  };
}

/** An update's bookkeeping without its weights. */
export function reportOf(u: ClientUpdate): ClientReport {
  return {
    clientId: u.clientId,
    numSamples: u.numSamples,
    feedback: u.feedback,
    evalAccuracy: u.evalAccuracy,
    evalLoss: u.evalLoss,
    evalSamples: u.evalSamples,
    trainLoss: u.trainLoss,
  };
}

/** What every client hears of a closed round. */
export function summaryOf(record: RoundResult): RoundSummary {
  return {
    round: record.round,
    participants: record.participants,
    accuracy: record.accuracy,
    loss: record.loss,
    load: record.load,
    cv: record.cv,
  };
}

/** A fresh run: initial weights from the seed's "init" stream, Q at q0. */
export function freshState(config: ResolvedConfig, runId: string): FederationState {
  const spec = modelSpec(config.preset, config.experts);
  return { ...initialState(initWeights(spec, streamRng(config.seed, "init")), config.q0), runId, history: [] };
}

export class Federation {
  readonly spec: ModelSpec;
  readonly layout: ModelLayout;
  /** Replaced (never mutated) by the admin's setStrategy/setRounds. */
  private cfg: ResolvedConfig;
  private readonly deps: FederationDeps;
  private readonly log: Logger;
  private readonly clients: ClientRegistry;
  private state: FederationState;
  private phaseValue: Phase = "waiting";
  private pausedValue = false;
  private live: LiveRound | null = null;
  private gather: TimerHandle | null = null;
  private lastPrune = -Infinity;

  constructor(deps: FederationDeps) {
    this.deps = deps;
    this.cfg = deps.config;
    this.log = deps.logger.child({ module: "federation" });
    this.spec = modelSpec(this.cfg.preset, this.cfg.experts);
    this.layout = modelLayout(this.spec);
    this.state = deps.initial ?? freshState(this.cfg, this.newRunId());
    this.clients = new ClientRegistry(this.cfg.shards, deps.initialClients, deps.clock.now());
    if (this.cfg.rounds > 0 && this.state.round >= this.cfg.rounds) this.phaseValue = "finished";
  }

  private newRunId(): string {
    return this.deps.newToken().slice(0, 12);
  }

  /** The client registry as it should be persisted. */
  registry(): PersistedClient[] {
    return this.clients.persisted();
  }

  /** Everything persistence stores, as of now. */
  run(): RunSnapshot {
    return { state: this.state, clients: this.clients.persisted(), config: this.cfg };
  }

  get phase(): Phase {
    return this.phaseValue;
  }
  get round(): number {
    return this.state.round;
  }
  get currentRound(): number | null {
    return this.live?.plan.round ?? null;
  }
  get snapshot(): FederationState {
    return this.state;
  }
  clientList(): readonly ClientRecord[] {
    return this.clients.list();
  }
  client(id: string): ClientRecord | undefined {
    return this.clients.get(id);
  }

  /**
   * A join on connection `session` (a socket id; in-process callers may omit it). A rejoin rotates the
   * token and supersedes the client's other connection, whose later drop no longer counts.
   */
  join(req: JoinRequest, session?: string): AckResult<JoinInfo> {
    const capacity = Math.min(req.capacity, this.cfg.maxCapacity);
    const now = this.deps.clock.now();
    const adm = this.clients.admit(req, capacity, this.deps.newToken, session ?? null, now);
    if (adm.kind === "unknown")
      return protocolError(ErrorCode.UNKNOWN_TOKEN, "token not issued by this coordinator (or forgotten); join without one");
    const rec = adm.record;
    this.deps.onClientChanged?.(rec);
    if (adm.kind === "reused") {
      this.log.warn({ client: rec.id }, "a replaced token was presented after its successor was used: token copied; client revoked");
      if (adm.ended !== null)
        this.deps.endSession?.(adm.ended, { reason: "revoked", message: "this identity's token was used from two places" });
      this.dropFromRound(rec.id);
      return protocolError(
        ErrorCode.TOKEN_REUSED,
        "this token was replaced and its successor is in use; identity revoked, join without a token",
      );
    }
    if (adm.ended !== null) {
      this.log.info({ client: rec.id }, "rejoined on a new connection; the old one is superseded");
      this.deps.endSession?.(adm.ended, { reason: "superseded", message: "this client joined on another connection" });
    }
    this.log.info({ client: rec.id, capacity, backend: req.backend, new: adm.isNew }, "client joined");
    return {
      ok: true,
      value: {
        clientId: rec.id,
        token: rec.token,
        capacity,
        experts: this.cfg.experts,
        preset: this.spec.preset,
        numClasses: this.spec.numClasses,
        shardUrl: this.deps.shardUrl(rec.token),
        runId: this.state.runId,
        round: this.state.round,
      },
    };
  }

  /** Shard index for a token, or undefined if the token is unknown. */
  shardOf(token: string): number | undefined {
    return this.clients.byTokenOf(token)?.shard;
  }

  /** False when `session` is not the client's live connection (it was superseded). */
  setReady(clientId: string, ready: boolean, session?: string): boolean {
    const rec = this.clients.current(clientId, session, this.deps.clock.now());
    if (!rec) return false;
    rec.ready = ready;
    this.maybeStart();
    return true;
  }

  /**
   * The connection `session` is gone. Only the client's live connection counts: a superseded socket
   * timing out later must not take a rejoined client offline. A participant that has not answered is
   * simply missing from the aggregate.
   */
  leave(clientId: string, session?: string): void {
    const rec = this.clients.get(clientId);
    if (!rec || (session !== undefined && rec.session !== session)) return;
    rec.online = false;
    rec.ready = false;
    rec.session = null;
    rec.lastSeen = this.deps.clock.now();
    this.log.info({ client: clientId }, "client left");
    this.dropFromRound(clientId);
  }

  private dropFromRound(clientId: string): void {
    const live = this.live;
    if (live && live.awaiting.delete(clientId) && live.awaiting.size === 0) this.closeRound("complete");
  }

  /**
   * Forgets clients offline for longer than --prune-after: registry entries, tokens, Q rows and
   * streaks. Run between rounds, so the registry and what is pushed stay bounded under join churn.
   */
  private prune(): void {
    const now = this.deps.clock.now();
    // A scan of the registry at most once a minute (maybeStart runs on every ready).
    if (!(this.cfg.pruneAfterMs > 0) || now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const gone = this.clients.prune(now - this.cfg.pruneAfterMs);
    if (gone.length === 0) return;
    this.state = { ...forgetClients(this.state, gone), runId: this.state.runId, history: this.state.history };
    this.log.info({ pruned: gone.length, registered: this.clients.size }, "offline clients pruned");
  }

  get paused(): boolean {
    return this.pausedValue;
  }
  get strategy(): StrategyName {
    return this.cfg.strategy;
  }
  /** Round limit, 0 = unbounded. */
  get roundLimit(): number {
    return this.cfg.rounds;
  }
  get config(): ResolvedConfig {
    return this.cfg;
  }
  /** Experts per participant of the open round, or null between rounds. */
  get openAssignment(): Record<string, number[]> | null {
    const plan = this.live?.plan;
    return plan ? Object.fromEntries(plan.participants.map((id, i) => [id, [...(plan.experts[i] ?? [])]])) : null;
  }

  /** Admin: the strategy used from the next round on (the open round keeps its assignment). */
  setStrategy(strategy: StrategyName): void {
    this.cfg = Object.freeze({ ...this.cfg, strategy });
    this.log.info({ strategy }, "strategy set");
  }

  /** Admin: stop after `rounds` completed rounds (0 = unbounded); a finished run resumes when the limit grows. */
  setRounds(rounds: number): void {
    this.cfg = Object.freeze({ ...this.cfg, rounds });
    this.log.info({ rounds }, "round limit set");
    if (this.phaseValue === "finished" && (rounds === 0 || this.state.round < rounds)) {
      this.phaseValue = this.pausedValue ? "paused" : "waiting";
    }
    this.maybeStart();
  }

  /**
   * Admin: start a new run (new runId, fresh weights, Q, deficits and history). The open round,
   * if any, is dropped (its late updates get STALE_ROUND); joined clients stay joined.
   */
  reset(): void {
    this.gather?.cancel();
    this.gather = null;
    this.live?.timer.cancel();
    this.live = null;
    this.state = freshState(this.cfg, this.newRunId());
    this.clients.resetRounds();
    this.phaseValue = this.pausedValue ? "paused" : "waiting";
    this.log.info({ runId: this.state.runId }, "federation reset");
    this.deps.onReset?.(this.run());
    this.maybeStart();
  }

  pause(paused: boolean): void {
    this.pausedValue = paused;
    if (paused) {
      this.gather?.cancel();
      this.gather = null;
      if (this.phaseValue === "waiting") this.phaseValue = "paused";
    } else {
      if (this.phaseValue === "paused") this.phaseValue = "waiting";
      this.maybeStart();
    }
  }

  private maybeStart(): void {
    if (this.pausedValue || this.live || this.phaseValue === "finished") return;
    this.prune();
    if (this.cfg.rounds > 0 && this.state.round >= this.cfg.rounds) {
      this.phaseValue = "finished";
      return;
    }
    if (this.clients.eligible().length < this.cfg.minClients || this.gather) return;
    this.gather = this.deps.clock.timeout(this.cfg.gatherMs, () => {
      this.gather = null;
      if (!this.pausedValue && !this.live && this.clients.eligible().length >= this.cfg.minClients) this.startRound();
    });
  }

  private startRound(): void {
    const participants = this.clients.eligible().sort((a, b) => compareClientIds(a.id, b.id));
    const round = this.state.round + 1;
    const plan = planRound(
      this.state,
      participants.map((c) => ({ id: c.id, capacity: c.capacity })),
      engineConfigOf(this.cfg),
      assignRng(this.cfg.seed, round),
    );
    const aggregation = aggregateOptionsOf(engineConfigOf(this.cfg));
    this.live = {
      plan,
      startedAt: this.deps.clock.now(),
      awaiting: new Set(plan.participants),
      updates: [],
      acc: streams(aggregation) ? new PartialAccumulator(this.state.backbone, this.state.experts, aggregation) : null,
      reports: [],
      answered: new Set(),
      timer: this.deps.clock.timeout(this.cfg.roundTimeoutMs, () => this.closeRound("timeout")),
    };
    this.phaseValue = "training";
    this.log.info({ round, participants: plan.participants.length, load: plan.load, strategy: plan.strategy }, "round started");
    // Clients holding the same expert set get the same bytes: encode each distinct set once.
    const frames = new Map<string, Uint8Array>();
    plan.participants.forEach((id, i) => {
      const held = plan.experts[i] ?? [];
      const c = this.clients.get(id);
      if (c) c.experts = [...held];
      const key = held.join(",");
      let frame = frames.get(key);
      if (!frame) {
        frame = encodeTensors(clientTensors(this.state.backbone, this.state.experts, held), this.cfg.wireDType);
        frames.set(key, frame);
      }
      this.deps.send(id, {
        round,
        experts: [...held],
        weights: frame,
        training: { ...this.cfg.training },
        timeoutMs: this.cfg.roundTimeoutMs,
      });
    });
  }

  /** Validate an update against the live round and keep it. Nothing touches global state until the round closes. */
  submit(clientId: string, meta: UpdateMeta, frame: Uint8Array, session?: string): AckResult<{ round: number }> {
    if (!this.clients.current(clientId, session, this.deps.clock.now()))
      return protocolError(ErrorCode.NOT_JOINED, "this connection was superseded by a newer one of the same client");
    const live = this.live;
    if (!live || meta.round !== live.plan.round)
      return protocolError(ErrorCode.STALE_ROUND, `round ${meta.round} is not open (open: ${live?.plan.round ?? "none"})`);
    if (live.answered.has(clientId))
      return protocolError(ErrorCode.DUPLICATE_UPDATE, `this client already answered round ${live.plan.round}`);
    const sizes = this.deps.shardSizes?.(this.clients.get(clientId)?.shard ?? 0);
    const admitted = admitUpdate(
      live.plan,
      this.layout,
      clientId,
      meta,
      frame,
      sizes ? { maxSamples: sizes.train + this.cfg.maxOwnSamples, maxEvalSamples: sizes.test } : {},
    );
    if (!admitted.ok) {
      // A claim beyond what the server dealt is a lie, not a bug to retry: it ends this client's part in
      // the round, so it cannot hold the round open until the deadline (a retry gets DUPLICATE_UPDATE).
      // Other rejections leave the client free to send a corrected update.
      if (admitted.error.code === ErrorCode.OUT_OF_BOUNDS) {
        live.answered.add(clientId);
        if (live.awaiting.delete(clientId) && live.awaiting.size === 0) this.closeRound("complete");
      }
      return admitted;
    }
    const u = admitted.value;
    if (live.acc) live.acc.add({ backbone: u.backbone, numSamples: u.numSamples, experts: u.experts });
    else live.updates.push(u);
    live.reports.push(reportOf(u));
    live.answered.add(clientId);
    live.awaiting.delete(clientId);
    if (live.awaiting.size === 0) this.closeRound("complete");
    return { ok: true, value: { round: live.plan.round } };
  }

  private closeRound(reason: RoundRecord["reason"]): void {
    const live = this.live;
    if (!live) return;
    live.timer.cancel();
    this.live = null;
    // Participants that never answered drop out of the ready set: the next round does not wait for them
    // again. A page that is alive declares itself ready again when it is done (see docs/protocol.md).
    for (const id of live.awaiting) {
      const c = this.clients.get(id);
      if (c) c.ready = false;
    }
    // Below quorum (or nobody answered): nothing is applied, not even the deficits; the round is redone.
    if (live.reports.length < Math.max(1, this.cfg.quorum)) {
      this.log.warn(
        { round: live.plan.round, reason, received: live.reports.length, quorum: this.cfg.quorum },
        "round abandoned (below quorum); it will be redone",
      );
      this.phaseValue = this.pausedValue ? "paused" : "waiting";
      this.maybeStart();
      return;
    }
    const engine = engineConfigOf(this.cfg);
    // The close's own cost (aggregation or the streamed sums' division, and the engine's bookkeeping).
    const t0 = this.deps.clock.now();
    const applied = live.acc
      ? settleRound(
          this.state,
          live.plan,
          live.reports,
          combinePartials(this.state.backbone, this.state.experts, [live.acc.finish()], "mean"),
          engine,
        )
      : applyRound(this.state, live.plan, live.updates, engine);
    const record: RoundRecord = { ...applied.record, startedAt: live.startedAt, closedAt: this.deps.clock.now(), reason };
    for (const u of live.reports) {
      const c = this.clients.get(u.clientId);
      if (c) {
        c.lastRound = record.round;
        c.accuracy = u.evalAccuracy;
      }
    }
    this.state = { ...applied.state, runId: this.state.runId, history: [...this.state.history, record] };
    this.deps.onRoundClosed?.(record, this.run());
    this.log.info(
      {
        round: record.round,
        reason,
        participants: record.participants,
        accuracy: record.accuracy,
        cv: record.cv,
        applyMs: record.closedAt - t0,
        streamed: live.acc !== null,
      },
      "round closed",
    );
    this.deps.broadcast(summaryOf(record));
    this.phaseValue = this.pausedValue ? "paused" : "waiting";
    this.maybeStart();
  }

  /** Cancel every timer this federation owns. */
  close(): void {
    this.gather?.cancel();
    this.gather = null;
    this.live?.timer.cancel();
    this.live = null;
  }
}

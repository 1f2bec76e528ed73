/**
 * The round life cycle of one federation, independent of the transport.
 * The app turns its outputs (send/broadcast callbacks) into Socket.IO emits; tests drive it directly.
 *
 * waiting --(min clients ready, gather window)--> training --(all answered | deadline | all gone)--> waiting
 */
import {
  aggregateRound,
  assign,
  decodeTensors,
  encodeTensors,
  ErrorCode,
  FitnessMatrix,
  holdersLoad,
  loadStats,
  protocolError,
  routedLoad,
  updateDeficit,
  type AckResult,
  type AggregateOptions,
  type Assignment,
  type DashboardRound,
  type ExpertFeedback,
  type JoinInfo,
  type JoinRequest,
  type NamedTensor,
  type Rng,
  type RoundStart,
  type RoundSummary,
  type StrategyName,
  type TensorManifest,
  type UpdateMeta,
} from "@flexmoe/core";
import { backboneManifest, countParams, expertManifest, initBackbone, initExpert, modelSpec, type ModelSpec } from "@flexmoe/model/spec";
import type { Clock, TimerHandle } from "./clock.ts";
import type { ResolvedConfig } from "./config.ts";
import type { Logger } from "./logger.ts";

export type Phase = "waiting" | "training" | "paused" | "finished";

export interface ClientRecord {
  id: string;
  token: string;
  capacity: number;
  backend: string;
  label: string | undefined;
  shard: number;
  online: boolean;
  ready: boolean;
  /** Experts held in the current or last round this client took part in. */
  experts: number[];
  lastRound: number;
  accuracy: number | null;
}

/** A completed round: what the dashboard charts (core's DashboardRound) plus the full log. */
export interface RoundRecord extends DashboardRound {
  startedAt: number;
  closedAt: number;
  /** Abandoned rounds (below quorum) are not recorded: they are redone. */
  reason: "complete" | "timeout";
  assigned: Record<string, number[]>;
  capacities: Record<string, number>;
  bounds: { lower: number[]; upper: number[] } | null;
  deficitBefore: number[];
  cvRoutedCumulative: number;
  maxOverMean: number;
  starved: number;
  objective: number;
  feedback: Record<string, ExpertFeedback[]>;
}

export interface FederationState {
  runId: string;
  round: number;
  backbone: NamedTensor[];
  experts: NamedTensor[][];
  fitness: FitnessMatrix;
  deficit: number[];
  cumulativeRouted: number[];
  history: RoundRecord[];
}

/** What survives a restart of a client: identity, credential and data shard (`online`/`ready` do not). */
export interface PersistedClient {
  id: string;
  token: string;
  shard: number;
  capacity: number;
  backend: string;
  label: string | null;
  lastRound: number;
  accuracy: number | null;
}

interface PendingUpdate {
  meta: UpdateMeta;
  backbone: NamedTensor[];
  experts: { expert: number; tensors: NamedTensor[]; usage: number }[];
}

interface LiveRound {
  round: number;
  startedAt: number;
  assignment: Assignment;
  participants: string[];
  experts: Map<string, number[]>;
  awaiting: Set<string>;
  updates: Map<string, PendingUpdate>;
  deficitBefore: number[];
  timer: TimerHandle;
}

export interface FederationDeps {
  config: ResolvedConfig;
  clock: Clock;
  logger: Logger;
  rng: Rng;
  newToken: () => string;
  /** Shard URL for a shard index (the app serves it). */
  shardUrl: (token: string) => string;
  send: (clientId: string, start: RoundStart) => void;
  broadcast: (summary: RoundSummary) => void;
  /** Called after every completed round with the new state (persistence hooks in here). */
  onRoundClosed?: (record: RoundRecord, state: FederationState) => void;
  /** Called when a new client is registered (its token must outlive a restart). */
  onClientAdded?: (client: ClientRecord) => void;
  /** Called after an admin reset replaced the state with a fresh run (so the store forgets the old one). */
  onReset?: (state: FederationState) => void;
  initial?: FederationState;
  /** Client registry restored from a store: rejoining with these tokens keeps identity and shard. */
  initialClients?: readonly PersistedClient[];
}

export class Federation {
  readonly spec: ModelSpec;
  /** Replaced (never mutated) by the admin's setStrategy/setRounds. */
  private cfg: ResolvedConfig;
  private readonly deps: FederationDeps;
  private readonly log: Logger;
  private readonly clients = new Map<string, ClientRecord>();
  private readonly byToken = new Map<string, string>();
  private state: FederationState;
  private phaseValue: Phase = "waiting";
  private pausedValue = false;
  private live: LiveRound | null = null;
  private gather: TimerHandle | null = null;
  private nextClientNo = 1;
  private nextShard = 0;
  private readonly backboneNames: TensorManifest;
  private readonly expertNames: TensorManifest[];

  constructor(deps: FederationDeps) {
    this.deps = deps;
    this.cfg = deps.config;
    this.log = deps.logger.child({ module: "federation" });
    this.spec = modelSpec(this.cfg.preset, this.cfg.experts);
    this.backboneNames = backboneManifest(this.spec);
    this.expertNames = Array.from({ length: this.cfg.experts }, (_, e) => expertManifest(this.spec, e));
    this.state = deps.initial ?? this.freshState();
    for (const p of deps.initialClients ?? []) this.restoreClient(p);
    if (this.cfg.rounds > 0 && this.state.round >= this.cfg.rounds) this.phaseValue = "finished";
  }

  private freshState(): FederationState {
    const initRng = this.deps.rng.fork();
    return {
      runId: this.deps.newToken().slice(0, 12),
      round: 0,
      backbone: initBackbone(this.spec, initRng),
      experts: Array.from({ length: this.cfg.experts }, (_, e) => initExpert(this.spec, e, initRng)),
      fitness: new FitnessMatrix(this.cfg.experts, this.cfg.q0),
      deficit: new Array<number>(this.cfg.experts).fill(0),
      cumulativeRouted: new Array<number>(this.cfg.experts).fill(0),
      history: [],
    };
  }

  private restoreClient(p: PersistedClient): void {
    const rec: ClientRecord = {
      id: p.id,
      token: p.token,
      capacity: p.capacity,
      backend: p.backend,
      label: p.label ?? undefined,
      shard: p.shard,
      online: false,
      ready: false,
      experts: [],
      lastRound: p.lastRound,
      accuracy: p.accuracy,
    };
    this.clients.set(rec.id, rec);
    this.byToken.set(rec.token, rec.id);
    const no = Number(/^c(\d+)$/.exec(rec.id)?.[1] ?? 0);
    this.nextClientNo = Math.max(this.nextClientNo, no + 1);
    // Shards are dealt round-robin in join order, so the next one follows the registry's length.
    this.nextShard = Math.max(this.nextShard, this.clients.size);
  }

  /** The client registry as it should be persisted. */
  registry(): PersistedClient[] {
    return [...this.clients.values()].map((c) => ({
      id: c.id,
      token: c.token,
      shard: c.shard,
      capacity: c.capacity,
      backend: c.backend,
      label: c.label ?? null,
      lastRound: c.lastRound,
      accuracy: c.accuracy,
    }));
  }

  get phase(): Phase {
    return this.phaseValue;
  }
  get round(): number {
    return this.state.round;
  }
  get currentRound(): number | null {
    return this.live?.round ?? null;
  }
  get snapshot(): Readonly<FederationState> {
    return this.state;
  }
  clientList(): readonly ClientRecord[] {
    return [...this.clients.values()];
  }
  client(id: string): ClientRecord | undefined {
    return this.clients.get(id);
  }

  join(req: JoinRequest): AckResult<JoinInfo> {
    let rec: ClientRecord | undefined;
    if (req.token !== undefined) {
      const id = this.byToken.get(req.token);
      rec = id === undefined ? undefined : this.clients.get(id);
      if (!rec) return protocolError(ErrorCode.UNKNOWN_TOKEN, "token not issued by this coordinator; join without one");
    }
    const capacity = Math.min(req.capacity, this.cfg.maxCapacity);
    if (rec) {
      rec.online = true;
      rec.ready = false;
      rec.capacity = capacity;
      rec.backend = req.backend;
    } else {
      const token = this.deps.newToken();
      rec = {
        id: `c${this.nextClientNo++}`,
        token,
        capacity,
        backend: req.backend,
        label: req.label?.trim() || undefined,
        shard: this.nextShard++ % this.cfg.shards,
        online: true,
        ready: false,
        experts: [],
        lastRound: 0,
        accuracy: null,
      };
      this.clients.set(rec.id, rec);
      this.byToken.set(token, rec.id);
      this.deps.onClientAdded?.(rec);
    }
    this.log.info({ client: rec.id, capacity, backend: req.backend }, "client joined");
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
    const id = this.byToken.get(token);
    return id === undefined ? undefined : this.clients.get(id)?.shard;
  }

  setReady(clientId: string, ready: boolean): void {
    const rec = this.clients.get(clientId);
    if (!rec) return;
    rec.ready = ready;
    this.maybeStart();
  }

  /** The socket is gone. A participant that has not answered is simply missing from the aggregate. */
  leave(clientId: string): void {
    const rec = this.clients.get(clientId);
    if (!rec) return;
    rec.online = false;
    rec.ready = false;
    this.log.info({ client: clientId }, "client left");
    const live = this.live;
    if (live && live.awaiting.delete(clientId) && live.awaiting.size === 0) this.closeRound("complete");
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
    return this.live ? Object.fromEntries([...this.live.experts].map(([id, ex]) => [id, [...ex]])) : null;
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
    this.state = this.freshState();
    for (const c of this.clients.values()) {
      c.experts = [];
      c.lastRound = 0;
      c.accuracy = null;
    }
    this.phaseValue = this.pausedValue ? "paused" : "waiting";
    this.log.info({ runId: this.state.runId }, "federation reset");
    this.deps.onReset?.(this.state);
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

  private eligible(): ClientRecord[] {
    return [...this.clients.values()].filter((c) => c.online && c.ready);
  }

  private maybeStart(): void {
    if (this.pausedValue || this.live || this.phaseValue === "finished") return;
    if (this.cfg.rounds > 0 && this.state.round >= this.cfg.rounds) {
      this.phaseValue = "finished";
      return;
    }
    if (this.eligible().length < this.cfg.minClients || this.gather) return;
    this.gather = this.deps.clock.timeout(this.cfg.gatherMs, () => {
      this.gather = null;
      if (!this.pausedValue && !this.live && this.eligible().length >= this.cfg.minClients) this.startRound();
    });
  }

  private startRound(): void {
    const participants = this.eligible().sort((a, b) => cmpId(a.id, b.id));
    const round = this.state.round + 1;
    const ids = participants.map((c) => c.id);
    const assignment = assign(
      {
        clients: ids.length,
        experts: this.cfg.experts,
        fitness: this.state.fitness.toDense(ids),
        capacity: participants.map((c) => c.capacity),
        slack: this.cfg.slack,
        deficit: this.state.deficit,
      },
      this.cfg.strategy,
      { rng: this.deps.rng, round },
    );
    const experts = new Map<string, number[]>();
    ids.forEach((id, i) => experts.set(id, assignment.experts[i] ?? []));
    this.live = {
      round,
      startedAt: this.deps.clock.now(),
      assignment,
      participants: ids,
      experts,
      awaiting: new Set(ids),
      updates: new Map(),
      deficitBefore: [...this.state.deficit],
      timer: this.deps.clock.timeout(this.cfg.roundTimeoutMs, () => this.closeRound("timeout")),
    };
    this.phaseValue = "training";
    this.log.info({ round, participants: ids.length, load: assignment.load, strategy: this.cfg.strategy }, "round started");
    // Clients holding the same expert set get the same bytes: encode each distinct set once.
    const frames = new Map<string, Uint8Array>();
    for (const c of participants) {
      const held = experts.get(c.id) ?? [];
      c.experts = held;
      const key = held.join(",");
      let frame = frames.get(key);
      if (!frame) {
        frame = encodeTensors([...this.state.backbone, ...held.flatMap((e) => this.state.experts[e] ?? [])], this.cfg.wireDType);
        frames.set(key, frame);
      }
      this.deps.send(c.id, {
        round,
        experts: held,
        weights: frame,
        training: { ...this.cfg.training },
        timeoutMs: this.cfg.roundTimeoutMs,
      });
    }
  }

  /** Validate an update against the live round and stash it. Nothing touches global state until the round closes. */
  submit(clientId: string, meta: UpdateMeta, frame: Uint8Array): AckResult<{ round: number }> {
    const live = this.live;
    if (!live || meta.round !== live.round)
      return protocolError(ErrorCode.STALE_ROUND, `round ${meta.round} is not open (open: ${live?.round ?? "none"})`);
    const held = live.experts.get(clientId);
    if (!held) return protocolError(ErrorCode.NOT_PARTICIPANT, `client ${clientId} is not in round ${live.round}`);
    if (live.updates.has(clientId)) return protocolError(ErrorCode.DUPLICATE_UPDATE, `update for round ${live.round} already received`);
    const fbErr = checkFeedback(meta, held);
    if (fbErr) return protocolError(fbErr.code, fbErr.message);
    const manifest = [...this.backboneNames, ...held.flatMap((e) => this.expertNames[e] ?? [])];
    // Bound the frame by what this manifest can need in float32, before the header is even parsed.
    const maxBytes = 4 * countParams(manifest) + (64 << 10);
    const decoded = decodeTensors(frame, manifest, { maxBytes });
    if (!decoded.ok) return protocolError(decoded.error.code, decoded.error.message);
    const tensors = decoded.value;
    const nb = this.backboneNames.length;
    const experts: PendingUpdate["experts"] = [];
    let offset = nb;
    for (const e of held) {
      const n = this.expertNames[e]?.length ?? 0;
      const usage = meta.feedback.find((f) => f.expert === e)?.usage ?? 0;
      experts.push({ expert: e, tensors: tensors.slice(offset, offset + n), usage });
      offset += n;
    }
    live.updates.set(clientId, { meta, backbone: tensors.slice(0, nb), experts });
    live.awaiting.delete(clientId);
    if (live.awaiting.size === 0) this.closeRound("complete");
    return { ok: true, value: { round: live.round } };
  }

  private aggregateOptions(): AggregateOptions {
    const c = this.cfg;
    return {
      ...(c.clipNorm > 0 && { clipNorm: c.clipNorm }),
      ...(c.aggregator === "trimmed" && { trim: c.trim }),
      ...(c.aggregator === "median" && { trim: 0.5 }),
    };
  }

  private closeRound(reason: RoundRecord["reason"]): void {
    const live = this.live;
    if (!live) return;
    live.timer.cancel();
    this.live = null;
    const updates = [...live.updates.entries()].sort(([a], [b]) => cmpId(a, b));
    // Below quorum (or nobody answered): nothing is applied, not even the deficits; the round is redone.
    if (updates.length < Math.max(1, this.cfg.quorum)) {
      this.abandon(live, reason, updates.length);
      return;
    }
    const E = this.cfg.experts;
    const next = aggregateRound(
      this.state.backbone,
      this.state.experts,
      updates.map(([, u]) => ({ backbone: u.backbone, numSamples: u.meta.numSamples, experts: u.experts })),
      this.aggregateOptions(),
    );
    this.state.backbone = next.backbone;
    this.state.experts = next.experts;
    for (const [id, u] of updates) {
      this.state.fitness.update(id, live.experts.get(id) ?? [], u.meta.feedback, { beta: this.cfg.beta, fitness: this.cfg.fitness });
    }
    const totalSlots = live.assignment.load.reduce((a, b) => a + b, 0);
    this.state.deficit = updateDeficit(this.state.deficit, live.assignment.load, totalSlots);
    const feedback = updates.map(([, u]) => u.meta.feedback);
    const routed = routedLoad(feedback, E);
    routed.forEach((r, e) => (this.state.cumulativeRouted[e] = (this.state.cumulativeRouted[e] ?? 0) + r));
    const evalN = updates.reduce((s, [, u]) => s + u.meta.evalSamples, 0);
    const wmean = (f: (m: UpdateMeta) => number): number | null =>
      evalN > 0 ? updates.reduce((s, [, u]) => s + f(u.meta) * u.meta.evalSamples, 0) / evalN : null;
    const holders = holdersLoad(live.assignment.experts, E);
    const hs = loadStats(holders);
    const record: RoundRecord = {
      round: live.round,
      startedAt: live.startedAt,
      closedAt: this.deps.clock.now(),
      reason,
      strategy: this.cfg.strategy,
      participants: updates.length,
      assigned: Object.fromEntries(live.experts),
      capacities: Object.fromEntries(live.participants.map((id) => [id, this.clients.get(id)?.capacity ?? 0])),
      bounds: live.assignment.bounds ?? null,
      deficitBefore: live.deficitBefore,
      accuracy: wmean((m) => m.evalAccuracy),
      loss: wmean((m) => m.evalLoss),
      load: holders,
      cv: hs.cv,
      routed,
      cvRouted: loadStats(routed).cv,
      cvRoutedCumulative: loadStats(this.state.cumulativeRouted).cv,
      maxOverMean: hs.maxOverMean,
      starved: hs.starved,
      objective: live.assignment.objective,
      feedback: Object.fromEntries(updates.map(([id, u]) => [id, u.meta.feedback])),
    };
    for (const [id, u] of updates) {
      const c = this.clients.get(id);
      if (c) {
        c.lastRound = live.round;
        c.accuracy = u.meta.evalAccuracy;
      }
    }
    this.state.round = live.round;
    this.state.history.push(record);
    this.deps.onRoundClosed?.(record, this.state);
    this.log.info({ round: live.round, reason, participants: updates.length, accuracy: record.accuracy, cv: record.cv }, "round closed");
    this.deps.broadcast({
      round: live.round,
      participants: updates.length,
      accuracy: record.accuracy,
      loss: record.loss,
      load: holders,
      cv: hs.cv,
    });
    this.phaseValue = this.pausedValue ? "paused" : "waiting";
    this.maybeStart();
  }

  /** A round that is not applied: global state is untouched, no round:closed goes out, and the same round number is run again. */
  private abandon(live: LiveRound, reason: RoundRecord["reason"], received: number): void {
    this.log.warn({ round: live.round, reason, received, quorum: this.cfg.quorum }, "round abandoned (below quorum); it will be redone");
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

/** c2 before c10: ids are "c" + a counter. */
function cmpId(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function checkFeedback(meta: UpdateMeta, held: readonly number[]): { code: ErrorCode; message: string } | null {
  const seen = new Set<number>();
  let usage = 0;
  for (const f of meta.feedback) {
    if (!held.includes(f.expert)) return { code: ErrorCode.NOT_ASSIGNED, message: `feedback for expert ${f.expert}, not assigned` };
    if (seen.has(f.expert)) return { code: ErrorCode.INVALID_PAYLOAD, message: `duplicate feedback for expert ${f.expert}` };
    seen.add(f.expert);
    if (f.accuracy < 0 || f.accuracy > 1)
      return { code: ErrorCode.INVALID_PAYLOAD, message: `feedback accuracy ${f.accuracy} outside [0, 1]` };
    if (f.loss < 0) return { code: ErrorCode.INVALID_PAYLOAD, message: `feedback loss ${f.loss} < 0` };
    usage += f.usage;
  }
  if (usage > meta.numSamples) return { code: ErrorCode.INVALID_PAYLOAD, message: `usage ${usage} exceeds numSamples ${meta.numSamples}` };
  if (meta.evalAccuracy < 0 || meta.evalAccuracy > 1)
    return { code: ErrorCode.INVALID_PAYLOAD, message: `evalAccuracy ${meta.evalAccuracy} outside [0, 1]` };
  if (meta.evalLoss < 0 || meta.trainLoss < 0) return { code: ErrorCode.INVALID_PAYLOAD, message: "losses must be >= 0" };
  return null;
}

/**
 * One volunteer's session: join (or rejoin with the stored token), fetch the data shard once while the
 * page settles its backend for the model the join named (`prepare`; a rejoin if that changes the
 * backend or capacity the join carried), then for every round: load the received weights and the own
 * gate, measure accuracy on the held-out split, train locally, upload backbone + assigned experts and
 * per-expert feedback.
 */
import {
  clientManifest,
  clientRng,
  splitClientTensors,
  decodeShard,
  decodeTensors,
  encodeTensors,
  PROTOCOL_VERSION,
  toBytes,
  type AckOf,
  type ClientToServerEvents,
  type JoinInfo,
  type NamedTensor,
  type RoundStart,
  type RoundSummary,
  type ServerToClientEvents,
  type LabeledSet,
  type Shard,
} from "@flexmoe/core";
import type { MoeTrainer } from "@flexmoe/model";
import { gateForRound, initGate, modelLayout, modelSpec, type ModelSpec } from "@flexmoe/model/spec";
import { io, type Socket } from "socket.io-client";
import type { TfBackend } from "./backend-choice.ts";
import { RoundQueue, type AbortFlag } from "./rounds.ts";
import { loadGate, loadToken, saveGate, saveToken } from "./storage.ts";

export type SessionState =
  | "connecting"
  | "joined"
  | "downloading"
  | "preparing"
  | "waiting"
  | "training"
  | "uploading"
  | "paused"
  | "left"
  | "disconnected"
  | "ended"
  | "error";

/** What the page trains with, settled by `prepare` once the join has named the model (TF.js is loaded then). */
export interface Runtime {
  backend: TfBackend;
  capacity: number;
  createTrainer(spec: ModelSpec): MoeTrainer;
}

export interface SessionEvents {
  state(s: SessionState, detail?: string): void;
  joined(info: JoinInfo): void;
  round(round: number, experts: number[]): void;
  progress(fraction: number): void;
  accuracy(round: number, accuracy: number): void;
  closed(summary: RoundSummary): void;
}

const ACK_TIMEOUT_MS = 30_000;
/** RATE_LIMITED answers are retried after 0.5, 1, 2, 4 s: nothing was stored, the server asked us to slow down. */
const RATE_LIMIT_RETRIES = 4;

export class Session {
  private readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private info: JoinInfo | null = null;
  private spec: ModelSpec | null = null;
  private shard: Shard | null = null;
  private trainer: MoeTrainer | null = null;
  /** The runtime for one model (keyed by its spec), and whether its backend and capacity were applied. */
  private runtime: { key: string; promise: Promise<Runtime>; value: Runtime | null; applied: boolean } | null = null;
  private gate: NamedTensor[] | null = null;
  /** The experts of the last update the server took in this page's life (null after a reload: unknown). */
  private held: number[] | null = null;
  private paused = false;
  private readonly rounds = new RoundQueue({
    run: (start, signal) => this.runRound(start, signal),
    idle: (answered) => this.afterRound(answered),
  });
  private left = false;
  private capacityChanged = false;
  /** The volunteer's own drawings: they join the local training set and never leave the page. */
  private readonly own: { x: Float32Array[]; y: number[] } = { x: [], y: [] };

  constructor(
    private readonly opts: {
      url?: string;
      /** What the first join carries, before `prepare` has measured (the page's remembered choice or a guess). */
      capacity: number;
      backend: TfBackend;
      label?: string;
      prepare(spec: ModelSpec): Promise<Runtime>;
    },
    private readonly on: SessionEvents,
  ) {
    // Reconnection is socket.io-client's: after a drop or a coordinator restart it comes back and we rejoin.
    this.socket = opts.url ? io(opts.url, { transports: ["websocket"] }) : io({ transports: ["websocket"] });
    this.socket.on("connect", () => void this.join());
    this.socket.on("disconnect", () => {
      this.rounds.abort();
      if (!this.left) this.on.state("disconnected", "connection lost, reconnecting…");
    });
    // The server ended this connection (the same client joined elsewhere, or its token was copied): it
    // will not reconnect by itself (a server-side disconnect), and must not fight the other connection.
    this.socket.on("session:ended", (end) => {
      this.left = true;
      this.rounds.abort();
      if (end.reason === "revoked") saveToken(null);
      this.on.state(
        "ended",
        end.reason === "superseded"
          ? "this device joined from another tab or connection; reload to take part here again"
          : "your identity was used from two places and has been revoked; reload to join as a new volunteer",
      );
    });
    this.socket.on("round:started", (start) => this.rounds.started(start));
    this.socket.on("round:closed", (s) => this.on.closed(s));
    this.on.state("connecting");
  }

  private async join(): Promise<void> {
    // Socket.IO gives every connection a new id: a join outlived by its connection stops (see below).
    const connection = this.socket.id;
    this.capacityChanged = false;
    const token = loadToken();
    let res = await this.request("client:join", {
      protocol: PROTOCOL_VERSION,
      capacity: this.opts.capacity,
      backend: this.opts.backend,
      ...(token ? { token } : {}),
      ...(this.opts.label ? { label: this.opts.label } : {}),
    });
    if (!res.ok && (res.error.code === "UNKNOWN_TOKEN" || res.error.code === "TOKEN_REUSED")) {
      // A new coordinator run does not know us (or our token was revoked): start over as a new client.
      saveToken(null);
      this.shard = null;
      res = await this.request("client:join", { protocol: PROTOCOL_VERSION, capacity: this.opts.capacity, backend: this.opts.backend });
    }
    if (!res.ok) {
      this.on.state("error", `${res.error.code}: ${res.error.message}`);
      return;
    }
    const info = res.value;
    saveToken(info.token);
    if (this.info?.runId !== info.runId) {
      this.trainer?.dispose();
      this.trainer = null;
      this.gate = null;
      this.held = null;
    }
    this.info = info;
    this.spec = modelSpec(info.preset, info.experts, info.numClasses);
    this.on.joined(info);
    this.on.state("joined");
    const runtime = this.runtimeFor(this.spec);
    if (!this.shard) {
      this.on.state("downloading", "fetching your data shard");
      const resp = await fetch(info.shardUrl);
      if (!resp.ok) {
        this.on.state("error", `shard download failed: HTTP ${resp.status}`);
        return;
      }
      const decoded = decodeShard(new Uint8Array(await resp.arrayBuffer()));
      if (!decoded.ok) {
        this.on.state("error", decoded.error.message);
        return;
      }
      this.shard = decoded.value;
    }
    if (!runtime.value) this.on.state("preparing", "measuring this device");
    try {
      runtime.value = await runtime.promise;
    } catch (e) {
      this.on.state("error", `backend: ${(e as Error).message}`);
      return;
    }
    // The connection dropped (or the session ended) while this page measured: the next join carries on.
    if (this.socket.id !== connection || this.left) return;
    if (!runtime.applied) {
      runtime.applied = true;
      const { backend, capacity } = runtime.value;
      if (backend !== this.opts.backend || capacity !== this.opts.capacity) {
        // The coordinator should plan with what this page measured: rejoin (same token) carrying it.
        this.opts.backend = backend;
        this.opts.capacity = capacity;
        this.capacityChanged = true;
        this.rejoinIfCapacityChanged();
        return;
      }
    }
    if (!this.paused) await this.setReady(true);
    else this.on.state("paused");
  }

  private async setReady(ready: boolean): Promise<void> {
    const res = await this.request("client:ready", { ready });
    if (res.ok) this.on.state(ready ? "waiting" : "paused", ready ? "waiting for the next round" : undefined);
  }

  /** Starts `prepare` for this model once (a new run with another model prepares again). */
  private runtimeFor(spec: ModelSpec): NonNullable<Session["runtime"]> {
    const key = JSON.stringify(spec);
    if (this.runtime?.key !== key) this.runtime = { key, promise: this.opts.prepare(spec), value: null, applied: false };
    // Settled later in join(); an unhandled rejection here would be reported twice.
    this.runtime.promise.catch(() => {});
    return this.runtime;
  }

  /** The gate kept for this run, or a fresh one seeded by the run and this client (as the simulator seeds it). */
  private async ensureGate(spec: ModelSpec, info: JoinInfo): Promise<NamedTensor[]> {
    if (this.gate) return this.gate;
    const stored = await loadGate(info.runId);
    this.gate = stored ?? initGate(spec, clientRng(info.runId, info.clientId, "gate"));
    return this.gate;
  }

  /** One round: train, answer; true when the server took the update. Sequenced by {@link RoundQueue}. */
  private async runRound(start: RoundStart, signal: AbortFlag): Promise<boolean> {
    const { info, spec, shard } = this;
    if (!info || !spec || !shard) return false;
    let answered = false;
    try {
      this.on.round(start.round, start.experts);
      this.on.state("training", `round ${start.round}`);
      this.on.progress(0);
      const layout = modelLayout(spec);
      const decoded = decodeTensors(toBytes(start.weights), clientManifest(layout, start.experts));
      if (!decoded.ok) throw new Error(`${decoded.error.code}: ${decoded.error.message}`);
      const split = splitClientTensors(layout, start.experts, decoded.value);
      const experts = new Map(split.experts.map((x) => [x.expert, x.tensors]));
      const runtime = this.runtime?.value;
      if (!runtime) throw new Error("round started before the backend was ready");
      const trainer = (this.trainer ??= runtime.createTrainer(spec));
      const gate = gateForRound(await this.ensureGate(spec, info), this.held, start.experts, start.training.gateInit ?? "keep");
      trainer.load(split.backbone, experts, gate);
      const evalRes = await trainer.evaluate(shard.test);
      this.on.accuracy(start.round, evalRes.accuracy);
      const t0 = performance.now();
      const update = await trainer.train(this.trainingSet(shard.train), {
        ...start.training,
        rng: clientRng(info.runId, info.clientId, `train:${start.round}`),
        onProgress: (done, total) => this.on.progress(total > 0 ? done / total : 1),
        yieldToHost: () => new Promise((r) => setTimeout(r, 0)),
        signal,
      });
      if (signal.aborted) return false;
      this.on.state("uploading");
      const tensors = [...update.backbone, ...update.experts.flatMap((x) => x.tensors)];
      const res = await this.request("update:submit", {
        meta: {
          round: start.round,
          numSamples: update.numSamples,
          feedback: update.feedback,
          evalAccuracy: evalRes.accuracy,
          evalLoss: evalRes.loss,
          evalSamples: shard.test.n,
          trainLoss: update.trainLoss,
          trainMs: performance.now() - t0,
        },
        weights: encodeTensors(tensors),
      });
      answered = res.ok;
      if (!res.ok) this.on.state("waiting", `update not taken: ${res.error.code}`);
      else {
        // The new gate goes with the update the server took; a refused update leaves the old one.
        this.gate = update.gate;
        this.held = [...start.experts];
        await saveGate(info.runId, update.gate);
        this.on.state(this.paused ? "paused" : "waiting", "waiting for the next round");
      }
    } catch (e) {
      this.on.state("error", (e as Error).message);
    } finally {
      this.on.progress(1);
    }
    return answered;
  }

  private afterRound(answered: boolean): void {
    if (this.left) return;
    this.rejoinIfCapacityChanged();
    // A round this page did not answer in time took it out of the ready set (docs/protocol.md):
    // declare ready again, so the next round includes it.
    if (!answered && !this.paused && this.socket.connected && this.info) void this.setReady(true);
  }

  /** Every request has a deadline: a dead connection answers with a typed error, never hangs. */
  private async request<E extends keyof ClientToServerEvents>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<AckOf<E>> {
    for (let attempt = 0; ; attempt++) {
      let res: AckOf<E>;
      try {
        // socket.io's typings cannot follow a generic event name through emitWithAck.
        const socket = this.socket.timeout(ACK_TIMEOUT_MS) as unknown as { emitWithAck(e: string, p: unknown): Promise<AckOf<E>> };
        res = await socket.emitWithAck(event, payload);
      } catch {
        return { ok: false, error: { code: "INTERNAL", message: `${event}: no answer within ${ACK_TIMEOUT_MS / 1000}s` } };
      }
      if (res.ok || res.error.code !== "RATE_LIMITED" || attempt >= RATE_LIMIT_RETRIES || this.left) return res;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }

  /** The shard's training split plus the volunteer's own samples. */
  private trainingSet(train: LabeledSet): LabeledSet {
    const n = this.own.y.length;
    if (n === 0) return train;
    const d = train.shape[0] * train.shape[1] * train.shape[2];
    const x = new Float32Array((train.n + n) * d);
    x.set(train.x);
    this.own.x.forEach((s, i) => x.set(s, (train.n + i) * d));
    const y = new Uint8Array(train.n + n);
    y.set(train.y);
    y.set(this.own.y, train.n);
    return { ...train, x, y, n: train.n + n };
  }

  /** Add one own sample (28x28 values in [0, 1]) to the local training set; returns how many there are. */
  addSample(pixels: Float32Array, label: number): number {
    if (pixels.length !== 784) throw new RangeError(`a sample has 784 values, got ${pixels.length}`);
    if (!Number.isInteger(label) || label < 0 || label > 9) throw new RangeError(`label must be 0..9, got ${label}`);
    this.own.x.push(pixels.slice());
    this.own.y.push(label);
    return this.own.y.length;
  }

  get ownSamples(): number {
    return this.own.y.length;
  }

  /** Run the current personalized model (last round's weights after local training, own gate); null before the first round. */
  async predict(pixels: Float32Array): Promise<{ probs: number[]; gate: number[]; topExpert: number } | null> {
    return this.trainer ? this.trainer.predict(pixels) : null;
  }

  /** Capacity takes effect through a rejoin (same token, same identity), so it waits for a round in progress. */
  setCapacity(capacity: number): void {
    this.opts.capacity = capacity;
    this.capacityChanged = true;
    if (!this.rounds.busy) this.rejoinIfCapacityChanged();
  }

  private rejoinIfCapacityChanged(): void {
    if (!this.capacityChanged || !this.info || this.left) return;
    this.capacityChanged = false;
    this.socket.disconnect();
    this.socket.connect();
  }

  get capacity(): number {
    return this.opts.capacity;
  }

  async setPaused(paused: boolean): Promise<void> {
    this.paused = paused;
    if (this.socket.connected && this.info) await this.setReady(!paused);
  }

  leave(): void {
    this.left = true;
    this.rounds.abort();
    this.socket.disconnect();
    this.trainer?.dispose();
    this.trainer = null;
    this.on.state("left", "you left; reload the page to join again");
  }
}

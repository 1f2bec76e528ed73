/**
 * One volunteer's session: join (or rejoin with the stored token), fetch the data shard once,
 * then for every round: load the received weights and the own gate, measure accuracy on the
 * held-out split, train locally, upload backbone + assigned experts and per-expert feedback.
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
import { MoeTrainer } from "@flexmoe/model";
import { initGate, modelLayout, modelSpec, type ModelSpec } from "@flexmoe/model/spec";
import { io, type Socket } from "socket.io-client";
import type { TfBackend } from "./backend.ts";
import { loadGate, loadToken, saveGate, saveToken } from "./storage.ts";

export type SessionState =
  "connecting" | "joined" | "downloading" | "waiting" | "training" | "uploading" | "paused" | "left" | "disconnected" | "error";

export interface SessionEvents {
  state(s: SessionState, detail?: string): void;
  joined(info: JoinInfo): void;
  round(round: number, experts: number[]): void;
  progress(fraction: number): void;
  accuracy(round: number, accuracy: number): void;
  closed(summary: RoundSummary): void;
}

const ACK_TIMEOUT_MS = 30_000;

export class Session {
  private readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private info: JoinInfo | null = null;
  private spec: ModelSpec | null = null;
  private shard: Shard | null = null;
  private trainer: MoeTrainer | null = null;
  private gate: NamedTensor[] | null = null;
  private paused = false;
  private busy = false;
  private abort = { aborted: false };
  private left = false;
  private capacityChanged = false;
  /** The volunteer's own drawings: they join the local training set and never leave the page. */
  private readonly own: { x: Float32Array[]; y: number[] } = { x: [], y: [] };

  constructor(
    private readonly opts: { url?: string; capacity: number; backend: TfBackend; label?: string },
    private readonly on: SessionEvents,
  ) {
    // Reconnection is socket.io-client's: after a drop or a coordinator restart it comes back and we rejoin.
    this.socket = opts.url ? io(opts.url, { transports: ["websocket"] }) : io({ transports: ["websocket"] });
    this.socket.on("connect", () => void this.join());
    this.socket.on("disconnect", () => {
      this.abort.aborted = true;
      if (!this.left) this.on.state("disconnected", "connection lost, reconnecting…");
    });
    this.socket.on("round:started", (start) => void this.runRound(start));
    this.socket.on("round:closed", (s) => this.on.closed(s));
    this.on.state("connecting");
  }

  private async join(): Promise<void> {
    this.abort = { aborted: false };
    this.capacityChanged = false;
    const token = loadToken();
    let res = await this.request("client:join", {
      protocol: PROTOCOL_VERSION,
      capacity: this.opts.capacity,
      backend: this.opts.backend,
      ...(token ? { token } : {}),
      ...(this.opts.label ? { label: this.opts.label } : {}),
    });
    if (!res.ok && res.error.code === "UNKNOWN_TOKEN") {
      // A new coordinator run does not know us: start over as a new client.
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
    }
    this.info = info;
    this.spec = modelSpec(info.preset, info.experts, info.numClasses);
    this.on.joined(info);
    this.on.state("joined");
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
    if (!this.paused) await this.setReady(true);
    else this.on.state("paused");
  }

  private async setReady(ready: boolean): Promise<void> {
    const res = await this.request("client:ready", { ready });
    if (res.ok) this.on.state(ready ? "waiting" : "paused", ready ? "waiting for the next round" : undefined);
  }

  /** The gate kept for this run, or a fresh one seeded by the run and this client (as the simulator seeds it). */
  private async ensureGate(spec: ModelSpec, info: JoinInfo): Promise<NamedTensor[]> {
    if (this.gate) return this.gate;
    const stored = await loadGate(info.runId);
    this.gate = stored ?? initGate(spec, clientRng(info.runId, info.clientId, "gate"));
    return this.gate;
  }

  private async runRound(start: RoundStart): Promise<void> {
    const { info, spec, shard } = this;
    if (!info || !spec || !shard || this.busy) return;
    this.busy = true;
    const signal = (this.abort = { aborted: false });
    try {
      this.on.round(start.round, start.experts);
      this.on.state("training", `round ${start.round}`);
      this.on.progress(0);
      const layout = modelLayout(spec);
      const decoded = decodeTensors(toBytes(start.weights), clientManifest(layout, start.experts));
      if (!decoded.ok) throw new Error(`${decoded.error.code}: ${decoded.error.message}`);
      const split = splitClientTensors(layout, start.experts, decoded.value);
      const experts = new Map(split.experts.map((x) => [x.expert, x.tensors]));
      const trainer = (this.trainer ??= new MoeTrainer(spec));
      trainer.load(split.backbone, experts, await this.ensureGate(spec, info));
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
      if (signal.aborted) return;
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
      if (!res.ok) this.on.state("waiting", `update not taken: ${res.error.code}`);
      else {
        // The new gate goes with the update the server took; a refused update leaves the old one.
        this.gate = update.gate;
        await saveGate(info.runId, update.gate);
        this.on.state(this.paused ? "paused" : "waiting", "waiting for the next round");
      }
    } catch (e) {
      this.on.state("error", (e as Error).message);
    } finally {
      this.on.progress(1);
      this.busy = false;
      this.rejoinIfCapacityChanged();
    }
  }

  /** Every request has a deadline: a dead connection answers with a typed error, never hangs. */
  private async request<E extends keyof ClientToServerEvents>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<AckOf<E>> {
    try {
      // socket.io's typings cannot follow a generic event name through emitWithAck.
      const socket = this.socket.timeout(ACK_TIMEOUT_MS) as unknown as { emitWithAck(e: string, p: unknown): Promise<AckOf<E>> };
      return await socket.emitWithAck(event, payload);
    } catch {
      return { ok: false, error: { code: "INTERNAL", message: `${event}: no answer within ${ACK_TIMEOUT_MS / 1000}s` } };
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
    if (!this.busy) this.rejoinIfCapacityChanged();
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
    this.abort.aborted = true;
    this.socket.disconnect();
    this.trainer?.dispose();
    this.trainer = null;
    this.on.state("left", "you left; reload the page to join again");
  }
}

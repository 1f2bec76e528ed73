/**
 * A protocol client that really trains: it speaks the page's protocol over a real socket, fetches its
 * shard, and answers each round with core's layout and the model package's runLocalRound, seeded the
 * way the page is (clientRng of the run and its id). In Node it needs a TF.js backend set up first.
 */
import {
  clientManifest,
  clientRng,
  decodeShard,
  decodeTensors,
  encodeTensors,
  PROTOCOL_VERSION,
  splitClientTensors,
  toBytes,
  type AckOf,
  type ClientToServerEvents,
  type JoinInfo,
  type NamedTensor,
  type RoundStart,
  type ServerToClientEvents,
  type Shard,
} from "@flexmoe/core";
import { MoeTrainer, runLocalRound } from "@flexmoe/model";
import { gateForRound, initGate, modelLayout, modelSpec } from "@flexmoe/model/spec";
import { io, type Socket } from "socket.io-client";

export interface TrainingClientOptions {
  url: string;
  capacity: number;
  backend: "wasm" | "cpu";
  /** Per-request deadline. @default 30 s */
  ackTimeoutMs?: number;
}

export class TrainingClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  info: JoinInfo | null = null;
  readonly acks: AckOf<"update:submit">[] = [];
  readonly errors: string[] = [];
  private shard: Shard | null = null;
  private trainer: MoeTrainer | null = null;
  private gate: NamedTensor[] | null = null;
  /** The experts of the last update the server took (what the gate was trained with). */
  private held: number[] | null = null;
  /** Rounds are answered one at a time, in the order they arrive. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: TrainingClientOptions) {
    this.socket = io(opts.url, { transports: ["websocket"], forceNew: true, reconnection: false });
    this.socket.on("round:started", (s) => {
      this.queue = this.queue.then(() => this.answer(s)).catch((e: unknown) => void this.errors.push(String(e)));
    });
  }

  private async request<E extends keyof ClientToServerEvents>(event: E, payload: unknown): Promise<AckOf<E>> {
    const s = this.socket.timeout(this.opts.ackTimeoutMs ?? 30_000) as unknown as { emitWithAck(e: string, p: unknown): Promise<AckOf<E>> };
    return s.emitWithAck(event, payload);
  }

  /** Joins, downloads the shard, and declares itself ready. */
  async join(): Promise<JoinInfo> {
    if (!this.socket.connected) await new Promise<void>((r) => this.socket.once("connect", () => r()));
    const res = await this.request("client:join", { protocol: PROTOCOL_VERSION, capacity: this.opts.capacity, backend: this.opts.backend });
    if (!res.ok) throw new Error(`join failed: ${res.error.code} ${res.error.message}`);
    const info = (this.info = res.value);
    const resp = await fetch(new URL(info.shardUrl, this.opts.url));
    if (!resp.ok) throw new Error(`shard download failed: HTTP ${resp.status}`);
    const shard = decodeShard(new Uint8Array(await resp.arrayBuffer()));
    if (!shard.ok) throw new Error(shard.error.message);
    this.shard = shard.value;
    const ready = await this.request("client:ready", { ready: true });
    if (!ready.ok) throw new Error(`ready failed: ${ready.error.code}`);
    return info;
  }

  private async answer(start: RoundStart): Promise<void> {
    const { info, shard } = this;
    if (!info || !shard) throw new Error("round before join");
    const spec = modelSpec(info.preset, info.experts, info.numClasses);
    const layout = modelLayout(spec);
    const decoded = decodeTensors(toBytes(start.weights), clientManifest(layout, start.experts));
    if (!decoded.ok) throw new Error(`bad frame from server: ${decoded.error.message}`);
    const split = splitClientTensors(layout, start.experts, decoded.value);
    const trainer = (this.trainer ??= new MoeTrainer(spec));
    const own = (this.gate ??= initGate(spec, clientRng(info.runId, info.clientId, "gate")));
    const gate = gateForRound(own, this.held, start.experts, start.training.gateInit ?? "keep");
    const t0 = performance.now();
    const { eval: ev, update } = await runLocalRound(
      trainer,
      { backbone: split.backbone, experts: new Map(split.experts.map((x) => [x.expert, x.tensors])), gate },
      shard,
      { ...start.training, rng: clientRng(info.runId, info.clientId, `train:${start.round}`) },
    );
    const res = await this.request("update:submit", {
      meta: {
        round: start.round,
        numSamples: update.numSamples,
        feedback: update.feedback,
        evalAccuracy: ev.accuracy,
        evalLoss: ev.loss,
        evalSamples: ev.samples,
        trainLoss: update.trainLoss,
        trainMs: performance.now() - t0,
      },
      weights: encodeTensors([...update.backbone, ...update.experts.flatMap((x) => x.tensors)]),
    });
    // The page keeps its new gate only when the server took the update.
    if (res.ok) {
      this.gate = update.gate;
      this.held = [...start.experts];
    }
    this.acks.push(res);
  }

  close(): void {
    this.socket.disconnect();
    this.trainer?.dispose();
    this.trainer = null;
  }
}

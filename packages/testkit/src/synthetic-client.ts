/**
 * A lightweight protocol client with no model: it answers each round with the weights it
 * received (optionally perturbed) and plausible feedback. Used by integration tests and by
 * the coordinator-capacity benchmark; it speaks the real protocol over a real socket.
 */
import {
  clientManifest,
  decodeTensors,
  encodeTensors,
  PROTOCOL_VERSION,
  toBytes,
  type AckOf,
  type ClientToServerEvents,
  type JoinInfo,
  type RoundStart,
  type RoundSummary,
  type ServerToClientEvents,
  type SessionEnded,
  type NamedTensor,
  type TensorManifest,
} from "@flexmoe/core";
import { modelLayout, modelSpec } from "@flexmoe/model/spec";
import { io, type Socket } from "socket.io-client";

export interface SyntheticClientOptions {
  url: string;
  capacity: number;
  token?: string;
  /** Answer rounds automatically (default true). */
  autoSubmit?: boolean;
  /** Delay before answering a round, ms. */
  delayMs?: number;
  /** Accuracy this client reports (per expert and for evaluation). */
  accuracy?: number;
  /** Reconnect after a drop (or a coordinator restart) and rejoin with the issued token, as the page does. */
  reconnect?: boolean;
  /** Training samples it claims (the coordinator bounds claims by the shard it dealt). @default 10 */
  numSamples?: number;
  /** Added to every weight it sends back: backbone and experts (a stand-in for a training step). @default 0 */
  step?: number;
  /** Added to the expert weights only, on top of `step` (a client pushing its experts away). @default 0 */
  expertStep?: number;
}

export class SyntheticClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  info: JoinInfo | null = null;
  readonly rounds: RoundStart[] = [];
  readonly closed: RoundSummary[] = [];
  readonly acks: AckOf<"update:submit">[] = [];
  /** Successful rejoins after a reconnect, and the errors of failed ones. */
  rejoins = 0;
  readonly rejoinErrors: string[] = [];
  /** session:ended notices (superseded, revoked); after one it no longer reconnects, as the page. */
  readonly ended: SessionEnded[] = [];
  private timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(private readonly opts: SyntheticClientOptions) {
    this.socket = io(opts.url, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: opts.reconnect === true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
    });
    if (opts.reconnect) {
      this.socket.io.on("reconnect", () => {
        this.join().then(
          () => this.rejoins++,
          (e: unknown) => this.rejoinErrors.push(e instanceof Error ? e.message : String(e)),
        );
      });
    }
    this.socket.on("round:started", (s) => {
      this.rounds.push(s);
      if (opts.autoSubmit === false) return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        // A client closed mid-round loses its pending ack; that is the scenario, not an error.
        this.submit(s).catch(() => undefined);
      }, opts.delayMs ?? 0);
      this.timers.add(t);
    });
    this.socket.on("round:closed", (s) => this.closed.push(s));
    this.socket.on("session:ended", (end) => {
      this.ended.push(end);
      this.socket.io.reconnection(false);
    });
  }

  /** Resolves when the socket is disconnected (at once if it already is). */
  disconnected(): Promise<void> {
    return this.socket.connected ? new Promise((r) => this.socket.once("disconnect", () => r())) : Promise.resolve();
  }

  async request<E extends keyof ClientToServerEvents>(event: E, payload: unknown, timeoutMs = 10_000): Promise<AckOf<E>> {
    const s = this.socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<AckOf<E>> };
    return s.emitWithAck(event, payload);
  }

  /** Join (or rejoin with the last token) and declare ready. `token` overrides the stored one. */
  async join(token?: string): Promise<JoinInfo> {
    const res = await this.joinOnly(token);
    if (!res.ok) throw new Error(`join failed: ${res.error.code} ${res.error.message}`);
    const ready = await this.request("client:ready", { ready: true });
    if (!ready.ok) throw new Error(`ready failed: ${ready.error.code}`);
    return res.value;
  }

  /** The join request alone (no ready), answered as it came; the token it answers is kept. */
  async joinOnly(token?: string): Promise<AckOf<"client:join">> {
    if (!this.socket.connected) await new Promise<void>((r) => this.socket.once("connect", () => r()));
    const use = token ?? this.info?.token ?? this.opts.token;
    const res = await this.request("client:join", {
      protocol: PROTOCOL_VERSION,
      capacity: this.opts.capacity,
      // No model runs here; the protocol has no test-only backend name, so it claims the plainest.
      backend: "cpu",
      ...(use !== undefined ? { token: use } : {}),
    });
    if (res.ok) this.info = res.value;
    return res;
  }

  manifestFor(experts: number[]): TensorManifest {
    const info = this.info!;
    return clientManifest(modelLayout(modelSpec(info.preset, info.experts, info.numClasses)), experts);
  }

  /** Build a well-formed update for a round (weights echoed back, feedback spread over the experts). */
  buildUpdate(start: RoundStart) {
    const decoded = decodeTensors(toBytes(start.weights), this.manifestFor(start.experts));
    if (!decoded.ok) throw new Error(`bad frame from server: ${decoded.error.message}`);
    const numSamples = this.opts.numSamples ?? 10;
    const acc = this.opts.accuracy ?? 0.5;
    const per = Math.floor(numSamples / start.experts.length);
    return {
      meta: {
        round: start.round,
        numSamples,
        feedback: start.experts.map((e) => ({ expert: e, usage: per, accuracy: acc, loss: 1 - acc })),
        evalAccuracy: acc,
        evalLoss: 1 - acc,
        evalSamples: 5,
        trainLoss: 1,
        trainMs: 1,
      },
      weights: encodeTensors(this.stepped(decoded.value, start.experts.length)),
    };
  }

  private stepped(tensors: NamedTensor[], heldExperts: number): NamedTensor[] {
    const step = this.opts.step ?? 0;
    const expertStep = this.opts.expertStep ?? 0;
    if (step === 0 && expertStep === 0) return tensors;
    // The frame is the backbone's tensors, then each held expert's (clientManifest's order).
    const expertTensors = heldExperts * this.expertTensorCount();
    return tensors.map((t, i) => {
      const d = step + (i >= tensors.length - expertTensors ? expertStep : 0);
      return { ...t, data: t.data.map((v) => v + d) };
    });
  }

  private expertTensorCount(): number {
    const info = this.info!;
    return modelLayout(modelSpec(info.preset, info.experts, info.numClasses)).experts[0]?.length ?? 0;
  }

  async submit(start: RoundStart): Promise<AckOf<"update:submit">> {
    const res = await this.request("update:submit", this.buildUpdate(start));
    this.acks.push(res);
    return res;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.socket.disconnect();
  }
}

/** A bare Socket.IO client (WebSocket only, never shared) for tests that speak to other namespaces. */
export function rawSocket(url: string): Socket {
  return io(url, { transports: ["websocket"], forceNew: true });
}

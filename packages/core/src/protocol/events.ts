/**
 * The one typed Socket.IO event map, shared by the coordinator and the web client.
 * Names are `domain:verb`: client requests are imperative, server broadcasts past tense.
 */
import type { FeedbackMode } from "../types.ts";
import type { AckResult } from "./errors.ts";
import type { BackendName, JoinRequest, ReadyRequest, UpdateSubmit } from "./schemas.ts";

export interface TrainingConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** When the client measures the per-expert feedback it uploads (docs/protocol.md, "Feedback"). */
  feedback: FeedbackMode;
  /**
   * Weight of a Switch-style load-balancing term on the client's gate over its assigned experts,
   * balance * k * sum_j f_j P_j (f_j: the batch's share of top choices, P_j: its mean gate weight);
   * absent or 0 = off (docs/protocol.md, "Training").
   */
  balance?: number;
  /**
   * The gate columns of experts the client did not hold last round: "keep" them, or set each to the
   * "mean" of the columns of the experts it keeps holding; absent = "keep".
   */
  gateInit?: "keep" | "mean";
}

export interface JoinInfo {
  clientId: string;
  /**
   * Keep it, replacing the one sent: every rejoin answers a new token (rotation), so a copied one is
   * detected when both are used. Rejoining with it restores identity, shard and fitness row.
   */
  token: string;
  /** The capacity the coordinator granted (it may cap what was asked). */
  capacity: number;
  experts: number;
  preset: "cnn" | "dense";
  numClasses: number;
  /** Where to fetch this client's data shard (train + held-out), binary. */
  shardUrl: string;
  /** Changes when the coordinator starts a new federation; a stored gate from another run is discarded. */
  runId: string;
  round: number;
}

export interface RoundStart {
  round: number;
  /** Experts this client holds this round, sorted. */
  experts: number[];
  /** Backbone then the assigned experts, one wire frame (packages/core wire.ts). */
  weights: Uint8Array | ArrayBuffer;
  training: TrainingConfig;
  /** Milliseconds from now until the round closes without this client. */
  timeoutMs: number;
}

export interface RoundSummary {
  round: number;
  participants: number;
  accuracy: number | null;
  loss: number | null;
  load: number[];
  cv: number;
}

/** Why the server ended this connection's session (sent just before it disconnects the socket). */
export interface SessionEnded {
  /**
   * superseded: the same client joined on another connection (another tab, or a reconnect);
   * revoked: its token was used from two places (TOKEN_REUSED). Neither should be answered by an
   * automatic rejoin: the page stops and lets its user decide.
   */
  reason: "superseded" | "revoked";
  message: string;
}

export interface ClientToServerEvents {
  "client:join": (req: JoinRequest, ack: (res: AckResult<JoinInfo>) => void) => void;
  "client:ready": (req: ReadyRequest, ack: (res: AckResult<{ ready: boolean }>) => void) => void;
  "update:submit": (req: UpdateSubmit, ack: (res: AckResult<{ round: number }>) => void) => void;
}

/** What the server acknowledges an event with (the ack callback's argument). */
export type AckOf<E extends keyof ClientToServerEvents> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];

export interface ServerToClientEvents {
  "round:started": (start: RoundStart) => void;
  "round:closed": (summary: RoundSummary) => void;
  "session:ended": (end: SessionEnded) => void;
}

export interface SocketData {
  clientId?: string;
  backend?: BackendName;
}

/** One client as the dashboard shows it. */
export interface DashboardClient {
  id: string;
  label: string | null;
  backend: string;
  capacity: number;
  /** Experts held in the current or last round this client took part in. */
  experts: number[];
  online: boolean;
  ready: boolean;
  lastRound: number;
  accuracy: number | null;
}

/** One completed round as the dashboard charts it. */
export interface DashboardRound {
  round: number;
  strategy: string;
  /** Clients that submitted an update. */
  participants: number;
  /** Sample-weighted mean of the personalized accuracy measured before local training. */
  accuracy: number | null;
  loss: number | null;
  /** Holders per expert (the assignment load). */
  load: number[];
  cv: number;
  /** Samples routed per expert (clients' feedback). */
  routed: number[];
  /** CV of `routed`. */
  cvRouted: number;
}

/** The whole dashboard, pushed on connect and after every change (coalesced). */
export interface DashboardState {
  runId: string;
  phase: "waiting" | "training" | "paused" | "finished";
  /** Completed rounds. */
  round: number;
  currentRound: number | null;
  /** Round limit, 0 = unbounded. */
  rounds: number;
  strategy: string;
  experts: number;
  minClients: number;
  /** URLs a volunteer can open to join (the first is the one for the QR code). */
  joinUrls: string[];
  /** At most a few hundred: online clients first (see `totals` for the whole registry). */
  clients: DashboardClient[];
  /** The last few hundred completed rounds (`totals.rounds` counts all of them). */
  history: DashboardRound[];
  /** Sizes of the whole run, so a bounded snapshot still tells how much there is. */
  totals: { clients: number; online: number; ready: number; rounds: number };
  /** The fitness matrix Q for `fitness.clients` (rows) x experts. */
  fitness: { clients: string[]; q: number[][] };
  /** Experts per client in the open round, or the last completed one. */
  assignment: Record<string, number[]>;
}

/** Namespace `/dashboard`: server → dashboard only; admin commands go over HTTP (`POST /api/admin`). */
export interface DashboardServerToClientEvents {
  "dashboard:state": (state: DashboardState) => void;
}

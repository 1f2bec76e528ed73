/**
 * The dashboard's view of a federation: one plain, JSON-safe snapshot (core's DashboardState).
 * Bounded whatever the registry and history grow to: at most DASHBOARD_CLIENTS clients (online first)
 * and the last DASHBOARD_ROUNDS rounds, with totals for the rest. Every number it copies is checked,
 * so one malformed record cannot throw here (this runs on every dashboard connection).
 */
import type { DashboardClient, DashboardRound, DashboardState } from "@flexmoe/core";
import { viewOf } from "../clients.ts";
import type { Federation, RoundRecord } from "../federation.ts";

export const DASHBOARD_CLIENTS = 200;
export const DASHBOARD_ROUNDS = 500;

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const numOrNull = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const nums = (v: unknown): number[] => (Array.isArray(v) ? v.map(num) : []);

/** The clients worth showing first: online (ready before idle), then the most recently active. */
export function listedClients<C extends { online: boolean; ready: boolean; lastRound: number }>(all: readonly C[], max: number): C[] {
  if (all.length <= max) return [...all];
  const rank = (c: C) => (c.online ? (c.ready ? 0 : 1) : 2);
  // Stable: ties keep registration order.
  return [...all].sort((a, b) => rank(a) - rank(b) || b.lastRound - a.lastRound).slice(0, max);
}

function dashboardRound(h: RoundRecord): DashboardRound {
  return {
    round: num(h.round),
    strategy: typeof h.strategy === "string" ? h.strategy : "",
    participants: num(h.participants),
    accuracy: numOrNull(h.accuracy),
    loss: numOrNull(h.loss),
    load: nums(h.load),
    cv: num(h.cv),
    routed: nums(h.routed),
    cvRouted: num(h.cvRouted),
  };
}

/**
 * What a dashboard is built from, whoever runs the rounds: the one-process federation or a cluster's
 * leader (which has no client registry of its own, only the ready clients and the plans).
 */
export interface DashboardSource<C extends { id: string; online: boolean; ready: boolean; lastRound: number }> extends Pick<
  DashboardState,
  "runId" | "phase" | "round" | "currentRound" | "rounds" | "strategy" | "experts" | "minClients"
> {
  clients: readonly C[];
  view: (c: C) => DashboardClient;
  history: readonly RoundRecord[];
  fitness: { toDense(ids: readonly string[]): Float64Array };
  /** Experts per client of the open round, null between rounds. */
  openAssignment: Readonly<Record<string, readonly number[]>> | null;
}

export function dashboardView<C extends { id: string; online: boolean; ready: boolean; lastRound: number }>(
  src: DashboardSource<C>,
  joinUrls: readonly string[],
): DashboardState {
  const clients = listedClients(src.clients, DASHBOARD_CLIENTS);
  const last = src.history[src.history.length - 1];
  const ids = clients.map((c) => c.id);
  const source: Readonly<Record<string, readonly number[]>> =
    src.openAssignment ?? (last && typeof last.assigned === "object" ? last.assigned : {});
  const assignment: Record<string, number[]> = {};
  for (const id of ids) {
    const ex = source[id];
    if (ex !== undefined) assignment[id] = nums(ex);
  }
  const E = src.experts;
  const dense = src.fitness.toDense(ids);
  return {
    runId: src.runId,
    phase: src.phase,
    round: src.round,
    currentRound: src.currentRound,
    rounds: src.rounds,
    strategy: src.strategy,
    experts: E,
    minClients: src.minClients,
    joinUrls: [...joinUrls],
    clients: clients.map(src.view),
    history: src.history.slice(-DASHBOARD_ROUNDS).map(dashboardRound),
    totals: {
      clients: src.clients.length,
      online: src.clients.filter((c) => c.online).length,
      ready: src.clients.filter((c) => c.ready).length,
      rounds: src.history.length,
    },
    fitness: { clients: ids, q: ids.map((_, c) => Array.from(dense.subarray(c * E, (c + 1) * E))) },
    assignment,
  };
}

export function dashboardState(f: Federation, joinUrls: readonly string[]): DashboardState {
  const s = f.snapshot;
  return dashboardView(
    {
      runId: s.runId,
      phase: f.phase,
      round: s.round,
      currentRound: f.currentRound,
      rounds: f.roundLimit,
      strategy: f.strategy,
      experts: f.spec.experts,
      minClients: f.config.minClients,
      clients: f.clientList(),
      view: viewOf,
      history: s.history,
      fitness: s.fitness,
      openAssignment: f.openAssignment,
    },
    joinUrls,
  );
}

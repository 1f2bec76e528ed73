/**
 * The dashboard's view of a federation: one plain, JSON-safe snapshot (core's DashboardState).
 * Bounded whatever the registry and history grow to: at most DASHBOARD_CLIENTS clients (online first)
 * and the last DASHBOARD_ROUNDS rounds, with totals for the rest. Every number it copies is checked,
 * so one malformed record cannot throw here (this runs on every dashboard connection).
 */
import type { DashboardRound, DashboardState } from "@flexmoe/core";
import { viewOf } from "../clients.ts";
import type { ClientRecord, Federation, RoundRecord } from "../federation.ts";

export const DASHBOARD_CLIENTS = 200;
export const DASHBOARD_ROUNDS = 500;

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const numOrNull = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const nums = (v: unknown): number[] => (Array.isArray(v) ? v.map(num) : []);

/** The clients worth showing first: online (ready before idle), then the most recently active. */
export function listedClients(all: readonly ClientRecord[], max: number): ClientRecord[] {
  if (all.length <= max) return [...all];
  const rank = (c: ClientRecord) => (c.online ? (c.ready ? 0 : 1) : 2);
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

export function dashboardState(f: Federation, joinUrls: readonly string[]): DashboardState {
  const s = f.snapshot;
  const all = f.clientList();
  const clients = listedClients(all, DASHBOARD_CLIENTS);
  const last = s.history[s.history.length - 1];
  const ids = clients.map((c) => c.id);
  const open = f.openAssignment;
  const source: Record<string, readonly number[]> = open ?? (last && typeof last.assigned === "object" ? last.assigned : {});
  const assignment: Record<string, number[]> = {};
  for (const id of ids) {
    const ex = source[id];
    if (ex !== undefined) assignment[id] = nums(ex);
  }
  const E = f.spec.experts;
  const dense = s.fitness.toDense(ids);
  return {
    runId: s.runId,
    phase: f.phase,
    round: s.round,
    currentRound: f.currentRound,
    rounds: f.roundLimit,
    strategy: f.strategy,
    experts: f.spec.experts,
    minClients: f.config.minClients,
    joinUrls: [...joinUrls],
    clients: clients.map(viewOf),
    history: s.history.slice(-DASHBOARD_ROUNDS).map(dashboardRound),
    totals: {
      clients: all.length,
      online: all.filter((c) => c.online).length,
      ready: all.filter((c) => c.ready).length,
      rounds: s.history.length,
    },
    fitness: { clients: ids, q: ids.map((_, c) => Array.from(dense.subarray(c * E, (c + 1) * E))) },
    assignment,
  };
}

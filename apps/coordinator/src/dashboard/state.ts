/** The dashboard's view of a federation: one plain, JSON-safe snapshot (core's DashboardState). */
import type { DashboardState } from "@flexmoe/core";
import { viewOf } from "../clients.ts";
import type { Federation } from "../federation.ts";

export function dashboardState(f: Federation, joinUrls: readonly string[]): DashboardState {
  const s = f.snapshot;
  const clients = f.clientList();
  const last = s.history[s.history.length - 1];
  const open = f.openAssignment;
  const assignment: Record<string, number[]> = open ?? {};
  if (!open && last) for (const [id, ex] of Object.entries(last.assigned)) assignment[id] = [...ex];
  const ids = clients.map((c) => c.id);
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
    history: s.history.map((h) => ({
      round: h.round,
      strategy: h.strategy,
      participants: h.participants,
      accuracy: h.accuracy,
      loss: h.loss,
      load: [...h.load],
      cv: h.cv,
      routed: [...h.routed],
      cvRouted: h.cvRouted,
    })),
    fitness: { clients: ids, q: ids.map((_, c) => Array.from(dense.subarray(c * E, (c + 1) * E))) },
    assignment,
  };
}

/**
 * The dashboard and /api/status against the real app: a crafted history record cannot take the
 * coordinator down on the first dashboard connection, and join churn does not grow the pushes, the
 * status answer or the registry file with every join.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { PROTOCOL_VERSION, type DashboardState } from "@flexmoe/core";
import { io, type Socket } from "@flexmoe/testkit";
import { STATUS_CLIENTS, STATUS_ROUNDS, type statusOf } from "../app.ts";
import type { FederationState, RoundRecord } from "../federation.ts";
import { silentLogger } from "../logger.ts";
import { persistenceHooks } from "../store/persist.ts";
import { FileRunStore } from "../store/store.ts";
import { DASHBOARD_CLIENTS, DASHBOARD_ROUNDS } from "./state.ts";
import { AppFixture } from "@flexmoe/testkit";

const fixture = new AppFixture();
const sockets: Socket[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await fixture.closeAll();
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
type Status = ReturnType<typeof statusOf>;

function dashboard(url: string): { states: DashboardState[]; socket: Socket } {
  const socket = io(`${url}/dashboard`, { transports: ["websocket"], forceNew: true, reconnection: false });
  sockets.push(socket);
  const states: DashboardState[] = [];
  socket.on("dashboard:state", (s: DashboardState) => states.push(s));
  return { states, socket };
}

/** A plausible completed round over 4 experts. */
function record(round: number): RoundRecord {
  return {
    round,
    strategy: "flex",
    participants: 2,
    accuracy: 0.5,
    loss: 1,
    load: [1, 1, 1, 1],
    cv: 0,
    routed: [5, 5, 5, 5],
    cvRouted: 0,
    startedAt: round * 10,
    closedAt: round * 10 + 5,
    reason: "complete",
    assigned: { c1: [0, 1], c2: [2, 3] },
    capacities: { c1: 2, c2: 2 },
    bounds: null,
    deficitBefore: [0, 0, 0, 0],
    cvRoutedCumulative: 0,
    maxVio: 0,
    trainLoss: 0.5,
    starved: 0,
    objective: 0,
    feedback: {},
  };
}

/** A fresh run's state with `history` in place of its (empty) history. */
async function stateWith(history: RoundRecord[]): Promise<FederationState> {
  const seed = await fixture.start();
  const s = seed.app.federation.snapshot;
  return { ...s, round: history.length, history };
}

describe("dashboard robustness", () => {
  it("a crafted history record does not crash the first dashboard connection or /api/status", async () => {
    const crafted = { ...record(1), load: { length: 1e9 }, routed: "boom", cv: "x", assigned: null, accuracy: Number.NaN };
    const initial = await stateWith([crafted as unknown as RoundRecord, record(2)]);
    const t = await fixture.start({ deps: { initial } });
    const { states } = dashboard(t.url);
    await vi.waitFor(() => expect(states.length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
    expect(states[0]!.history[0]).toMatchObject({ round: 1, load: [], routed: [], cv: 0, accuracy: null });
    expect(states[0]!.history[1]).toMatchObject({ round: 2, load: [1, 1, 1, 1] });
    const res = await fetch(`${t.url}/api/status`);
    expect(res.status).toBe(200);
    // Still a working coordinator: two clients run round 3.
    const a = t.client({ capacity: 2 });
    const b = t.client({ capacity: 2 });
    await Promise.all([a.join(), b.join()]);
    await vi.waitFor(() => expect(t.app.federation.round).toBe(3), { timeout: 8_000, interval: 20 });
  });
});

describe("bounded payloads under join churn", () => {
  it("300 join-and-leave clients and 600 rounds: pushes and /api/status stay bounded, the registry is appended, not rewritten", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "flexmoe-churn-"));
    dirs.push(dir);
    const store = new FileRunStore(dir);
    const hooks = persistenceHooks({
      store,
      clock: { now: () => 0, timeout: () => ({ cancel() {} }) },
      logger: silentLogger,
    });
    const initial = await stateWith(Array.from({ length: 600 }, (_, i) => record(i + 1)));
    const t = await fixture.start({
      config: { minClients: 1_000 }, // nobody trains: this is about the registry
      deps: { initial, onClientChanged: hooks.onClientChanged, limits: { joinBurstPerIp: 1_000 } },
    });
    const JOINS = 300;
    for (let batch = 0; batch < JOINS / 30; batch++) {
      await Promise.all(
        Array.from({ length: 30 }, async () => {
          const s = io(t.url, { transports: ["websocket"], forceNew: true, reconnection: false });
          sockets.push(s);
          const res = (await s.timeout(5_000).emitWithAck("client:join", { protocol: PROTOCOL_VERSION, capacity: 1, backend: "cpu" })) as {
            ok: boolean;
          };
          expect(res.ok).toBe(true);
          s.close();
        }),
      );
    }
    // Three stay online: they are listed first.
    const stay = await Promise.all([1, 2, 3].map(() => t.client({ capacity: 1 }).join()));
    await vi.waitFor(() => expect(t.app.federation.clientList().filter((c) => c.online)).toHaveLength(3), { timeout: 5_000, interval: 20 });

    const { states } = dashboard(t.url);
    await vi.waitFor(() => expect(states.length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
    const s = states.at(-1)!;
    expect(s.totals).toEqual({ clients: JOINS + 3, online: 3, ready: 3, rounds: 600 });
    expect(s.clients).toHaveLength(DASHBOARD_CLIENTS);
    expect(s.clients.slice(0, 3).map((c) => c.id)).toEqual(stay.map((i) => i.clientId));
    expect(s.fitness.clients).toHaveLength(DASHBOARD_CLIENTS);
    expect(s.history).toHaveLength(DASHBOARD_ROUNDS);
    expect(s.history.at(-1)!.round).toBe(600);

    const status = (await (await fetch(`${t.url}/api/status`)).json()) as Status;
    expect(status.totals).toMatchObject({ clients: JOINS + 3, online: 3, rounds: 600 });
    expect(status.clients).toHaveLength(STATUS_CLIENTS);
    expect(status.history).toHaveLength(STATUS_ROUNDS);

    // The registry: one appended line per new client, no whole-registry rewrite.
    expect(readdirSync(dir)).toEqual(["clients.jsonl"]);
    const lines = readFileSync(store.clientsPath, "utf8").trim().split("\n");
    expect(lines).toHaveLength(JOINS + 3);
    console.log(
      `churn: ${JOINS + 3} clients, 600 rounds: dashboard push ${JSON.stringify(s).length} B, /api/status ${JSON.stringify(status).length} B, clients.jsonl ${readFileSync(store.clientsPath).length} B`,
    );
  });
});

/**
 * Fault injection: 30% of the clients vanish mid-round (two disconnect, one goes silent with its
 * socket still open). The round still closes at the deadline with the 70% that answered, is
 * applied (Q rows of the survivors move, the vanished ones' do not), and later rounds proceed.
 */
import { afterEach, expect, it, vi } from "vitest";
import { AppFixture } from "@flexmoe/testkit";

const fixture = new AppFixture();
afterEach(() => fixture.closeAll());

it("closes and applies a round after 30% of the clients vanish mid-round; the silent one leaves the ready set; later rounds proceed", async () => {
  const { app, client } = await fixture.start({
    config: { minClients: 7, roundTimeoutSec: 1, shards: 10, quorum: 5 },
    samples: 300,
    seed: 3,
  });
  const stayers = Array.from({ length: 7 }, () => client({ capacity: 2, delayMs: 50, accuracy: 0.8 }));
  const leavers = Array.from({ length: 3 }, () => client({ capacity: 2, autoSubmit: false }));
  await Promise.all([...stayers, ...leavers].map((c) => c.join()));

  await vi.waitFor(() => expect(leavers.every((c) => c.rounds.length === 1)).toBe(true), { timeout: 8_000, interval: 10 });
  expect(app.federation.currentRound).toBe(1);
  leavers[0]!.close();
  leavers[1]!.close();
  // leavers[2] stays connected and silent: only the deadline gets rid of it.

  await vi.waitFor(() => expect(app.federation.round).toBe(1), { timeout: 5_000, interval: 20 });
  const r1 = app.federation.snapshot.history[0]!;
  expect(r1).toMatchObject({ round: 1, participants: 7, reason: "timeout" });
  expect(Object.keys(r1.assigned)).toHaveLength(10);
  const q = app.federation.snapshot.fitness;
  for (const c of stayers) expect(q.has(c.info!.clientId)).toBe(true);
  for (const c of leavers) expect(q.has(c.info!.clientId)).toBe(false);
  // The broadcast reaches the clients a moment after the server closed the round.
  await vi.waitFor(() => expect(stayers.every((c) => c.closed.some((s) => s.round === 1 && s.participants === 7))).toBe(true), {
    timeout: 5_000,
    interval: 20,
  });

  // The silent one is still connected but no longer ready: later rounds neither include nor wait for it.
  const silent = leavers[2]!.info!.clientId;
  expect(app.federation.client(silent)).toMatchObject({ online: true, ready: false });
  await vi.waitFor(() => expect(app.federation.round).toBe(3), { timeout: 8_000, interval: 20 });
  for (const h of app.federation.snapshot.history.slice(1)) {
    expect(h).toMatchObject({ participants: 7, reason: "complete" });
    expect(h.assigned[silent]).toBeUndefined();
  }
});

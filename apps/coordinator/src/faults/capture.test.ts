/**
 * Expert capture through self-reported feedback, against the real app: one client of four always
 * reports accuracy 1.0 and pushes its experts far from where it got them (every weight +5 a round,
 * inside the magnitude bound); the honest ones move theirs by 0.01. E = 8, k = 2: every expert has one
 * holder a round, so a robust rule over holders protects nothing. With the defaults (hold limit,
 * adaptive clipping) it cannot keep an expert for more than the limit, and no expert moves further
 * than the honest steps allow; with both off the same attack drags its experts away unchecked.
 */
import { afterEach, expect, it, vi } from "vitest";
import { AppFixture, type TestApp } from "@flexmoe/testkit";
import type { CoordinatorConfig } from "../config.ts";

const fixture = new AppFixture();
afterEach(() => fixture.closeAll());

const ROUNDS = 10;
const HONEST_STEP = 0.01;

async function attacked(config: CoordinatorConfig): Promise<{ t: TestApp; attacker: string; start: number[][] }> {
  // q0 below the liar's claim: what it held beats what it has not tried (as late in a run, when the
  // optimistic start has worn off), so the claim alone buys it the same experts.
  const t = await fixture.start({ config: { experts: 8, minClients: 4, rounds: ROUNDS, shards: 4, q0: 0.3, ...config } });
  const start = t.app.federation.snapshot.experts.map((e) => e.flatMap((x) => [...x.data]));
  const honest = [0, 1, 2].map(() => t.client({ capacity: 2, accuracy: 0.5, step: HONEST_STEP }));
  const liar = t.client({ capacity: 2, accuracy: 1, step: HONEST_STEP, expertStep: 5 });
  await Promise.all([...honest, liar].map((c) => c.join()));
  await vi.waitFor(() => expect(t.app.federation.round).toBe(ROUNDS), { timeout: 20_000, interval: 20 });
  return { t, attacker: liar.info!.clientId, start };
}

/** Longest run of consecutive rounds in which `id` held the same expert. */
function longestHold(t: TestApp, id: string): number {
  const streak = new Map<number, number>();
  let longest = 0;
  for (const h of t.app.federation.snapshot.history) {
    const held = new Set(h.assigned[id] ?? []);
    for (let e = 0; e < 8; e++) {
      const n = held.has(e) ? (streak.get(e) ?? 0) + 1 : 0;
      streak.set(e, n);
      longest = Math.max(longest, n);
    }
  }
  return longest;
}

function maxDrift(t: TestApp, start: number[][]): number {
  let m = 0;
  t.app.federation.snapshot.experts.forEach((e, i) => {
    const now = e.flatMap((x) => [...x.data]);
    now.forEach((v, j) => (m = Math.max(m, Math.abs(v - start[i]![j]!))));
  });
  return m;
}

it("with the defaults a liar keeps no expert beyond the hold limit and moves none beyond the honest steps' scale", async () => {
  const { t, attacker, start } = await attacked({});
  expect(t.config.maxHold).toBeGreaterThan(0);
  expect(longestHold(t, attacker)).toBeLessThanOrEqual(t.config.maxHold);
  // Adaptive clipping: each expert step is at most clipFactor x the lower-median step (an honest one).
  const bound = ROUNDS * t.config.clipFactor * HONEST_STEP * 1.01;
  expect(maxDrift(t, start)).toBeLessThanOrEqual(bound);
  const q = t.app.federation.snapshot.fitness;
  for (let e = 0; e < 8; e++) expect(q.get(attacker, e)).toBeLessThanOrEqual(1);
});

it("without the hold limit and clipping the same liar holds its experts round after round and drags them away", async () => {
  const { t, attacker, start } = await attacked({ maxHold: 0, clipFactor: 0 });
  expect(longestHold(t, attacker)).toBe(ROUNDS);
  expect(maxDrift(t, start)).toBeGreaterThan(10);
});

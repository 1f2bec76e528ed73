/** Round life-cycle rules driven without sockets: quorum, unheld experts, robust aggregation. */
import { describe, expect, it } from "vitest";
import { encodeTensors } from "@flexmoe/core";
import type { CoordinatorConfig } from "./config.ts";
import { type Harness, fingerprint, harness } from "@flexmoe/testkit";

function setup(n: number, capacity: number, cfg: CoordinatorConfig = {}): { h: Harness; ids: string[] } {
  const h = harness({ minClients: n, ...cfg });
  const ids = Array.from({ length: n }, () => {
    const r = h.federation.join({ protocol: 1, capacity, backend: "cpu" });
    if (!r.ok) throw new Error(r.error.message);
    return r.value.clientId;
  });
  ids.forEach((id) => h.federation.setReady(id, true));
  h.clock.advance(20);
  expect(h.federation.currentRound).toBe(1);
  return { h, ids };
}

const submit = (h: Harness, id: string, tamper?: Parameters<Harness["update"]>[1]) => {
  const u = h.update(id, tamper);
  const res = h.federation.submit(id, u.meta, u.frame);
  expect(res.ok, JSON.stringify(res)).toBe(true);
};

describe("quorum", () => {
  it("abandons a round that closes below quorum without touching model, Q, deficits or history, and redoes it", () => {
    const { h, ids } = setup(3, 2, { quorum: 3 });
    const before = fingerprint(h.federation);
    submit(h, ids[0]!);
    submit(h, ids[1]!);
    h.federation.leave(ids[2]!); // 2 of 3 answered, quorum 3
    expect(h.federation.currentRound).toBeNull();
    expect(fingerprint(h.federation)).toEqual(before);
    // The client comes back; round 1 runs again under the same number and is applied.
    const token = h.federation.registry()[2]!.token;
    expect(h.federation.join({ protocol: 1, token, capacity: 2, backend: "cpu" }).ok).toBe(true);
    h.federation.setReady(ids[2]!, true);
    h.clock.advance(20);
    expect(h.federation.currentRound).toBe(1);
    ids.forEach((id) => submit(h, id));
    expect(h.federation.round).toBe(1);
    expect(h.federation.snapshot.history[0]).toMatchObject({ round: 1, participants: 3, reason: "complete" });
  });

  it("applies a round that reaches quorum at the deadline", () => {
    const { h, ids } = setup(3, 2, { quorum: 2, roundTimeoutSec: 5 });
    submit(h, ids[0]!);
    submit(h, ids[1]!);
    h.clock.advance(5_000);
    expect(h.federation.snapshot.history[0]).toMatchObject({ round: 1, participants: 2, reason: "timeout" });
  });

  it("abandons a round nobody answered (quorum 1)", () => {
    const { h } = setup(2, 2, { roundTimeoutSec: 5 });
    const before = fingerprint(h.federation);
    h.clock.advance(5_000);
    expect(fingerprint(h.federation)).toEqual(before);
  });
});

describe("aggregation in the federation", () => {
  it("leaves an expert nobody held bit-for-bit unchanged", () => {
    const { h, ids } = setup(2, 1); // 2 slots over 4 experts: two experts have no holder
    const experts = h.federation.snapshot.experts.map((g) => Buffer.from(encodeTensors(g)).toString("base64"));
    const held = new Set(ids.flatMap((id) => h.lastStart(id).experts));
    expect(held.size).toBe(2);
    ids.forEach((id) => submit(h, id));
    expect(h.federation.round).toBe(1);
    h.federation.snapshot.experts.forEach((g, e) => {
      const now = Buffer.from(encodeTensors(g)).toString("base64");
      if (held.has(e)) expect(now).not.toBe(experts[e]);
      else expect(now).toBe(experts[e]);
    });
  });

  const attackedBackbone = (cfg: CoordinatorConfig) => {
    const { h, ids } = setup(5, 4, cfg);
    const g0 = h.federation.snapshot.backbone[0]!.data[0]!;
    // Four honest clients move +0.001; one sends a scaled update (x1000 of its delta, sign-flipped).
    ids.slice(0, 4).forEach((id) => submit(h, id));
    submit(h, ids[4]!, (t) => t.forEach((x) => x.data.forEach((v, j) => (x.data[j] = g0 + (v - g0) * -1000))));
    return h.federation.snapshot.backbone[0]!.data[0]! - g0;
  };

  it("wires --aggregator, --clip and --clip-factor through to the round", () => {
    const mean = attackedBackbone({ aggregator: "mean", clipFactor: 0 });
    const adaptive = attackedBackbone({ aggregator: "mean" });
    const median = attackedBackbone({ aggregator: "median" });
    const trimmed = attackedBackbone({ aggregator: "trimmed", trim: 0.2 });
    const clipped = attackedBackbone({ aggregator: "mean", clipNorm: 0.01 });
    expect(Math.abs(mean)).toBeGreaterThan(0.1);
    expect(median).toBeCloseTo(0.001, 5);
    expect(trimmed).toBeCloseTo(0.001, 5);
    expect(Math.abs(clipped)).toBeLessThan(0.01);
    // The default adaptive clip bounds the outlier by 3 x the honest step (0.001 per value here).
    expect(Math.abs(adaptive)).toBeLessThan(0.01);
  });
});

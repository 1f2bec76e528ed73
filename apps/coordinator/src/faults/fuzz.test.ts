/**
 * Fuzz: well over a thousand malformed or hostile messages against the real app over real sockets,
 * while a round is open. Each one must be answered with the right typed error (or, for events
 * outside the protocol, ignored and counted); the server must stay up; and the global model, Q,
 * deficits and history must be bit-for-bit what they were. Then the round still completes.
 */
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createRng, encodeTensors, type ErrorCode, type NamedTensor } from "@flexmoe/core";
import { maxFrameBytes, type statusOf } from "../app.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { NetLimits } from "../guard.ts";
import { AppFixture, fingerprint, type SyntheticClient } from "@flexmoe/testkit";

const ADMIN = "the-right-admin-token-0123456789";

const fixture = new AppFixture();
afterEach(() => fixture.closeAll());

async function start(overrides: CoordinatorConfig = {}, limits: Partial<NetLimits> = {}) {
  const t = await fixture.start({ config: { roundTimeoutSec: 120, ...overrides }, deps: { adminToken: ADMIN, limits } });
  const client = (capacity: number, autoSubmit = false) => t.client({ capacity, autoSubmit });
  return { ...t, client };
}

type Expect = ErrorCode | "ignored";

describe("fuzz", () => {
  it("answers 1,000+ hostile messages with typed errors and leaves model, Q and history untouched", async () => {
    // The limiters have their own tests (below, and per address in flood.test.ts); here every message must reach validation.
    const { app, url, client, config } = await start(
      { rateLimit: { burst: 100_000, perSec: 100_000 } },
      { joinBurstPerIp: 100_000, joinPerSecPerIp: 100_000 },
    );
    const a = client(2);
    const b = client(2);
    await Promise.all([a.join(), b.join()]);
    await vi.waitFor(() => expect(a.rounds).toHaveLength(1), { timeout: 8_000, interval: 20 });
    const observer = client(2); // joined after the round started: not a participant
    await observer.join();
    const stranger = client(2); // never joins
    await vi.waitFor(() => expect(stranger.socket.connected).toBe(true));

    const start1 = a.rounds[0]!;
    const good = a.buildUpdate(start1);
    const manifest = a.manifestFor(start1.experts);
    const tensors = (): NamedTensor[] =>
      manifest.map((m) => ({ name: m.name, shape: [...m.shape], data: new Float32Array(m.shape.reduce((x, y) => x * y, 1)).fill(0.01) }));
    const notHeld = [0, 1, 2, 3].filter((e) => !start1.experts.includes(e));
    const before = fingerprint(app.federation);
    const rng = createRng(2024);
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;

    const tally = new Map<string, number>();
    let answered = 0;
    let unknownSent = 0;
    const send = async (who: SyntheticClient, event: string, payload: unknown, want: Expect, label: string) => {
      tally.set(label, (tally.get(label) ?? 0) + 1);
      if (want === "ignored") {
        who.socket.emit(event as "client:ready", payload as { ready: boolean }, () => {}); // never answered: ignored
        unknownSent++;
        return;
      }
      const res = await who.request(event as "client:join", payload, 5_000);
      answered++;
      expect(res.ok, `${label}: ${JSON.stringify(res)}`).toBe(false);
      if (!res.ok) expect(res.error.code, `${label}: ${res.error.message}`).toBe(want);
    };
    const meta = (patch: Record<string, unknown>) => ({ ...good, meta: { ...good.meta, ...patch } });
    const junk = [null, 0, -1, 1e308, "", "x".repeat(1000), true, [], [1, 2], {}, { a: 1 }, Number.NaN, Number.POSITIVE_INFINITY];

    for (let i = 0; i < 60; i++) {
      // client:join with wrong types and shapes (never valid, so the stranger stays a stranger).
      await send(stranger, "client:join", pick(junk), "INVALID_PAYLOAD", "join: junk");
      await send(
        stranger,
        "client:join",
        { protocol: 1, capacity: pick([0, -2, 1.5, 65, "2", null]), backend: "cpu" },
        "INVALID_PAYLOAD",
        "join: capacity",
      );
      await send(
        stranger,
        "client:join",
        { protocol: 1, capacity: 2, backend: pick(["cuda", "", 7, null]) },
        "INVALID_PAYLOAD",
        "join: backend",
      );
      await send(stranger, "client:join", { protocol: 1, capacity: 2, backend: "cpu", extra: 1 }, "INVALID_PAYLOAD", "join: extra key");
      await send(
        stranger,
        "client:join",
        { protocol: 1, capacity: 2, backend: "cpu", token: pick(["short", "bad token with spaces!!", "x".repeat(200)]) },
        "INVALID_PAYLOAD",
        "join: malformed token",
      );
      // Forged tokens (well-formed, never issued) and a replayed one on an already-joined connection.
      await send(
        stranger,
        "client:join",
        { protocol: 1, capacity: 2, backend: "cpu", token: randomBytes(18).toString("base64url") },
        "UNKNOWN_TOKEN",
        "join: forged token",
      );
      await send(
        stranger,
        "client:join",
        { protocol: pick([0, 2, 99]), capacity: 2, backend: "cpu" },
        "UNSUPPORTED_PROTOCOL",
        "join: protocol",
      );
      await send(
        a,
        "client:join",
        { protocol: 1, capacity: 2, backend: "cpu", token: a.info!.token },
        "INVALID_PAYLOAD",
        "join: replayed on joined socket",
      );
      // client:ready
      await send(stranger, "client:ready", { ready: true }, "NOT_JOINED", "ready: not joined");
      await send(observer, "client:ready", pick([{ ready: "yes" }, {}, null, { ready: true, x: 1 }]), "INVALID_PAYLOAD", "ready: junk");
      // update:submit, schema level (NaN and Infinity travel as null in JSON)
      await send(a, "update:submit", pick(junk), "INVALID_PAYLOAD", "submit: junk");
      await send(
        a,
        "update:submit",
        meta({ evalLoss: pick([Number.NaN, Number.POSITIVE_INFINITY, -Infinity]) }),
        "INVALID_PAYLOAD",
        "submit: NaN/Inf meta",
      );
      await send(a, "update:submit", meta({ numSamples: pick([0, -5, 1.5, 1e12, "100"]) }), "INVALID_PAYLOAD", "submit: numSamples");
      await send(
        a,
        "update:submit",
        { ...good, weights: pick(["AAAA", [1, 2, 3], null, { 0: 1 }]) },
        "INVALID_PAYLOAD",
        "submit: weights not binary",
      );
      await send(a, "update:submit", { ...good, extra: true }, "INVALID_PAYLOAD", "submit: extra key");
      await send(a, "update:submit", meta({ round: pick([0, -1, 1.5]) }), "INVALID_PAYLOAD", "submit: round not a round");
      // semantic: stale rounds, not a participant, not joined, experts not held, ranges
      await send(a, "update:submit", meta({ round: 2 + rng.int(1000) }), "STALE_ROUND", "submit: stale round");
      await send(observer, "update:submit", good, "NOT_PARTICIPANT", "submit: not a participant");
      await send(stranger, "update:submit", good, "NOT_JOINED", "submit: not joined");
      await send(
        a,
        "update:submit",
        meta({ feedback: [{ expert: pick(notHeld), usage: 1, accuracy: 0.5, loss: 1 }] }),
        "NOT_ASSIGNED",
        "submit: expert not held",
      );
      await send(
        a,
        "update:submit",
        meta({ feedback: [{ expert: pick([64, -1, 1.5]), usage: 1, accuracy: 0.5, loss: 1 }] }),
        "INVALID_PAYLOAD",
        "submit: expert out of range",
      );
      await send(
        a,
        "update:submit",
        meta({ feedback: [{ expert: start1.experts[0], usage: 1, accuracy: pick([1.01, -0.5, 3]), loss: 1 }] }),
        "INVALID_PAYLOAD",
        "submit: feedback accuracy",
      );
      await send(a, "update:submit", meta({ evalAccuracy: pick([1.5, -1]) }), "INVALID_PAYLOAD", "submit: eval accuracy");
      await send(
        a,
        "update:submit",
        meta({ feedback: [{ expert: start1.experts[0], usage: 1_000, accuracy: 0.5, loss: 1 }] }),
        "INVALID_PAYLOAD",
        "submit: usage > samples",
      );
      await send(a, "update:submit", meta({ trainLoss: -1 }), "INVALID_PAYLOAD", "submit: negative loss");
      // Events outside the protocol, with and without payloads: ignored and counted.
      await send(
        pick([a, stranger, observer]),
        pick(["admin:pause", "admin:reset", "round:started", "round:closed", "hello", "update:submitt", "client:leave"]),
        pick(junk),
        "ignored",
        "unknown event",
      );
    }
    // Weight frames: wrong shapes, names, sizes, non-finite values, garbage, oversized.
    const frames: [string, () => Uint8Array, ErrorCode][] = [
      [
        "frame: NaN",
        () => {
          const t = tensors();
          t[rng.int(t.length)]!.data[0] = Number.NaN;
          return encodeTensors(t);
        },
        "NON_FINITE",
      ],
      [
        "frame: Infinity",
        () => {
          const t = tensors();
          t[rng.int(t.length)]!.data[0] = pick([Infinity, -Infinity]);
          return encodeTensors(t);
        },
        "NON_FINITE",
      ],
      [
        "frame: wrong shape",
        () => {
          const t = tensors();
          const x = t[rng.int(t.length)]!;
          x.shape = [1, ...x.shape];
          return encodeTensors(t);
        },
        "SHAPE_MISMATCH",
      ],
      ["frame: missing tensor", () => encodeTensors(tensors().slice(1)), "NAME_MISMATCH"],
      [
        "frame: other expert's tensors",
        () =>
          encodeTensors(
            tensors()
              .map((t) => ({ ...t, name: t.name.replace(/^expert\/\d+/, `expert/${pick(notHeld)}`) }))
              .filter((t, i, all) => all.findIndex((u) => u.name === t.name) === i),
          ),
        "NAME_MISMATCH",
      ],
      [
        "frame: truncated",
        () => {
          const f = encodeTensors(tensors());
          return f.subarray(0, f.length - 4 * (1 + rng.int(8)));
        },
        "SIZE_MISMATCH",
      ],
      ["frame: garbage", () => Uint8Array.from(randomBytes(8 + rng.int(2000))), "BAD_FRAME"],
      [
        "frame: oversized",
        () => {
          const f = encodeTensors(tensors());
          const big = new Uint8Array(f.length + 100_000);
          big.set(f);
          return big;
        },
        "TOO_LARGE",
      ],
    ];
    for (let i = 0; i < 25; i++)
      for (const [label, frame, code] of frames) await send(a, "update:submit", { ...good, weights: frame() }, code, label);

    // The admin endpoint with wrong or missing tokens.
    for (let i = 0; i < 40; i++) {
      const auth = pick([undefined, "Bearer wrong", `Bearer ${ADMIN.slice(0, -1)}`, ADMIN, `Basic ${ADMIN}`]);
      const res = await fetch(`${url}/api/admin`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth !== undefined && { authorization: auth }) },
        body: JSON.stringify(pick([{ action: "pause" }, { action: "reset" }, { action: "set-rounds", value: 1 }])),
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ ok: false, error: { code: "UNAUTHORIZED" } });
      tally.set("admin: wrong token", (tally.get("admin: wrong token") ?? 0) + 1);
    }

    // A message beyond Socket.IO's maxHttpBufferSize: that connection is dropped, nothing else happens.
    const flooder = client(2);
    await vi.waitFor(() => expect(flooder.socket.connected).toBe(true));
    flooder.socket.emit(
      "update:submit",
      { ...good, weights: new Uint8Array(maxFrameBytes(config.preset, config.experts) + 1024) },
      () => {}, // never called: the connection drops
    );
    await vi.waitFor(() => expect(flooder.socket.connected).toBe(false), { timeout: 5_000 });
    tally.set("oversized message", 1);

    // A valid update is held for the round, not applied; replaying it is DUPLICATE_UPDATE.
    expect(await a.request("update:submit", good)).toMatchObject({ ok: true, value: { round: 1 } });
    for (let i = 0; i < 30; i++) await send(a, "update:submit", good, "DUPLICATE_UPDATE", "submit: replayed update");

    const total = [...tally.values()].reduce((s, n) => s + n, 0);
    expect(total).toBeGreaterThanOrEqual(1_000);
    expect(fingerprint(app.federation)).toEqual(before);
    const status = (await (await fetch(`${url}/api/status`)).json()) as ReturnType<typeof statusOf> & {
      rejected: { total: number; unknownEvents: number };
    };
    expect(status.rejected.total).toBe(answered);
    await vi.waitFor(async () => {
      const s = (await (await fetch(`${url}/api/status`)).json()) as { rejected: { unknownEvents: number } };
      expect(s.rejected.unknownEvents).toBe(unknownSent);
    });
    expect(status.phase).toBe("training");
    expect(status.currentRound).toBe(1);

    // Still alive and correct: b answers, the round closes with both updates applied.
    expect(await b.submit(b.rounds[0]!)).toMatchObject({ ok: true });
    await vi.waitFor(() => expect(app.federation.round).toBe(1), { timeout: 5_000, interval: 20 });
    expect(app.federation.snapshot.history[0]!.participants).toBe(2);
    // Synthetic clients echo the weights, so the model stays; Q moves with their feedback.
    expect(fingerprint(app.federation).q).not.toBe(before.q);
    console.log(
      `fuzz: ${total} hostile messages (${answered} acked with errors, ${unknownSent} unknown events ignored, 40 admin calls refused)`,
    );
  });

  it("rate-limits a flooding connection with RATE_LIMITED and lets it recover", async () => {
    const { url, client } = await start({ rateLimit: { burst: 5, perSec: 10 } });
    const c = client(2);
    await vi.waitFor(() => expect(c.socket.connected).toBe(true));
    const codes = await Promise.all(Array.from({ length: 20 }, () => c.request("client:ready", { ready: true })));
    const limited = codes.filter((r) => !r.ok && r.error.code === "RATE_LIMITED").length;
    expect(codes.slice(0, 5).every((r) => !r.ok && r.error.code === "NOT_JOINED")).toBe(true);
    expect(limited).toBe(15);
    await new Promise((r) => setTimeout(r, 250));
    expect(await c.request("client:ready", { ready: true })).toMatchObject({ ok: false, error: { code: "NOT_JOINED" } });
    const s = (await (await fetch(`${url}/api/status`)).json()) as { rejected: { byCode: Record<string, number> } };
    expect(s.rejected.byCode).toMatchObject({ RATE_LIMITED: 15, NOT_JOINED: 6 });
  });
});

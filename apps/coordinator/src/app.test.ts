import http from "node:http";
import { gunzipSync } from "node:zlib";
/**
 * Integration tests: the real app (Express + Socket.IO) on a loopback port, real socket.io
 * clients speaking the protocol. Only the model is left out (synthetic clients echo weights).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { decodeShard, encodeTensors } from "@flexmoe/core";
import { statusOf } from "./app.ts";
import type { CoordinatorConfig } from "./config.ts";
import { AppFixture } from "@flexmoe/testkit";

const fixture = new AppFixture();
afterEach(() => fixture.closeAll());
const start = (config: CoordinatorConfig = {}) => fixture.start({ config });

const waitFor = <T>(fn: () => T | Promise<T>, timeout = 8_000) => vi.waitFor(fn, { timeout, interval: 20 });

describe("round loop over real sockets", () => {
  it("runs a round with two clients: balanced assignment, aggregation, history", async () => {
    const { app, url, client } = await start();
    const a = client({ capacity: 2 });
    const b = client({ capacity: 2 });
    await Promise.all([a.join(), b.join()]);
    await waitFor(() => expect(app.federation.round).toBeGreaterThanOrEqual(1));
    const status = (await (await fetch(`${url}/api/status`)).json()) as ReturnType<typeof statusOf>;
    const h = status.history[0]!;
    expect(h.round).toBe(1);
    expect(h.participants).toBe(2);
    expect(h.load).toEqual([1, 1, 1, 1]);
    expect(h.cv).toBe(0);
    expect(h.accuracy).toBeCloseTo(0.5);
    expect(status.clients.map((c) => c.experts.length)).toEqual([2, 2]);
    // Each client got two distinct experts and together they cover all four.
    expect(new Set([...a.rounds[0]!.experts, ...b.rounds[0]!.experts]).size).toBe(4);
    await waitFor(() => expect(a.closed[0]?.round).toBe(1)); // the broadcast may trail the HTTP answer
  });

  it("lets a late joiner wait for the next round", async () => {
    const { app, client } = await start({ rounds: 2 });
    const a = client({ capacity: 2, delayMs: 300 });
    const b = client({ capacity: 2, delayMs: 300 });
    await Promise.all([a.join(), b.join()]);
    await waitFor(() => expect(app.federation.currentRound).toBe(1));
    const late = client({ capacity: 2 });
    await late.join();
    expect(late.rounds).toHaveLength(0);
    await waitFor(() => expect(app.federation.round).toBe(2));
    const hist = app.federation.snapshot.history;
    expect(hist[0]!.participants).toBe(2);
    expect(hist[1]!.participants).toBe(3);
    expect(late.rounds.map((r) => r.round)).toEqual([2]);
    // 2+2+2 = 6 slots over 4 experts: loads 2,2,1,1 in some order (floor/ceil bounds).
    expect([...hist[1]!.load].sort()).toEqual([1, 1, 2, 2]);
  });

  it("closes the round without a client that leaves mid-round", async () => {
    const { app, client } = await start({ roundTimeoutSec: 60, rounds: 1 });
    const a = client({ capacity: 2 });
    const b = client({ capacity: 2 });
    const quitter = client({ capacity: 2, autoSubmit: false });
    await Promise.all([a.join(), b.join(), quitter.join()]);
    await waitFor(() => expect(quitter.rounds).toHaveLength(1));
    quitter.close();
    await waitFor(() => expect(app.federation.round).toBe(1));
    const h = app.federation.snapshot.history[0]!;
    expect(h.participants).toBe(2);
    expect(h.reason).toBe("complete");
    expect(app.federation.clientList().find((c) => c.id === quitter.info!.clientId)?.online).toBe(false);
  });

  it("closes the round at the deadline without a straggler, then rejects its late update", async () => {
    const { app, client } = await start({ roundTimeoutSec: 1, rounds: 1 });
    const a = client({ capacity: 2 });
    const slow = client({ capacity: 2, autoSubmit: false });
    await Promise.all([a.join(), slow.join()]);
    await waitFor(() => expect(app.federation.round).toBe(1), 6_000);
    const h = app.federation.snapshot.history[0]!;
    expect(h.reason).toBe("timeout");
    expect(h.participants).toBe(1);
    const late = await slow.submit(slow.rounds[0]!);
    expect(late).toMatchObject({ ok: false, error: { code: "STALE_ROUND" } });
  });

  it("answers bad requests with typed errors and keeps state unchanged", async () => {
    const { app, url, client } = await start({ roundTimeoutSec: 60 });
    const stranger = client({ capacity: 2 });
    await waitFor(() => expect(stranger.socket.connected).toBe(true));
    expect(await stranger.request("update:submit", { meta: {}, weights: new Uint8Array(4) })).toMatchObject({
      ok: false,
      error: { code: "INVALID_PAYLOAD" },
    });
    expect(await stranger.request("client:ready", { ready: true })).toMatchObject({ ok: false, error: { code: "NOT_JOINED" } });
    expect(await stranger.request("client:join", { protocol: 99, capacity: 2, backend: "cpu" })).toMatchObject({
      ok: false,
      error: { code: "UNSUPPORTED_PROTOCOL" },
    });
    expect(await stranger.request("client:join", { protocol: 1, capacity: 0, backend: "cpu" })).toMatchObject({
      ok: false,
      error: { code: "INVALID_PAYLOAD" },
    });

    const a = client({ capacity: 2, autoSubmit: false });
    const b = client({ capacity: 2, autoSubmit: false });
    await Promise.all([a.join(), b.join()]);
    await waitFor(() => expect(a.rounds).toHaveLength(1));
    const start1 = a.rounds[0]!;
    const good = a.buildUpdate(start1);
    const before = JSON.stringify(statusOf(app.federation));

    const stale = { ...good, meta: { ...good.meta, round: 7 } };
    expect(await a.request("update:submit", stale)).toMatchObject({ ok: false, error: { code: "STALE_ROUND" } });
    const notHeld = [0, 1, 2, 3].find((e) => !start1.experts.includes(e))!;
    const wrongExpert = { ...good, meta: { ...good.meta, feedback: [{ expert: notHeld, usage: 1, accuracy: 0.5, loss: 1 }] } };
    expect(await a.request("update:submit", wrongExpert)).toMatchObject({ ok: false, error: { code: "NOT_ASSIGNED" } });
    const inflated = { ...good, meta: { ...good.meta, evalAccuracy: 3 } };
    expect(await a.request("update:submit", inflated)).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    const nan = { ...good, meta: { ...good.meta, evalLoss: Number.NaN } };
    expect(await a.request("update:submit", nan)).toMatchObject({ ok: false, error: { code: "INVALID_PAYLOAD" } });
    const shortFrame = { ...good, weights: encodeTensors([{ name: "backbone/x", shape: [1], data: new Float32Array(1) }]) };
    expect((await a.request("update:submit", shortFrame)).ok).toBe(false);
    expect(JSON.stringify(statusOf(app.federation))).toBe(before);

    expect(await a.request("update:submit", good)).toMatchObject({ ok: true, value: { round: 1 } });
    expect(await a.request("update:submit", good)).toMatchObject({ ok: false, error: { code: "DUPLICATE_UPDATE" } });

    // The shard behind the token decodes; an unknown token is a 404.
    const shard = decodeShard(new Uint8Array(await (await fetch(`${url}${a.info!.shardUrl}`)).arrayBuffer()));
    expect(shard.ok && shard.value.train.n + shard.value.test.n).toBe(50);
    expect((await fetch(`${url}/api/shard/not-a-token-at-all`)).status).toBe(404);
    // Gzipped for a client that takes it, the same bytes uncompressed for one that does not.
    const raw = (enc: string) =>
      new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        http
          .get(`${url}${a.info!.shardUrl}`, { headers: { "accept-encoding": enc } }, (res) => {
            const parts: Buffer[] = [];
            res.on("data", (d: Buffer) => parts.push(d));
            res.on("end", () => resolve({ encoding: res.headers["content-encoding"], body: Buffer.concat(parts) }));
          })
          .on("error", reject);
      });
    const gz = await raw("gzip");
    const plain = await raw("identity");
    expect(plain.encoding).toBeUndefined();
    // This fixture's pixels are noise, which gzip does not shrink: then the plain bytes go either way.
    if (gz.encoding === "gzip") {
      expect(gz.body.length).toBeLessThan(plain.body.length);
      expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
    } else expect(gz.body.equals(plain.body)).toBe(true);
  });

  it("rejoins with the issued token under the same identity", async () => {
    const { client } = await start();
    const first = client({ capacity: 2 });
    const info = await first.join();
    first.close();
    const again = client({ capacity: 3, token: info.token });
    const info2 = await again.join();
    expect(info2.clientId).toBe(info.clientId);
    expect(info2.capacity).toBe(3);
    const forged = client({ capacity: 2, token: "x".repeat(24) });
    await expect(forged.join()).rejects.toThrow(/UNKNOWN_TOKEN/);
  });
});

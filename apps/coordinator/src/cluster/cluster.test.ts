/**
 * The cluster against the one-process coordinator, with real parts: a real redis-server on loopback,
 * a leader and two edges (real Socket.IO), protocol clients split across the edges. In mean mode the
 * global weights after three rounds must equal (to float tolerance) those of `createApp` running the
 * same seeded federation with the same synthetic updates.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppFixture, io, startRedis, syntheticData, SyntheticClient, type RedisServer } from "@flexmoe/testkit";
import type { DashboardState, NamedTensor } from "@flexmoe/core";
import { resolveConfig, type CoordinatorConfig } from "../config.ts";
import { systemClock } from "../clock.ts";
import { freshState } from "../federation.ts";
import { ShardStore } from "../data/shards.ts";
import { silentLogger } from "../logger.ts";
import { connectRedis } from "./bus.ts";
import { createEdgeApp, type EdgeApp } from "./edge-app.ts";
import { Leader } from "./leader.ts";

const ROUNDS = 3;
const CLIENTS = 4;
const base: CoordinatorConfig = {
  experts: 4,
  minClients: CLIENTS,
  gatherMs: 30,
  roundTimeoutSec: 10,
  preset: "dense",
  shards: 4,
  partition: "iid",
  rounds: ROUNDS,
  seed: 5,
};
// Each client its own step, sample count and accuracy: a varied Q and a mean that weighs them.
const clientOpts = (i: number) => ({ capacity: 2, step: 0.01 * (i + 1), numSamples: 10 + 3 * i, accuracy: 0.3 + 0.15 * i });

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const flat = (b: readonly NamedTensor[], e: readonly (readonly NamedTensor[])[]): Float32Array =>
  Float32Array.from([...b, ...e.flat()].flatMap((t) => Array.from(t.data)));

describe("cluster: one leader, two edges, real Redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  }, 20_000);
  afterAll(async () => {
    await redis?.stop();
  });

  /** A leader and two edges on a fresh prefix; close() stops them all. */
  async function startCluster(over: CoordinatorConfig = {}, pruneSweepMs?: number) {
    const config = resolveConfig({ ...base, ...over });
    const prefix = `t${randomBytes(4).toString("hex")}`;
    const shards = () =>
      new ShardStore(syntheticData(200), { shards: 4, partition: config.partition, testFraction: 0.2, maxSamples: 0 }, 7);
    const conns = Array.from({ length: 7 }, (_, i) => connectRedis(redis.url, `test-${i}`));
    const leader = new Leader({
      config,
      clock: systemClock,
      logger: silentLogger,
      redis: conns[0]!,
      blocking: conns[1]!,
      prefix,
      ...(pruneSweepMs !== undefined && { pruneSweepMs }),
    });
    await leader.start();
    const edges: EdgeApp[] = [0, 1].map((i) =>
      createEdgeApp({
        id: `e${i + 1}`,
        config,
        clock: systemClock,
        logger: silentLogger,
        redis: conns[2 + 2 * i]!,
        blocking: conns[3 + 2 * i]!,
        adapterRedis: conns[6]!,
        prefix,
        shards: shards(),
        newToken: () => randomBytes(18).toString("base64url"),
      }),
    );
    const urls: string[] = [];
    for (const e of edges) {
      await e.edge.start();
      urls.push(`http://127.0.0.1:${await e.listen(0, "127.0.0.1")}`);
    }
    return {
      config,
      leader,
      urls,
      redis: conns[0]!,
      prefix,
      close: async () => {
        await leader.stop();
        for (const e of edges) await e.close();
        for (const c of conns) c.disconnect();
      },
    };
  }

  it("three rounds give the one-process coordinator's weights (mean mode)", async () => {
    const { config, leader, urls, close } = await startCluster();
    const clients: SyntheticClient[] = [];
    const fixture = new AppFixture();
    try {
      // Joined one after another, so ids c1..c4 go to the same clients in both runs.
      for (let i = 0; i < CLIENTS; i++) {
        const c = new SyntheticClient({ url: urls[i % 2]!, ...clientOpts(i) });
        clients.push(c);
        await c.join();
      }
      await until(() => leader.round >= ROUNDS, 30_000, "three cluster rounds");
      const cluster = leader.snapshot!;
      expect(cluster.history.map((h) => h.participants)).toEqual([CLIENTS, CLIENTS, CLIENTS]);
      // Both edges took part in every round (participants were split across them).
      expect(clients.every((c) => c.rounds.length === ROUNDS)).toBe(true);
      await until(() => clients.every((c) => c.closed.length >= ROUNDS), 5_000, "round summaries on both edges");
      // Any edge shows the leader's view of the run.
      const status = (await (await fetch(`${urls[1]}/api/status`)).json()) as {
        edge: string;
        cluster: { round: number; history: { participants: number }[] };
      };
      expect(status.edge).toBe("e2");
      expect(status.cluster.round).toBe(ROUNDS);
      expect(status.cluster.history.map((h) => h.participants)).toEqual([CLIENTS, CLIENTS, CLIENTS]);
      // Any edge's dashboard shows the leader's run: rounds, Q of the clients, its own join URL.
      const dash = io(`${urls[0]}/dashboard`, { transports: ["websocket"], forceNew: true });
      try {
        const seen = await new Promise<DashboardState>((resolve) => dash.on("dashboard:state", resolve));
        expect(seen.round).toBe(ROUNDS);
        expect(seen.phase).toBe("finished");
        expect(seen.history.map((h) => h.participants)).toEqual([CLIENTS, CLIENTS, CLIENTS]);
        expect(seen.fitness.clients).toEqual(["c1", "c2", "c3", "c4"]);
        expect(seen.fitness.q).toEqual(seen.fitness.clients.map((id) => Array.from(cluster.fitness.toDense([id]))));
        expect(seen.joinUrls).toEqual([`${urls[0]}/`]);
      } finally {
        dash.close();
      }
      // And its exports are the committed model and round log.
      const manifest = (await (await fetch(`${urls[1]}/api/export/model.json`)).json()) as { userDefinedMetadata: { round: number } };
      expect(manifest.userDefinedMetadata.round).toBe(ROUNDS);
      const bin = new Float32Array(await (await fetch(`${urls[1]}/api/export/weights.bin`)).arrayBuffer());
      expect(bin).toEqual(flat(cluster.backbone, cluster.experts));
      expect((await (await fetch(`${urls[1]}/api/export/rounds.csv`)).text()).trim().split("\n")).toHaveLength(1 + ROUNDS);

      const one = await fixture.start({ config: base, seed: 7 });
      for (let i = 0; i < CLIENTS; i++) await fixture.track(one.client(clientOpts(i))).join();
      await until(() => one.app.federation.round >= ROUNDS, 30_000, "three one-process rounds");
      const single = one.app.federation.snapshot;

      expect(cluster.history.map((h) => h.assigned)).toEqual(single.history.map((h) => h.assigned));
      const a = flat(cluster.backbone, cluster.experts);
      const b = flat(single.backbone, single.experts);
      expect(a.length).toBe(b.length);
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      expect(maxDiff).toBeLessThan(1e-5);
      // The updates moved the model: the equality is not the trivial one of an untouched model.
      const init = freshState(config, "init");
      const i0 = flat(init.backbone, init.experts);
      expect(Math.abs(a[0]! - i0[0]!)).toBeGreaterThan(0.01);
      expect(cluster.fitness.toJSON()).toEqual(single.fitness.toJSON());
    } finally {
      for (const c of clients) c.close();
      await fixture.closeAll();
      await close();
    }
  }, 90_000);

  it("a token works on any edge, rotates, supersedes the old connection across edges, and a copy revokes it", async () => {
    const cluster = await startCluster({ minClients: 100 });
    const clients: SyntheticClient[] = [];
    const on = (i: number, token?: string) => {
      const c = new SyntheticClient({ url: cluster.urls[i]!, capacity: 2, autoSubmit: false, ...(token !== undefined && { token }) });
      clients.push(c);
      return c;
    };
    try {
      const first = on(0);
      const a = await first.join();
      // The same client through the other edge, with its token: same identity, a new token, and the
      // connection on edge 1 is ended (Socket.IO's Redis adapter carries it across).
      const again = on(1, a.token);
      const b = await again.join();
      expect(b.clientId).toBe(a.clientId);
      expect(b.token).not.toBe(a.token);
      await until(() => first.ended.length > 0, 5_000, "the superseded connection to be ended");
      expect(first.ended[0]!.reason).toBe("superseded");
      // b's token was used (ready); a's coming back now means two holders: revoked.
      const thief = on(0);
      const res = await thief.joinOnly(a.token);
      expect(res.ok ? null : res.error.code).toBe("TOKEN_REUSED");
      await until(() => again.ended.length > 0, 5_000, "the live connection to be revoked");
      expect(again.ended[0]!.reason).toBe("revoked");
      const after = await on(1).joinOnly(b.token);
      expect(after.ok ? null : after.error.code).toBe("UNKNOWN_TOKEN");
      // A token never issued is unknown on every edge.
      expect((await on(0).joinOnly("not-a-token")).ok).toBe(false);
    } finally {
      for (const c of clients) c.close();
      await cluster.close();
    }
  }, 30_000);

  it("forgets an identity --prune-after its client left: its token, its Q row", async () => {
    const cluster = await startCluster({ minClients: 1, rounds: 1, pruneAfterSec: 3 }, 50);
    const clients: SyntheticClient[] = [];
    try {
      const c = new SyntheticClient({ url: cluster.urls[0]!, capacity: 2 });
      clients.push(c);
      const joined = await c.join();
      await until(() => cluster.leader.round >= 1, 10_000, "one round");
      expect(cluster.leader.snapshot!.fitness.has(joined.clientId)).toBe(true);
      // Connected, it is kept past --prune-after (its edge pushes the expiry back) ...
      await new Promise((r) => setTimeout(r, 3_500));
      expect(cluster.leader.snapshot!.fitness.has(joined.clientId)).toBe(true);
      c.close();
      // ... and forgotten that long after it left: the identity expires, the next sweep drops the rest.
      await until(() => cluster.leader.snapshot!.fitness.has(joined.clientId) === false, 10_000, "the Q row to be forgotten");
      expect(await cluster.redis.hlen(`${cluster.prefix}:tokens`)).toBe(0);
      const back = new SyntheticClient({ url: cluster.urls[1]!, capacity: 2, autoSubmit: false });
      clients.push(back);
      const res = await back.joinOnly(joined.token);
      expect(res.ok ? null : res.error.code).toBe("UNKNOWN_TOKEN");
    } finally {
      for (const c of clients) c.close();
      await cluster.close();
    }
  }, 30_000);
});

/**
 * Fault tests of the cluster with real processes: `flexmoe leader` and two `flexmoe edge`s as child
 * processes, a real redis-server on loopback, protocol clients over real sockets. In order:
 * kill -9 an edge mid-round (the round closes with the survivors; the killed edge's clients rejoin
 * on the other edge with their tokens and take part in the next round), kill -9 the leader mid-round
 * (a restarted leader resumes from the checkpoint, the epoch rises, the round is redone once), and a
 * Redis restart (the run continues).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import {
  freePort,
  killRedisServers,
  killServeProcesses,
  spawnFlexmoe,
  startRedis,
  SyntheticClient,
  type RedisServer,
  type ServeProcess,
} from "@flexmoe/testkit";

const ROUNDS = 6;
const PREFIX = "faults";

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, logs: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n--- logs ---\n${logs().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("cluster faults (real processes, real Redis)", () => {
  let redis: RedisServer;
  const procs: ServeProcess[] = [];
  const clients: SyntheticClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  }, 20_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    killServeProcesses();
    await redis?.stop();
    killRedisServers();
  });

  it("survives an edge's kill -9, the leader's kill -9 and a Redis restart", async () => {
    const common = ["--redis", redis.url, "--prefix", PREFIX, "--log-level", "info"];
    const leaderArgs = [
      ...common,
      "--lease-ms",
      "1000",
      ...["--preset", "dense", "--experts", "4", "--shards", "4", "--partition", "iid", "--seed", "3"],
      ...["--min-clients", "2", "--gather-ms", "500", "--round-timeout", "8", "--rounds", String(ROUNDS)],
    ];
    const leader1 = spawnFlexmoe("leader", leaderArgs, /leader ready/);
    procs.push(leader1);
    await leader1.ready(30_000);
    const ports = [await freePort(), await freePort()];
    const edges = ports.map((p, i) =>
      spawnFlexmoe("edge", [...common, "--port", String(p), "--host", "127.0.0.1", "--id", `e${i + 1}`], /edge listening/),
    );
    procs.push(...edges);
    await Promise.all(edges.map((e) => e.ready(30_000)));
    const logs = () => procs.map((p) => p.output()).join("\n");
    const url = (i: number) => `http://127.0.0.1:${ports[i]}`;
    const client = (i: number, token?: string) => {
      // Answers 600 ms after a round starts: the kills below land mid-round.
      const c = new SyntheticClient({ url: url(i), capacity: 2, delayMs: 600, ...(token !== undefined && { token }) });
      clients.push(c);
      return c;
    };
    const onA = [client(0), client(0)];
    const onB = [client(1), client(1)];
    for (const c of [...onA, ...onB]) await c.join();
    const watcher = onB[0]!;
    const closed = (r: number) => watcher.closed.find((s) => s.round === r);

    // Round 1 with everyone; then kill edge A as round 2 starts.
    await until(() => closed(1) !== undefined, 30_000, "round 1", logs);
    expect(closed(1)!.participants).toBe(4);
    await until(() => watcher.rounds.some((s) => s.round === 2), 30_000, "round 2 to start", logs);
    edges[0]!.proc.kill("SIGKILL");
    await until(() => closed(2) !== undefined, 30_000, "round 2 to close without edge A", logs);
    expect(closed(2)!.participants).toBe(2);

    // A's clients come back through "the load balancer" to edge B, with their tokens.
    const rejoined = onA.map((c) => client(1, c.info!.token));
    for (const [k, c] of rejoined.entries()) {
      const info = await c.join();
      expect(info.clientId).toBe(onA[k]!.info!.clientId);
    }
    await until(() => closed(3) !== undefined, 30_000, "round 3", logs);
    // They rejoined within the gather window after round 2: all four are in round 3.
    expect(closed(3)!.participants).toBe(4);
    await until(() => closed(4) !== undefined || watcher.rounds.some((s) => s.round === 4), 30_000, "round 4 to start", logs);

    // Kill the leader mid-round 4 (or 5, whichever is open when the kill lands) and start another.
    const kv = new Redis(redis.url);
    const epochBefore = Number(await kv.get(`${PREFIX}:epoch`));
    const openBefore = Math.max(...watcher.rounds.map((s) => s.round));
    leader1.proc.kill("SIGKILL");
    const leader2 = spawnFlexmoe("leader", leaderArgs, /leader ready/);
    procs.push(leader2);
    await leader2.ready(30_000);
    expect(Number(await kv.get(`${PREFIX}:epoch`))).toBe(epochBefore + 1);
    await until(() => closed(openBefore) !== undefined, 30_000, `round ${openBefore} redone by the new leader`, logs);
    // The killed round was announced again (redone) and closed once.
    expect(watcher.rounds.filter((s) => s.round === openBefore).length).toBeGreaterThanOrEqual(2);
    expect(watcher.closed.filter((s) => s.round === openBefore).length).toBe(1);
    expect(closed(openBefore)!.participants).toBe(4);

    // Redis restarts (it keeps its append-only file); the run goes on to its last round.
    await redis.restart();
    await until(() => closed(ROUNDS) !== undefined, 60_000, "the last round after a Redis restart", logs);
    const rounds = watcher.closed.map((s) => s.round);
    // The rejoined clients took part: their updates were accepted on edge B.
    for (const c of rejoined) expect(c.acks.some((a) => a.ok)).toBe(true);
    // Every round closed exactly once, in order: none was applied twice.
    expect(rounds).toEqual(Array.from({ length: ROUNDS }, (_, i) => i + 1));
    kv.disconnect();
  }, 180_000);
});

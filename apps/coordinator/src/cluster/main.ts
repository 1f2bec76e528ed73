/**
 * The cluster's processes (`flexmoe leader`, `flexmoe edge`): like main.ts for `flexmoe serve`, the
 * only place here that touches the environment, signals and real connections.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { systemClock } from "../clock.ts";
import type { ResolvedConfig } from "../config.ts";
import { loadMnist } from "../data/mnist.ts";
import { ShardStore } from "../data/shards.ts";
import type { NetLimits } from "../guard.ts";
import { clusterKeys, connectRedis, newId } from "./bus.ts";
import { createEdgeApp } from "./edge-app.ts";
import { Leader } from "./leader.ts";

export interface ClusterOptions {
  /** redis://host:port */
  redis: string;
  /** Key prefix of this cluster. @default "flexmoe" */
  prefix: string;
  logLevel: string;
  until?: Promise<void>;
}

const signalled = (): Promise<void> =>
  new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });

/** Leads (or waits as a standby for the lease, then leads) until a signal; exit 3 when leadership is lost. */
export async function runLeader(opts: ClusterOptions & { config: ResolvedConfig; leaseMs?: number }): Promise<number> {
  const logger = pino({ level: opts.logLevel });
  const redis = connectRedis(opts.redis, "flexmoe-leader");
  const blocking = connectRedis(opts.redis, "flexmoe-leader-up");
  let lost: string | null = null;
  let wake: () => void = () => {};
  const lostP = new Promise<void>((r) => (wake = r));
  const leader = new Leader({
    config: opts.config,
    clock: systemClock,
    logger,
    redis,
    blocking,
    prefix: opts.prefix,
    ...(opts.leaseMs !== undefined && { leaseMs: opts.leaseMs }),
    newToken: () => randomBytes(9).toString("base64url"),
    onLost: (why) => {
      lost = why;
      wake();
    },
  });
  logger.info({ leader: leader.id, redis: opts.redis, prefix: opts.prefix }, "leader starting (waits for the lease if another holds it)");
  const started = leader.start();
  await Promise.race([opts.until ?? signalled(), lostP, started.then(() => new Promise<never>(() => {}))]).catch((e: unknown) => {
    logger.error({ err: e }, "leader failed");
    lost = (e as Error).message;
  });
  await leader.stop();
  redis.disconnect();
  return lost === null ? 0 : 3;
}

/** Serves clients until a signal. Waits for the leader's config in Redis first. */
export async function runEdge(
  opts: ClusterOptions & {
    port: number;
    host?: string;
    id?: string;
    allowOrigins?: readonly string[];
    limits?: Partial<NetLimits>;
    /** What the dashboard shows to join by (a load balancer's URL). */
    publicUrl?: string;
  },
): Promise<number> {
  const logger = pino({ level: opts.logLevel });
  const redis = connectRedis(opts.redis, "flexmoe-edge");
  const keys = clusterKeys(opts.prefix);
  let raw: string | null = null;
  for (let waited = 0; (raw = await redis.get(keys.config)) === null; waited += 250) {
    if (waited % 5000 === 0) logger.info({ prefix: opts.prefix }, "waiting for a leader to publish the run's config");
    await new Promise((r) => setTimeout(r, 250));
  }
  const config = JSON.parse(raw) as ResolvedConfig;
  const shards = new ShardStore(
    loadMnist(),
    { shards: config.shards, partition: config.partition, testFraction: config.testFraction, maxSamples: config.maxSamplesPerClient },
    config.seed,
  );
  const id = opts.id ?? newId();
  const app = createEdgeApp({
    id,
    config,
    clock: systemClock,
    logger,
    redis,
    blocking: connectRedis(opts.redis, "flexmoe-edge-ctl"),
    adapterRedis: connectRedis(opts.redis, "flexmoe-edge-sio"),
    prefix: opts.prefix,
    shards,
    newToken: () => randomBytes(18).toString("base64url"),
    webRoot: path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../web-client/dist"),
    allowedOrigins: () => opts.allowOrigins ?? [],
    ...(opts.publicUrl !== undefined && { joinUrls: () => [opts.publicUrl as string] }),
    limits: opts.limits ?? {},
  });
  await app.edge.start();
  const port = await app.listen(opts.port, opts.host);
  logger.info({ edge: id, port }, "edge listening");
  // The address a load balancer (or a tester) points at; the join URL is the balancer's.
  process.stdout.write(`edge ${id}: http://${opts.host ?? "localhost"}:${port}/\n`);
  await (opts.until ?? signalled());
  await app.close();
  redis.disconnect();
  return 0;
}

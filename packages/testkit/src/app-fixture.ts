/**
 * Test fixture: the real app (Express + Socket.IO) on a loopback port with synthetic data and
 * synthetic clients, everything it starts closed by `closeAll()` (call it from `afterEach`).
 */
import { randomBytes } from "node:crypto";
import { createRng, type LabeledSet } from "@flexmoe/core";
import {
  createApp,
  resolveConfig,
  ShardStore,
  silentLogger,
  systemClock,
  type App,
  type AppDeps,
  type CoordinatorConfig,
  type ResolvedConfig,
} from "@flexmoe/coordinator";
import { SyntheticClient, type SyntheticClientOptions } from "./synthetic-client.ts";

/** n random 28x28 "images" with labels cycling 0..9 (content is irrelevant to the round loop). */
export function syntheticData(n: number, seed = 42): LabeledSet {
  const rng = createRng(seed);
  return {
    x: new Float32Array(n * 784).map(() => rng.next()),
    y: new Uint8Array(n).map((_, i) => i % 10),
    n,
    shape: [28, 28, 1],
    numClasses: 10,
  };
}

export interface TestAppOptions {
  config?: CoordinatorConfig;
  /** Extra app dependencies (admin token, TLS, persistence hooks...). */
  deps?: Partial<AppDeps>;
  samples?: number;
  seed?: number;
}

export interface TestApp {
  app: App;
  url: string;
  config: ResolvedConfig;
  client(o: Omit<SyntheticClientOptions, "url">): SyntheticClient;
}

export class AppFixture {
  private readonly apps: App[] = [];
  private readonly clients: SyntheticClient[] = [];

  async start(o: TestAppOptions = {}): Promise<TestApp> {
    const config = resolveConfig({
      experts: 4,
      minClients: 2,
      gatherMs: 30,
      roundTimeoutSec: 5,
      preset: "dense",
      shards: 4,
      partition: "iid",
      ...o.config,
    });
    const shards = new ShardStore(
      syntheticData(o.samples ?? 200),
      { shards: config.shards, partition: config.partition, testFraction: 0.2, maxSamples: 0 },
      o.seed ?? 7,
    );
    const app = createApp({
      config,
      clock: systemClock,
      logger: silentLogger,
      shards,
      newToken: () => randomBytes(18).toString("base64url"),
      ...o.deps,
    });
    this.apps.push(app);
    const protocol = o.deps?.tls ? "https" : "http";
    const url = `${protocol}://127.0.0.1:${await app.listen(0, "127.0.0.1")}`;
    const client = (co: Omit<SyntheticClientOptions, "url">) => this.track(new SyntheticClient({ url, ...co }));
    return { app, url, config, client };
  }

  track(c: SyntheticClient): SyntheticClient {
    this.clients.push(c);
    return c;
  }

  async closeAll(): Promise<void> {
    for (const c of this.clients.splice(0)) c.close();
    for (const a of this.apps.splice(0)) await a.close();
  }
}

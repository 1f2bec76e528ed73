/**
 * The coordinator process: the one place that reads the environment, files and the network, builds
 * the real dependencies and hands them to createApp. `flexmoe serve` (apps/lab) parses the flags
 * into {@link ServeOptions} and calls {@link serve}.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { networkInterfaces } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { createApp } from "./app.ts";
import { systemClock } from "./clock.ts";
import type { ResolvedConfig } from "./config.ts";
import { loadMnist } from "./data/mnist.ts";
import { ShardStore } from "./data/shards.ts";
import { openRun, persistenceHooks } from "./store/persist.ts";
import { FileRunStore } from "./store/store.ts";
import { originOf, type NetLimits } from "./guard.ts";
import { loadOrCreateSelfSigned, loadProvidedCert, type TlsMaterial } from "./tls.ts";

// qrcode-terminal ships no types; required through createRequire so no ambient declaration is needed anywhere.
const qrcode = createRequire(import.meta.url)("qrcode-terminal") as {
  generate(text: string, opts: { small?: boolean }, cb: (qr: string) => void): void;
};

export interface ServeOptions {
  config: ResolvedConfig;
  /** 0 = any free port. */
  port: number;
  /** Listen address; undefined = all interfaces. */
  host?: string;
  dataDir: string;
  https: boolean;
  cert?: string;
  key?: string;
  /** Default: FLEXMOE_ADMIN_TOKEN, else random (printed). */
  adminToken?: string;
  logLevel: string;
  /** Browser origins accepted besides loopback and the printed join URLs. */
  allowOrigins?: readonly string[];
  /** Per-address connection and join limits (defaults in guard.ts). */
  limits?: Partial<NetLimits>;
  /** Resolves when the coordinator should stop (default: SIGINT or SIGTERM). */
  until?: Promise<void>;
}

/** Runs a coordinator until `until` (or a signal); returns the exit code (2: bad options or data dir). */
export async function serve(opts: ServeOptions): Promise<number> {
  const { config } = opts;
  const values = { "data-dir": opts.dataDir, https: opts.https, cert: opts.cert, key: opts.key, host: opts.host };
  const port = opts.port;
  const extraOrigins = [...(opts.allowOrigins ?? [])];
  const badOrigin = extraOrigins.find((o) => originOf(o) === null);
  if (badOrigin !== undefined) {
    console.error(`flexmoe serve: --allow-origin ${badOrigin} is not an http(s) origin (like http://laptop.local:3000)`);
    return 2;
  }
  const store = new FileRunStore(path.resolve(values["data-dir"]));
  const locked = store.lock();
  if (!locked.ok) {
    console.error(`flexmoe serve: ${locked.error.message}`);
    return 2;
  }
  // Every way out of this process releases the dir (SIGKILL leaves a stale lock the next start takes over).
  process.once("exit", () => store.unlock());
  const resume = openRun(store, config);
  if (!resume.ok) {
    console.error(`flexmoe serve: ${store.dir}: ${resume.error.message}`);
    return 2;
  }
  const logger = pino({ level: opts.logLevel });
  const data = loadMnist();
  const shards = new ShardStore(
    data,
    { shards: config.shards, partition: config.partition, testFraction: config.testFraction, maxSamples: config.maxSamplesPerClient },
    config.seed,
  );
  if ((values.cert === undefined) !== (values.key === undefined)) {
    console.error("flexmoe serve: --cert and --key go together");
    return 2;
  }
  const useTls = values.https || values.cert !== undefined;
  let tls: TlsMaterial | undefined;
  try {
    tls = !useTls
      ? undefined
      : values.cert !== undefined && values.key !== undefined
        ? await loadProvidedCert(values.cert, values.key)
        : await loadOrCreateSelfSigned(values["data-dir"], lanAddresses());
  } catch (e) {
    console.error(`flexmoe serve: TLS: ${(e as Error).message}`);
    return 2;
  }
  const adminToken = opts.adminToken ?? process.env.FLEXMOE_ADMIN_TOKEN ?? randomBytes(18).toString("base64url");
  let joinUrls: string[] = [];
  const webRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web-client/dist");
  const persist = persistenceHooks({ store, clock: systemClock, logger });
  const app = createApp({
    config,
    clock: systemClock,
    logger,
    shards,
    newToken: () => randomBytes(18).toString("base64url"),
    webRoot,
    ...(resume.value.initial && { initial: resume.value.initial }),
    ...(resume.value.initialClients && { initialClients: resume.value.initialClients }),
    onRoundClosed: persist.onRoundClosed,
    onClientChanged: persist.onClientChanged,
    onReset: persist.onReset,
    adminToken,
    joinUrls: () => joinUrls,
    allowedOrigins: () => [...joinUrls, ...extraOrigins],
    limits: opts.limits ?? {},
    ...(tls ? { tls: { key: tls.key, cert: tls.cert } } : {}),
  });
  try {
    if (!resume.value.initial) persist.save(app.federation.run());
  } catch (e) {
    console.error(`flexmoe serve: cannot write to --data-dir ${store.dir}: ${(e as Error).message}`);
    return 2;
  }
  if (resume.value.recovered !== undefined) logger.warn({ dataDir: store.dir }, `store recovered: ${resume.value.recovered}`);
  logger.info({ dataDir: store.dir, changed: resume.value.changed }, resume.value.summary);
  const bound = await app.listen(port, values.host);
  joinUrls = printJoinInfo(bound, values.host, tls ? "https" : "http", adminToken);
  if (tls)
    console.log(
      `TLS: ${tls.source === "provided" ? "your certificate" : `self-signed certificate (${tls.source}, ${path.join(values["data-dir"], "tls")})`}\n`,
    );
  logger.info({ port: bound, strategy: config.strategy, experts: config.experts, partition: config.partitionLabel }, "coordinator ready");

  await (opts.until ??
    new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    }));
  await app.close();
  store.unlock();
  return 0;
}

function lanAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) out.push(a.address);
  }
  return out;
}

/** Prints the join URLs, QR code and dashboard link; returns the join URLs, the QR code's first. */
function printJoinInfo(port: number, host: string | undefined, scheme: "http" | "https", adminToken: string): string[] {
  // Bound to one address: that is the only one that works. Bound to all: every LAN address does.
  const all = host === undefined || host === "" || host === "0.0.0.0" || host === "::";
  const lan = all ? lanAddresses() : host === "127.0.0.1" || host === "localhost" ? [] : [host];
  const urls = [`${scheme}://localhost:${port}/`, ...lan.map((a) => `${scheme}://${a}:${port}/`)];
  console.log("\nFLEX-MoE coordinator is up. Open this on phones and laptops to join:");
  for (const u of urls) console.log(`  ${u}`);
  const qrUrl = urls[1] ?? urls[0]!;
  console.log(`\nScan to join (${qrUrl}):`);
  qrcode.generate(qrUrl, { small: true }, (q: string) => console.log(q));
  console.log(`Status: ${urls[0]}api/status`);
  console.log(`Dashboard (admin): ${urls[0]}dashboard#admin=${adminToken}`);
  console.log(`Admin token: ${adminToken}  (flexmoe admin pause --url ${urls[0]} --token ${adminToken})\n`);
  const [local, ...lanUrls] = urls;
  return [...lanUrls, local!];
}

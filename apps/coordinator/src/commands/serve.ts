/**
 * `flexmoe serve`: the coordinator process. This is the one place that reads flags, ports
 * and the network, builds the real dependencies and hands them to createApp.
 */
import { randomBytes } from "node:crypto";
import { networkInterfaces } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createRng, type StrategyName } from "@flexmoe/core";
import { pino } from "pino";
import qrcode from "qrcode-terminal";
import { createApp } from "../app.ts";
import { systemClock } from "../clock.ts";
import { resolveConfig, type AggregatorName, type CoordinatorConfig } from "../config.ts";
import { loadMnist } from "../data/mnist.ts";
import { ShardStore } from "../data/shards.ts";
import { openRun, persistenceHooks } from "../store/persist.ts";
import { FileRunStore } from "../store/store.ts";
import { originOf, type NetLimits } from "../guard.ts";
import { loadOrCreateSelfSigned, loadProvidedCert, type TlsMaterial } from "../tls.ts";

const HELP = `usage: flexmoe serve [options]
  --port <n>              port (default 3000; 0 = any free port)
  --host [addr]           listen on all interfaces (or addr); default: all interfaces
  --experts <n>           number of experts E (default 8)
  --min-clients <n>       ready clients needed to start a round (default 2)
  --rounds <n>            stop after n rounds, 0 = unbounded (default 0)
  --round-timeout <s>     seconds before a round closes without stragglers (default 120)
  --gather-ms <ms>        wait for more clients once min-clients are ready (default 1500)
  --strategy <s>          flex | greedy | random | roundrobin (default flex)
  --fitness <f>           acc | loss (default acc)
  --alpha-l <x>           loss-driven fitness exp(-alpha_L * loss) (default 1)
  --beta <x>              EMA rate of the fitness matrix Q (default 0.5)
  --q0 <x>                initial fitness of untried client-expert pairs, in [0, 1] (default 1: optimistic)
  --slack <x>             widen the load bounds by this fraction of the fair share (default 0)
  --dataset <d>           mnist (default mnist)
  --partition <p>         iid | dirichlet:0.8 | classes:4 (default dirichlet:0.8)
  --shards <n>            data shards dealt to joining clients (default 16)
  --max-samples <n>       cap samples per client shard, 0 = none (default 0)
  --max-capacity <n>      cap on a client's declared capacity (default E)
  --epochs <n>            local epochs per round (default 1)
  --batch-size <n>        (default 32)
  --lr <x>                learning rate (default 0.005; Adam, fresh each round)
  --preset <p>            cnn | dense (default cnn)
  --wire <dtype>          float32 | float16 (default float32)
  --seed <n>              (default 1)
  --quorum <n>            a round with fewer updates is not applied, and is redone (default 1)
  --aggregator <a>        mean | trimmed | median (default mean)
  --trim <f>              fraction cut from each end by --aggregator trimmed (default 0.2)
  --clip <norm>           clip each client's delta (backbone, each expert) to this L2 norm (default off)
  --data-dir <dir>        where state is kept (default ./.flexmoe); an existing run there is resumed;
                          one coordinator per dir (run.lock)
  --allow-origin <url>    also accept browser pages from this origin (repeatable; default: loopback and
                          the printed join URLs)
  --max-conn-per-ip <n>   live connections per remote address (default 64: a classroom behind one NAT)
  --join-burst-per-ip <n> new clients (joins without a token) an address may register at once
  --join-rate-per-ip <x>  (default 64), refilled at this many per second (default 2); beyond: RATE_LIMITED
  --https                 serve over TLS (self-signed certificate kept in <data-dir>/tls/, made on first start)
  --cert <file> --key <file>  a real certificate and key (PEM) for --https
  --admin-token <t>       admin token for the dashboard and \`flexmoe admin\` (default: random, printed;
                          or FLEXMOE_ADMIN_TOKEN)
  --log-level <l>         pino level (default info)
`;

export async function runServe(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: "string", default: "3000" },
        host: { type: "string" },
        experts: { type: "string" },
        "min-clients": { type: "string" },
        rounds: { type: "string" },
        "round-timeout": { type: "string" },
        "gather-ms": { type: "string" },
        strategy: { type: "string" },
        fitness: { type: "string" },
        "alpha-l": { type: "string" },
        beta: { type: "string" },
        q0: { type: "string" },
        slack: { type: "string" },
        dataset: { type: "string" },
        partition: { type: "string" },
        shards: { type: "string" },
        "max-samples": { type: "string" },
        "max-capacity": { type: "string" },
        epochs: { type: "string" },
        "batch-size": { type: "string" },
        lr: { type: "string" },
        preset: { type: "string" },
        wire: { type: "string" },
        seed: { type: "string" },
        quorum: { type: "string" },
        aggregator: { type: "string" },
        trim: { type: "string" },
        clip: { type: "string" },
        "data-dir": { type: "string", default: ".flexmoe" },
        "allow-origin": { type: "string", multiple: true },
        "max-conn-per-ip": { type: "string" },
        "join-burst-per-ip": { type: "string" },
        "join-rate-per-ip": { type: "string" },
        https: { type: "boolean", default: false },
        cert: { type: "string" },
        key: { type: "string" },
        "admin-token": { type: "string" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`flexmoe serve: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const n = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const userConfig: CoordinatorConfig = {
    ...(values.experts !== undefined && { experts: n(values.experts)! }),
    ...(values["min-clients"] !== undefined && { minClients: n(values["min-clients"])! }),
    ...(values.rounds !== undefined && { rounds: n(values.rounds)! }),
    ...(values["round-timeout"] !== undefined && { roundTimeoutSec: n(values["round-timeout"])! }),
    ...(values["gather-ms"] !== undefined && { gatherMs: n(values["gather-ms"])! }),
    ...(values.strategy !== undefined && { strategy: values.strategy as StrategyName }),
    ...(values.fitness !== undefined && { fitness: values.fitness === "loss" ? "loss" : "acc" }),
    ...(values["alpha-l"] !== undefined && { alphaL: n(values["alpha-l"])! }),
    ...(values.beta !== undefined && { beta: n(values.beta)! }),
    ...(values.q0 !== undefined && { q0: n(values.q0)! }),
    ...(values.slack !== undefined && { slack: n(values.slack)! }),
    ...(values.partition !== undefined && { partition: values.partition }),
    ...(values.shards !== undefined && { shards: n(values.shards)! }),
    ...(values["max-samples"] !== undefined && { maxSamplesPerClient: n(values["max-samples"])! }),
    ...(values["max-capacity"] !== undefined && { maxCapacity: n(values["max-capacity"])! }),
    ...(values.preset !== undefined && { preset: values.preset === "dense" ? "dense" : "cnn" }),
    ...(values.wire !== undefined && { wireDType: values.wire === "float16" ? "float16" : "float32" }),
    ...(values.seed !== undefined && { seed: n(values.seed)! }),
    ...(values.quorum !== undefined && { quorum: n(values.quorum)! }),
    ...(values.aggregator !== undefined && { aggregator: values.aggregator as AggregatorName }),
    ...(values.trim !== undefined && { trim: n(values.trim)! }),
    ...(values.clip !== undefined && { clipNorm: n(values.clip)! }),
    training: {
      ...(values.epochs !== undefined && { epochs: n(values.epochs)! }),
      ...(values["batch-size"] !== undefined && { batchSize: n(values["batch-size"])! }),
      ...(values.lr !== undefined && { learningRate: n(values.lr)! }),
    },
  };
  if (values.dataset !== undefined && values.dataset !== "mnist") {
    console.error(`flexmoe serve: dataset '${values.dataset}' is not served yet (only mnist)`);
    return 2;
  }
  if (values.fitness !== undefined && values.fitness !== "acc" && values.fitness !== "loss") {
    console.error(`flexmoe serve: --fitness must be acc or loss`);
    return 2;
  }
  let config;
  try {
    config = resolveConfig(userConfig);
  } catch (e) {
    console.error(`flexmoe serve: ${(e as Error).message}`);
    return 2;
  }
  const extraOrigins = values["allow-origin"] ?? [];
  const badOrigin = extraOrigins.find((o) => originOf(o) === null);
  if (badOrigin !== undefined) {
    console.error(`flexmoe serve: --allow-origin ${badOrigin} is not an http(s) origin (like http://laptop.local:3000)`);
    return 2;
  }
  const limits: Partial<NetLimits> = {};
  for (const [flag, key, integer] of [
    ["max-conn-per-ip", "connectionsPerIp", true],
    ["join-burst-per-ip", "joinBurstPerIp", true],
    ["join-rate-per-ip", "joinPerSecPerIp", false],
  ] as const) {
    const raw = values[flag];
    if (raw === undefined) continue;
    const v = Number(raw);
    if (!(Number.isFinite(v) && v > 0 && (!integer || Number.isInteger(v)))) {
      console.error(`flexmoe serve: --${flag} must be a positive ${integer ? "integer" : "number"}`);
      return 2;
    }
    limits[key] = v;
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
  const port = Number(values.port);
  const logger = pino({ level: values["log-level"] });
  const rng = createRng(config.seed);
  const data = loadMnist();
  const shards = new ShardStore(
    data,
    { shards: config.shards, partition: config.partition, testFraction: config.testFraction, maxSamples: config.maxSamplesPerClient },
    rng.fork(),
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
  const adminToken = values["admin-token"] ?? process.env.FLEXMOE_ADMIN_TOKEN ?? randomBytes(18).toString("base64url");
  let joinUrls: string[] = [];
  const webRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../web-client/dist");
  const persist = persistenceHooks({ store, clock: systemClock, logger, federation: () => app.federation });
  const app = createApp({
    config,
    clock: systemClock,
    logger,
    rng,
    shards,
    newToken: () => randomBytes(18).toString("base64url"),
    webRoot,
    ...(resume.value.initial && { initial: resume.value.initial }),
    ...(resume.value.initialClients && { initialClients: resume.value.initialClients }),
    onRoundClosed: persist.onRoundClosed,
    onClientAdded: persist.onClientAdded,
    onReset: persist.onReset,
    adminToken,
    joinUrls: () => joinUrls,
    allowedOrigins: () => [...joinUrls, ...extraOrigins],
    limits,
    ...(tls ? { tls: { key: tls.key, cert: tls.cert } } : {}),
  });
  try {
    if (!resume.value.initial) persist.saveNow();
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

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
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

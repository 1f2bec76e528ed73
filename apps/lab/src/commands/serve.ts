/** `flexmoe serve`: flags (the shared knob table plus the server's own) -> the coordinator's serve(). */
import { parseArgs } from "node:util";
import {
  DEFAULT_BALANCE,
  DEFAULT_GATE_INIT,
  DEFAULT_MAX_HOLD,
  DEFAULT_Q_DECAY,
  DEFAULT_ZERO_USAGE,
  resolveConfig,
  serve,
  type CoordinatorConfig,
} from "@flexmoe/coordinator";
import { intFlag, knobArgs, knobHelp, numFlag, parseKnob, UsageError, type KnobName } from "../options.ts";

const SHARED = [
  "experts",
  "strategy",
  "fitness",
  "alpha-l",
  "beta",
  "q0",
  "slack",
  "partition",
  "epochs",
  "batch-size",
  "lr",
  "feedback",
  "seed",
  "aggregator",
  "trim",
  "clip",
  "clip-factor",
  "max-hold",
  "zero-usage",
  "q-decay",
  "balance",
  "gate-init",
  "preset",
  "test-fraction",
] as const satisfies readonly KnobName[];

const HELP = `usage: flexmoe serve [options]
  --port <n>              port (default 3000; 0 = any free port)
  --host [addr]           listen on all interfaces (or addr); default: all interfaces
  --min-clients <n>       ready clients needed to start a round (default 2)
  --rounds <n>            stop after n rounds, 0 = unbounded (default 0)
  --round-timeout <s>     seconds before a round closes without stragglers (default 120)
  --gather-ms <ms>        wait for more clients once min-clients are ready (default 1500)
  --dataset <d>           mnist (default mnist)
  --shards <n>            data shards dealt to joining clients (default 16)
  --max-samples <n>       cap samples per client shard, 0 = none (default 0)
  --max-capacity <n>      cap on a client's declared capacity (default min(E, 4))
  --max-own-samples <n>   drawn samples a page may add to its shard (bounds its sample claim; default 200)
  --wire <dtype>          float32 | float16 (default float32)
  --quorum <n>            a round with fewer updates is not applied, and is redone (default 1)
  --prune-after <s>       forget clients offline this many seconds (token, Q row), 0 = never (default 3600)
${knobHelp(SHARED, { experts: 8, strategy: "flex", fitness: "acc", "alpha-l": 1, beta: 0.5, q0: 1, slack: 0, partition: "dirichlet:0.8", epochs: resolveConfig().training.epochs, "batch-size": 32, lr: 0.005, feedback: "pre", seed: 1, aggregator: "mean", trim: 0.2, clip: 0, "clip-factor": 3, "max-hold": DEFAULT_MAX_HOLD, "zero-usage": DEFAULT_ZERO_USAGE, "q-decay": DEFAULT_Q_DECAY, balance: DEFAULT_BALANCE, "gate-init": DEFAULT_GATE_INIT, preset: "cnn", "test-fraction": 0.2 })}
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

/** Flags -> the coordinator's user config. @throws UsageError on a bad flag or value. */
export function serveConfig(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...knobArgs(SHARED),
      port: { type: "string", default: "3000" },
      host: { type: "string" },
      "min-clients": { type: "string" },
      rounds: { type: "string" },
      "round-timeout": { type: "string" },
      "gather-ms": { type: "string" },
      dataset: { type: "string" },
      shards: { type: "string" },
      "max-samples": { type: "string" },
      "max-capacity": { type: "string" },
      "max-own-samples": { type: "string" },
      wire: { type: "string" },
      quorum: { type: "string" },
      "prune-after": { type: "string" },
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
  });
  const knob = <K extends (typeof SHARED)[number]>(k: K) => (values[k] === undefined ? undefined : parseKnob(k, values[k]));
  const opt = <T>(key: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [key]: v });
  const int = (flag: string, min: number, max: number): number | undefined => {
    const raw = (values as unknown as Record<string, string | boolean | undefined>)[flag];
    return raw === undefined ? undefined : intFlag(flag, String(raw), 0, min, max);
  };
  if (values.dataset !== undefined && values.dataset !== "mnist")
    throw new UsageError(`--dataset: '${values.dataset}' is not served yet (only mnist)`);
  if (values.wire !== undefined && values.wire !== "float32" && values.wire !== "float16")
    throw new UsageError(`--wire: must be one of float32, float16, got '${values.wire}'`);
  const config: CoordinatorConfig = {
    ...opt("experts", knob("experts")),
    ...opt("strategy", knob("strategy")),
    ...opt("fitness", knob("fitness")),
    ...opt("alphaL", knob("alpha-l")),
    ...opt("beta", knob("beta")),
    ...opt("q0", knob("q0")),
    ...opt("slack", knob("slack")),
    ...opt("partition", knob("partition")),
    ...opt("seed", knob("seed")),
    ...opt("aggregator", knob("aggregator")),
    ...opt("trim", knob("trim")),
    ...opt("clipNorm", knob("clip")),
    ...opt("clipFactor", knob("clip-factor")),
    ...opt("maxHold", knob("max-hold")),
    ...opt("zeroUsage", knob("zero-usage")),
    ...opt("qDecay", knob("q-decay")),
    ...opt(
      "pruneAfterSec",
      values["prune-after"] === undefined ? undefined : numFlag("prune-after", values["prune-after"], 0, 0, 10 * 365 * 86_400),
    ),
    ...opt("preset", knob("preset")),
    ...opt("testFraction", knob("test-fraction")),
    ...opt("minClients", int("min-clients", 1, 100_000)),
    ...opt("rounds", int("rounds", 0, 1_000_000)),
    ...opt(
      "roundTimeoutSec",
      values["round-timeout"] === undefined ? undefined : numFlag("round-timeout", values["round-timeout"], 0, 1, 86_400),
    ),
    ...opt("gatherMs", int("gather-ms", 0, 600_000)),
    ...opt("shards", int("shards", 1, 10_000)),
    ...opt("maxSamplesPerClient", int("max-samples", 0, 10_000_000)),
    ...opt("maxCapacity", int("max-capacity", 1, 64)),
    ...opt("maxOwnSamples", int("max-own-samples", 0, 100_000)),
    ...opt("wireDType", values.wire as "float32" | "float16" | undefined),
    ...opt("quorum", int("quorum", 1, 100_000)),
    training: {
      ...opt("epochs", knob("epochs")),
      ...opt("batchSize", knob("batch-size")),
      ...opt("learningRate", knob("lr")),
      ...opt("feedback", knob("feedback")),
      ...opt("balance", knob("balance")),
      ...opt("gateInit", knob("gate-init")),
    },
  };
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError("--cert and --key go together");
  const limits = {
    ...opt("connectionsPerIp", int("max-conn-per-ip", 1, 10_000_000)),
    ...opt("joinBurstPerIp", int("join-burst-per-ip", 1, 10_000_000)),
    ...opt(
      "joinPerSecPerIp",
      values["join-rate-per-ip"] === undefined ? undefined : numFlag("join-rate-per-ip", values["join-rate-per-ip"], 0, 0.001, 1e9),
    ),
  };
  return { values, config, limits, port: intFlag("port", values.port, 3000, 0, 65_535) };
}

export async function runServe(argv: string[]): Promise<number> {
  let parsed;
  let config;
  try {
    parsed = serveConfig(argv);
    if (parsed.values.help) {
      console.log(HELP);
      return 0;
    }
    config = resolveConfig(parsed.config);
  } catch (e) {
    console.error(`flexmoe serve: ${(e as Error).message}${e instanceof UsageError || e instanceof TypeError ? `\n${HELP}` : ""}`);
    return 2;
  }
  const v = parsed.values;
  return serve({
    config,
    port: parsed.port,
    ...(v.host !== undefined && { host: v.host }),
    dataDir: v["data-dir"],
    https: v.https,
    ...(v.cert !== undefined && { cert: v.cert }),
    ...(v.key !== undefined && { key: v.key }),
    ...(v["admin-token"] !== undefined && { adminToken: v["admin-token"] }),
    logLevel: v["log-level"],
    allowOrigins: v["allow-origin"] ?? [],
    limits: parsed.limits,
  });
}

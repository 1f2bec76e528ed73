/**
 * `flexmoe leader` and `flexmoe edge`: the scaled-out coordinator (docs/scale-out.md). The leader
 * takes every `flexmoe serve` run flag (the same knob table); an edge takes only where to listen and
 * where Redis is, and reads the run's config from the leader.
 */
import { parseArgs } from "node:util";
import { resolveConfig, runEdge, runLeader } from "@flexmoe/coordinator";
import { intFlag, numFlag, UsageError } from "../options.ts";
import { serveConfig } from "./serve.ts";

const CLUSTER_FLAGS = `  --redis <url>           Redis 7 (default redis://127.0.0.1:6379)
  --prefix <p>            key prefix of this cluster (default flexmoe)
  --log-level <l>         pino level (default info)`;

const LEADER_HELP = `usage: flexmoe leader [--redis <url>] [--prefix <p>] [--lease-ms <n>] [serve's run flags]
  Runs the round engine for the edges: assignment, the combination of their partials, Q, deficit,
  checkpoint (in Redis). A second leader waits as a standby and takes over when the lease expires.
${CLUSTER_FLAGS}
  --lease-ms <n>          lease TTL: a dead leader's successor takes over within it (default 3000)
  run flags               as \`flexmoe serve --help\` lists (--experts, --strategy, --min-clients, ...)
`;

const EDGE_HELP = `usage: flexmoe edge [--redis <url>] [--prefix <p>] [--port <n>] [--host <addr>] [--id <name>]
  Holds client connections (WebSocket only), validates updates, pre-aggregates them and sends the
  leader one partial per round. Stateless: run as many as you like behind a plain load balancer.
${CLUSTER_FLAGS}
  --port <n>              port (default 3000; 0 = any free port)
  --host <addr>           listen address (default all interfaces)
  --id <name>             edge id (default random)
  --allow-origin <url>    also accept browser pages from this origin (repeatable)
  --public-url <url>      the URL volunteers join by (the load balancer's), shown on the dashboard
                          (default this edge's own address)
  --max-conn-per-ip <n> --join-burst-per-ip <n> --join-rate-per-ip <x>   as for \`flexmoe serve\`
`;

/** Takes the cluster's own flags out of argv; the rest goes to serve's parser. */
function split(argv: string[], names: readonly string[]): { own: Record<string, string>; rest: string[] } {
  const own: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const eq = a.indexOf("=");
    const name = a.startsWith("--") ? (eq > 0 ? a.slice(2, eq) : a.slice(2)) : "";
    if (names.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      own[name] = v;
    } else rest.push(a);
  }
  return { own, rest };
}

export async function runLeaderCommand(argv: string[]): Promise<number> {
  let own: Record<string, string>;
  let config;
  let leaseMs: number | undefined;
  try {
    if (argv.includes("--help") || argv.includes("-h")) {
      console.log(LEADER_HELP);
      return 0;
    }
    const s = split(argv, ["redis", "prefix", "lease-ms", "log-level"]);
    own = s.own;
    config = resolveConfig(serveConfig(s.rest).config);
    leaseMs = own["lease-ms"] === undefined ? undefined : intFlag("lease-ms", own["lease-ms"], 3000, 200, 600_000);
  } catch (e) {
    console.error(`flexmoe leader: ${(e as Error).message}\n${LEADER_HELP}`);
    return 2;
  }
  return runLeader({
    redis: own.redis ?? "redis://127.0.0.1:6379",
    prefix: own.prefix ?? "flexmoe",
    logLevel: own["log-level"] ?? "info",
    config,
    ...(leaseMs !== undefined && { leaseMs }),
  });
}

export async function runEdgeCommand(argv: string[]): Promise<number> {
  let values;
  let port: number;
  let limits: Record<string, number>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        redis: { type: "string", default: "redis://127.0.0.1:6379" },
        prefix: { type: "string", default: "flexmoe" },
        port: { type: "string", default: "3000" },
        host: { type: "string" },
        id: { type: "string" },
        "allow-origin": { type: "string", multiple: true },
        "public-url": { type: "string" },
        "max-conn-per-ip": { type: "string" },
        "join-burst-per-ip": { type: "string" },
        "join-rate-per-ip": { type: "string" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
    if (values.help) {
      console.log(EDGE_HELP);
      return 0;
    }
    port = intFlag("port", values.port, 3000, 0, 65_535);
    if (values["public-url"] !== undefined && !/^https?:\/\/[^\s/]+/.test(values["public-url"]))
      throw new UsageError(`--public-url must be an http(s) URL, got ${values["public-url"]}`);
    limits = {
      ...(values["max-conn-per-ip"] !== undefined && {
        connectionsPerIp: intFlag("max-conn-per-ip", values["max-conn-per-ip"], 0, 1, 10_000_000),
      }),
      ...(values["join-burst-per-ip"] !== undefined && {
        joinBurstPerIp: intFlag("join-burst-per-ip", values["join-burst-per-ip"], 0, 1, 10_000_000),
      }),
      ...(values["join-rate-per-ip"] !== undefined && {
        joinPerSecPerIp: numFlag("join-rate-per-ip", values["join-rate-per-ip"], 0, 0.001, 1e9),
      }),
    };
  } catch (e) {
    console.error(`flexmoe edge: ${(e as Error).message}\n${EDGE_HELP}`);
    return 2;
  }
  return runEdge({
    redis: values.redis,
    prefix: values.prefix,
    logLevel: values["log-level"],
    port,
    ...(values.host !== undefined && { host: values.host }),
    ...(values.id !== undefined && { id: values.id }),
    allowOrigins: values["allow-origin"] ?? [],
    ...(values["public-url"] !== undefined && { publicUrl: values["public-url"] }),
    limits,
  });
}

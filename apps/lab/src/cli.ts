/**
 * `flexmoe <command>`: the single command-line entry point.
 * Each command lives in ./commands/<name>.ts and returns an exit code.
 */
const USAGE = `usage: flexmoe <command> [options]

commands:
  assign [file]     solve one expert assignment (JSON on stdin or in file)
  serve             run the coordinator (web client, API, Socket.IO)
  leader            the round leader of a Redis-backed cluster (docs/scale-out.md)
  edge              a cluster edge: holds clients, pre-aggregates their updates
  experiment        simulate the paper's comparisons in Node
  bench             benchmarks (ratios measured in one run)
  admin <action>    control a running coordinator (start, pause, reset, set-strategy, set-rounds)
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "assign": {
      const { runAssign } = await import("./commands/assign.ts");
      return runAssign(rest);
    }
    case "serve": {
      const { runServe } = await import("./commands/serve.ts");
      return runServe(rest);
    }
    case "leader": {
      const { runLeaderCommand } = await import("./commands/cluster.ts");
      return runLeaderCommand(rest);
    }
    case "edge": {
      const { runEdgeCommand } = await import("./commands/cluster.ts");
      return runEdgeCommand(rest);
    }
    case "experiment": {
      const { runExperiment } = await import("./commands/experiment.ts");
      return runExperiment(rest);
    }
    case "admin": {
      const { runAdmin } = await import("./commands/admin.ts");
      return runAdmin(rest);
    }
    case "bench": {
      const { runBench } = await import("./commands/bench.ts");
      return runBench(rest);
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`flexmoe: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

/**
 * Stand-alone entry for `flexmoe bench` while the CLI dispatcher has no `bench` case:
 *   npx tsx apps/coordinator/src/bench/run.ts --quick --json
 */
import { runBench } from "../commands/bench.ts";

process.exitCode = await runBench(process.argv.slice(2));

#!/usr/bin/env node
// The `flexmoe` command. The coordinator runs from its TypeScript sources through tsx,
// so there is no stale build to forget: `npx flexmoe <command>` always runs what is checked out.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli.ts");
process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
// `npm start` and `npm test` work on a fresh clone: install the locked dependencies when
// node_modules is missing or older than package-lock.json.
import { execSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";

const marker = "node_modules/.package-lock.json";
const stale =
  !existsSync(marker) || (existsSync("package-lock.json") && statSync("package-lock.json").mtimeMs > statSync(marker).mtimeMs + 1000);
if (stale) {
  const cmd = existsSync("package-lock.json") ? "npm ci --no-audit --no-fund" : "npm install --no-audit --no-fund";
  console.log(`[ensure-install] ${cmd}`);
  execSync(cmd, { stdio: "inherit" });
}

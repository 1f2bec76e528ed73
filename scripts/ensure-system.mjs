#!/usr/bin/env node
// What the tests need from Debian, installed when missing: Chromium (Playwright cannot download its
// own browsers here; the e2e tests drive Debian's), redis-server (the cluster tests start their own
// instance on a loopback port) and the Fashion-MNIST data package used by experiments.
import { execSync } from "node:child_process";
import { existsSync } from "node:fs";

const wanted = [];
if (!existsSync("/usr/bin/chromium")) wanted.push("chromium");
if (!hasRedis()) wanted.push("redis-server");
if (!existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) wanted.push("dataset-fashion-mnist");
if (wanted.length > 0) {
  const sudo = process.getuid?.() === 0 ? "" : "sudo ";
  console.log(`[ensure-system] installing ${wanted.join(", ")} from Debian's packages`);
  try {
    execSync(`${sudo}apt-get install -y --no-install-recommends ${wanted.join(" ")}`, { stdio: "inherit" });
  } catch {
    execSync(`${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${wanted.join(" ")}`, { stdio: "inherit" });
  }
}
if (!existsSync("/usr/bin/chromium")) {
  console.error("[ensure-system] /usr/bin/chromium is still missing: e2e tests cannot run");
  process.exit(1);
}
if (!hasRedis()) {
  console.error("[ensure-system] redis-server is still missing: the cluster tests cannot run");
  process.exit(1);
}

function hasRedis() {
  try {
    execSync("redis-server --version", { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

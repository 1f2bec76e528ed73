#!/usr/bin/env node
// Playwright cannot download its own browsers here: the e2e tests drive Debian's Chromium.
// Install it (and the Fashion-MNIST data package used by experiments) when missing.
import { execSync } from "node:child_process";
import { existsSync } from "node:fs";

const wanted = [];
if (!existsSync("/usr/bin/chromium")) wanted.push("chromium");
if (!existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) wanted.push("dataset-fashion-mnist");
if (wanted.length > 0) {
  const sudo = process.getuid?.() === 0 ? "" : "sudo ";
  console.log(`[ensure-chromium] installing ${wanted.join(", ")} from Debian's packages`);
  try {
    execSync(`${sudo}apt-get install -y --no-install-recommends ${wanted.join(" ")}`, { stdio: "inherit" });
  } catch {
    execSync(`${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${wanted.join(" ")}`, { stdio: "inherit" });
  }
}
if (!existsSync("/usr/bin/chromium")) {
  console.error("[ensure-chromium] /usr/bin/chromium is still missing: e2e tests cannot run");
  process.exit(1);
}

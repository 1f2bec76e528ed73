/**
 * The volunteer page's backend choice, as a page that only opens the URL makes it: a real `flexmoe serve`
 * (no round starts: it waits for two clients) serving the built page, opened in headless Chromium with
 * the flags that give it SwiftShader's WebGL and WebGPU. Reports what the page chose, its reason line
 * (what it measured and what it skipped) and how long the page took from navigation to its decision.
 * Needs `npm run build` first (the page is served from apps/web-client/dist).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "./common.ts";
import { CHROMIUM_ARGS } from "./browser.ts";
import { startCoordinator, stopChild } from "./coordinator.ts";

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../web-client/dist/index.html");

export interface ProbeResult {
  /** The backend the page trains on (`#backend`'s data-backend). */
  backend: string;
  /** The page's own reason line (`#backend-why`). */
  reason: string;
  /** Navigation to the page's decision, ms. */
  decidedMs: number;
}

export async function benchProbe(ctx: BenchContext): Promise<ProbeResult> {
  if (!existsSync(DIST)) throw new Error("the page is not built: run `npm run build` first");
  const dataDir = await mkdtemp(path.join(tmpdir(), "flexmoe-bench-probe-"));
  const { chromium } = await import("@playwright/test");
  const browser = await chromium.launch({ executablePath: process.env.FLEXMOE_CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  let coord: Awaited<ReturnType<typeof startCoordinator>> | undefined;
  try {
    coord = await startCoordinator(["--min-clients", "2", "--max-samples", "200"], dataDir);
    // A fresh context: no remembered choice from an earlier visit, so the page measures.
    const page = await (await browser.newContext()).newPage();
    ctx.progress("probe: the page measures its backends");
    const t0 = performance.now();
    await page.goto(coord.url);
    const why = page.locator("#backend-why");
    await why.and(page.locator('[data-source="measured"]')).waitFor({ timeout: 120_000 });
    const decidedMs = Math.round(performance.now() - t0);
    const backend = (await page.locator("#backend").getAttribute("data-backend")) ?? "?";
    const reason = ((await why.textContent()) ?? "").trim();
    ctx.progress(`probe: chose ${backend} after ${decidedMs} ms`);
    return { backend, reason, decidedMs };
  } finally {
    await browser.close();
    if (coord) await stopChild(coord.proc);
    await rm(dataDir, { recursive: true, force: true });
  }
}

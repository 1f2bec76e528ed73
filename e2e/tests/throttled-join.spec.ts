/**
 * The light page on a slow network: Chrome's "Fast 3G" profile (CDP Network.emulateNetworkConditions),
 * a first visit and a return visit (browser cache and the remembered backend). It reports, as test
 * annotations and on the console, the time to join (the page's `flexmoe:joined` mark: its first script
 * has run and the coordinator has answered `client:join`) and to ready (data shard, TF.js and the
 * backend loaded), and the bytes fetched before the join. It asserts what does not depend on this
 * machine: the page joins both times, the return visit does not measure again, and the page's JS before
 * TF.js is within its 150 kB gzip budget.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, expect, test, type Browser, type Page } from "@playwright/test";
import { pageEntry, readBundleSizes } from "@flexmoe/web-client/bundle-sizes";
import { BASE_ARGS, CHROMIUM } from "../playwright.config.ts";
import { startCoordinator, type RunningCoordinator } from "../support/coordinator.ts";

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../apps/web-client/dist");
const BUDGET_GZIP_BYTES = 150_000;
/** DevTools' Fast 3G: 562.5 ms round trip, 1.6 Mbit/s down, 750 kbit/s up, each at 90%. */
const FAST_3G = {
  offline: false,
  latency: 562.5,
  downloadThroughput: ((1.6 * 1024 * 1024) / 8) * 0.9,
  uploadThroughput: ((750 * 1024) / 8) * 0.9,
};

let coord: RunningCoordinator;
let browser: Browser;

test.beforeAll(async () => {
  // No round starts (one page, two needed): this is about loading. A small shard keeps the ready time
  // about the page, not about the data.
  coord = await startCoordinator(["--min-clients", "2", "--max-samples", "200"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
});

test.afterAll(async () => {
  await browser?.close();
  await coord?.stop();
});

interface Visit {
  joinedMs: number;
  readyMs: number;
  /** Bytes over the network (headers and bodies, compressed) for the document and every resource fetched before the join. */
  bytesBeforeJoin: number;
  scripts: string[];
}

async function visit(page: Page, go: () => Promise<unknown>): Promise<Visit> {
  await go();
  await expect(page.locator("#client")).toHaveText(/^c\d+$/, { timeout: 60_000 });
  await expect(page.locator("#state")).toHaveAttribute("data-state", "waiting", { timeout: 120_000 });
  return page.evaluate(() => {
    const mark = (name: string) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
    const joinedMs = mark("flexmoe:joined");
    const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
    const resources = performance.getEntriesByType("resource") as PerformanceResourceTiming[];
    const before = resources.filter((r) => r.responseEnd <= joinedMs);
    return {
      joinedMs,
      readyMs: mark("flexmoe:ready"),
      bytesBeforeJoin: nav.transferSize + before.reduce((a, r) => a + r.transferSize, 0),
      scripts: resources.filter((r) => r.name.endsWith(".js")).map((r) => new URL(r.name).pathname),
    };
  });
}

test("on Fast 3G the page joins, first visit and return visit", async () => {
  const sizes = pageEntry(readBundleSizes(DIST))!;
  expect(sizes.initialJs.gzipBytes).toBeLessThanOrEqual(BUDGET_GZIP_BYTES);

  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`[page] ${e.message}`));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", FAST_3G);

  const first = await visit(page, () => page.goto(coord.url));
  await expect(page.locator("#backend-why")).toHaveAttribute("data-source", "measured");
  const chosen = (await page.locator("#backend").getAttribute("data-backend"))!;
  const again = await visit(page, () => page.reload());
  await expect(page.locator("#backend-why")).toHaveAttribute("data-source", "remembered");
  await expect(page.locator("#backend")).toHaveText(chosen);
  // The return visit loads the remembered backend's chunk and no other (vite.config.ts names them).
  const backendChunks = again.scripts.flatMap(
    (s) => /\/assets\/(?:tfjs-(cpu|webgl|webgpu)|(wasm))-/.exec(s)?.slice(1).filter(Boolean) ?? [],
  );
  expect(backendChunks).toEqual([chosen]);

  const kb = (n: number) => `${(n / 1000).toFixed(1)} kB`;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const line = (name: string, v: Visit) =>
    `${name}: joined at ${s(v.joinedMs)} (${kb(v.bytesBeforeJoin)} fetched), ready at ${s(v.readyMs)}`;
  const report = [
    `Fast 3G, ${chosen}; page JS before TF.js ${kb(sizes.initialJs.gzipBytes)} gzip`,
    line("first visit", first),
    line("return visit", again),
  ];
  for (const r of report) {
    console.log(r);
    test.info().annotations.push({ type: "time to join", description: r });
  }
});

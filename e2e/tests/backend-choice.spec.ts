/**
 * The page picks its backend by measuring. In a Chromium whose WebGPU is SwiftShader (a software
 * adapter: the flags multi-browser-rounds uses for its WebGPU page), a page that only opens the URL must
 * not train on WebGPU, must not even fetch the WebGPU chunk, must tell the coordinator what it chose,
 * and its rounds must close about as fast as a page with that backend forced by ?backend= (the same
 * coordinator, one page at a time, three rounds each, compared in this test: no absolute timing).
 */
import { chromium, expect, test, type Browser, type Page } from "@playwright/test";
import { BASE_ARGS, CHROMIUM, WEBGPU_ARGS } from "../playwright.config.ts";
import { startCoordinator, type RunningCoordinator } from "../support/coordinator.ts";

let coord: RunningCoordinator;
let browser: Browser;

test.beforeAll(async () => {
  coord = await startCoordinator([
    "--experts",
    "4",
    "--min-clients",
    "1",
    "--rounds",
    "3",
    "--partition",
    "iid",
    // Rounds of a few seconds, so a 2x bound is about the backend and not about scheduling noise.
    "--max-samples",
    "500",
    "--epochs",
    "1",
    "--gather-ms",
    "200",
  ]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...WEBGPU_ARGS] });
});

test.afterAll(async () => {
  await browser?.close();
  await coord?.stop();
});

async function open(query: string): Promise<{ page: Page; requests: string[] }> {
  const page = await (await browser.newContext()).newPage();
  const requests: string[] = [];
  page.on("request", (r) => requests.push(new URL(r.url()).pathname));
  page.on("pageerror", (e) => console.log(`[page ${query || "auto"}] ${e.message}`));
  await page.goto(`${coord.url}${query}`);
  return { page, requests };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

test("with a software WebGPU adapter the page measures, skips WebGPU, and trains as fast as the forced choice", async () => {
  const auto = await open("");
  const why = auto.page.locator("#backend-why");
  await expect(why).toHaveAttribute("data-source", "measured", { timeout: 60_000 });
  await expect(why).toContainText("WebGPU skipped: software adapter");
  await expect(auto.page.locator("#remeasure")).toBeVisible();
  const chosen = (await auto.page.locator("#backend").getAttribute("data-backend"))!;
  console.log(`automatic choice: ${chosen} (${await why.textContent()})`);
  expect(chosen).not.toBe("webgpu");
  expect(auto.requests.filter((p) => p.includes("tfjs-webgpu"))).toEqual([]);

  await expect.poll(async () => (await coord.status()).round, { timeout: 120_000, intervals: [1_000] }).toBe(3);
  const id = await auto.page.locator("#client").textContent();
  // The page joined before it had measured; its rejoin told the coordinator what it trains on.
  expect((await coord.status()).clients.find((c) => c.id === id)?.backend).toBe(chosen);
  await auto.page.context().close();

  const forced = await open(`?backend=${chosen}`);
  await expect(forced.page.locator("#backend")).toHaveText(chosen);
  await expect(forced.page.locator("#backend-why")).toHaveAttribute("data-source", "forced");
  expect((await coord.admin({ action: "set-rounds", value: 6 })).ok).toBe(true);
  await expect.poll(async () => (await coord.status()).round, { timeout: 120_000, intervals: [1_000] }).toBe(6);
  await forced.page.context().close();

  const history = (await coord.status()).history;
  expect(history.map((h) => h.participants)).toEqual([1, 1, 1, 1, 1, 1]);
  // Each page's first round is a warm-up (the page's first kernels): rounds 2-3 and 5-6 count. Rounds also
  // get faster over a run's first minute whichever page trains (forced-then-automatic showed it the other
  // way round), so this order, automatic first, is the one that is against the automatic page.
  const autoMs = mean(history.slice(1, 3).map((h) => h.durationMs));
  const forcedMs = mean(history.slice(4, 6).map((h) => h.durationMs));
  const note = `${chosen}: automatic ${autoMs.toFixed(0)} ms a round, forced ${forcedMs.toFixed(0)} ms (rounds ${history.map((h) => h.durationMs).join(", ")} ms)`;
  console.log(note);
  test.info().annotations.push({ type: "round time", description: note });
  expect(autoMs).toBeLessThan(2 * forcedMs);
  expect(forcedMs).toBeLessThan(2 * autoMs);
});

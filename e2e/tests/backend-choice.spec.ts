/**
 * The page picks its backend by measuring. In a Chromium whose WebGPU is SwiftShader (a software
 * adapter: the flags multi-browser-rounds uses for its WebGPU page), a page that only opens the URL must
 * not train on WebGPU, must not even fetch the WebGPU chunk, must tell the coordinator what it chose,
 * and its rounds must close about as fast as those of a page with that backend forced by ?backend=.
 * Both pages stay open and take turns, one round each (the other paused), so the drift of a shared
 * machine hits both alike; compared in this test, no absolute timing.
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
    // One round at a time: the test raises the limit (admin set-rounds) for each turn.
    "--rounds",
    "1",
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

/** Round `round` with `active` only: `idle` paused (out of the ready set), then the round limit raised. */
async function turn(round: number, active: Page, idle: Page | null): Promise<void> {
  const pause = async (page: Page, paused: boolean) => {
    const button = page.locator("#pause");
    if ((await button.textContent()) !== (paused ? "Resume" : "Pause")) await button.click();
    await expect(page.locator("#state")).toHaveAttribute("data-state", paused ? "paused" : "waiting", { timeout: 60_000 });
  };
  if (idle) await pause(idle, true);
  await pause(active, false);
  if (round > 1) expect((await coord.admin({ action: "set-rounds", value: round })).ok).toBe(true);
  await expect.poll(async () => (await coord.status()).round, { timeout: 120_000, intervals: [500] }).toBe(round);
}

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
  await turn(1, auto.page, null);
  const id = await auto.page.locator("#client").textContent();
  // The page joined before it had measured; its rejoin told the coordinator what it trains on.
  expect((await coord.status()).clients.find((c) => c.id === id)?.backend).toBe(chosen);

  const forced = await open(`?backend=${chosen}`);
  await expect(forced.page.locator("#backend")).toHaveText(chosen);
  await expect(forced.page.locator("#backend-why")).toHaveAttribute("data-source", "forced");
  // Rounds 1 and 2 are each page's first (its first kernels); 3-6 alternate and count.
  const order = [forced, auto, forced, auto, forced];
  for (const [i, p] of order.entries()) await turn(i + 2, p.page, (p === auto ? forced : auto).page);

  const history = (await coord.status()).history;
  expect(history.map((h) => h.participants)).toEqual([1, 1, 1, 1, 1, 1]);
  const ms = history.map((h) => h.durationMs);
  const autoMs = mean([ms[2]!, ms[4]!]);
  const forcedMs = mean([ms[3]!, ms[5]!]);
  const note = `${chosen}: automatic ${autoMs.toFixed(0)} ms a round, forced ${forcedMs.toFixed(0)} ms (rounds ${ms.join(", ")} ms; rounds 1, 3, 5 automatic)`;
  console.log(note);
  test.info().annotations.push({ type: "round time", description: note });
  expect(autoMs).toBeLessThan(2 * forcedMs);
  expect(forcedMs).toBeLessThan(2 * autoMs);
});

/**
 * The must-show of `npm start` and the classroom target: the coordinator with its defaults (built-in
 * MNIST, 8 experts, flex, Dirichlet 0.8 shards, 5 local epochs, hold limit 6) and three pages that just
 * open the URL (automatic backend and capacity) finish five rounds with loads inside the balanced
 * bounds, and their mean personalized accuracy is at least 0.90 in round 5. Only `--rounds 5` is
 * added, so the run ends.
 */
import { chromium, expect, test, type Browser } from "@playwright/test";
import { BASE_ARGS, CHROMIUM } from "../playwright.config.ts";
import { startCoordinator, type RunningCoordinator } from "../support/coordinator.ts";

const ROUNDS = 5;
let coord: RunningCoordinator;
let browser: Browser;

test.beforeAll(async () => {
  coord = await startCoordinator(["--rounds", String(ROUNDS)]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
});
test.afterAll(async () => {
  await browser?.close();
  await coord?.stop();
});

test("three pages on the defaults finish five balanced rounds at >= 0.90 personalized accuracy", async () => {
  for (let i = 0; i < 3; i++) {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => console.log(`[page ${i}] ${e.message}`));
    await page.goto(coord.url);
  }
  await expect.poll(async () => (await coord.status()).round, { timeout: 5 * 60_000, intervals: [2_000] }).toBe(ROUNDS);
  const status = await coord.status();
  console.log(`rounds: ${JSON.stringify(status.history.map((h) => ({ round: h.round, accuracy: h.accuracy, load: h.load })))}`);
  const slots = status.clients.reduce((s, c) => s + c.capacity, 0);
  const fair = slots / 8;
  for (const h of status.history) {
    expect(h.participants).toBe(3);
    expect(h.load.reduce((a, b) => a + b, 0)).toBe(slots);
    // Balanced: every expert's holder count is the floor or the ceiling of the fair share.
    for (const l of h.load) expect([Math.floor(fair), Math.ceil(fair)]).toContain(l);
  }
  expect(status.history).toHaveLength(ROUNDS);
  expect(status.history[ROUNDS - 1]!.accuracy!).toBeGreaterThanOrEqual(0.9);
});

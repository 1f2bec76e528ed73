/**
 * The classroom, driven like a person: three volunteers (one on a 360 x 640 phone-size page) join,
 * the phone draws digits, adds them to its own data and tries the model; the teacher's dashboard
 * shows the QR code, four charts filled from two completed rounds and the client list, and its
 * admin controls answer. Screenshots go to test-results/ (and to docs/screenshots/ with
 * UPDATE_SCREENSHOTS=1).
 */
import { copyFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, expect, test, type Browser, type Page, type TestInfo } from "@playwright/test";
import { BASE_ARGS, CHROMIUM } from "../playwright.config.ts";
import { startCoordinator, type RunningCoordinator } from "../support/coordinator.ts";
import { draw, ONE, SEVEN } from "../support/pad.ts";

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../docs/screenshots");

let coord: RunningCoordinator;
let browser: Browser;

test.beforeAll(async () => {
  coord = await startCoordinator([
    "--preset",
    "dense",
    "--max-samples",
    "120",
    "--min-clients",
    "3",
    "--rounds",
    "2",
    "--partition",
    "classes:4",
    "--gather-ms",
    "300",
    "--round-timeout",
    "120",
  ]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
});

test.afterAll(async () => {
  await browser?.close();
  await coord?.stop();
});

async function shot(page: Page, info: TestInfo, name: string): Promise<void> {
  const file = info.outputPath(name);
  await page.screenshot({ path: file, fullPage: true });
  await info.attach(name, { path: file, contentType: "image/png" });
  if (process.env.UPDATE_SCREENSHOTS === "1") {
    mkdirSync(DOCS, { recursive: true });
    copyFileSync(file, path.join(DOCS, name));
  }
}

test("volunteers join, the phone draws and predicts, the dashboard shows two rounds", async ({ browserName: _ }, info) => {
  const phoneCtx = await browser.newContext({ viewport: { width: 360, height: 640 }, deviceScaleFactor: 2 });
  const phone = await phoneCtx.newPage();
  phone.on("pageerror", (e) => console.log(`[phone] ${e.message}`));
  await phone.goto(`${coord.url}?backend=webgl`);
  const others: Page[] = [];
  for (const q of ["backend=webgl&capacity=2", "backend=wasm&capacity=2"]) {
    const p = await (await browser.newContext()).newPage();
    await p.goto(`${coord.url}?${q}`);
    others.push(p);
  }

  // The phone page: backend, an automatic capacity from the probe, a clear state.
  await expect(phone.locator("#backend")).toHaveText("webgl");
  await expect(phone.locator("#capacity-why")).toContainText("quick test");
  await expect(phone.locator("#capacity-input")).toBeEnabled();
  await expect(phone.locator("#state")).toHaveAttribute("data-state", /waiting|training|uploading/);

  // Own data: draw a 1, label it, add it; the pad clears and the count says so.
  await phone.locator("#pad").scrollIntoViewIfNeeded();
  await draw(phone, ONE);
  await phone.locator("#pad-label").selectOption("1");
  await phone.locator("#pad-add").click();
  await expect(phone.locator("#pad-count")).toHaveAttribute("data-count", "1");
  await draw(phone, SEVEN);
  await phone.locator("#pad-label").selectOption("7");
  await phone.locator("#pad-add").click();
  await expect(phone.locator("#pad-count")).toHaveAttribute("data-count", "2");

  // The teacher's dashboard, with the admin link printed at start-up.
  const dashCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const dash = await dashCtx.newPage();
  dash.on("pageerror", (e) => console.log(`[dashboard] ${e.message}`));
  await dash.goto(`${coord.url}dashboard#admin=${coord.adminToken()}`);
  await expect(dash.locator("#conn")).toHaveAttribute("data-connected", "true");
  await expect(dash.locator("#qr")).toHaveAttribute("data-url", /^http:\/\//);

  await expect.poll(async () => (await coord.status()).round, { timeout: 4 * 60_000, intervals: [1_000] }).toBe(2);

  // Try it: the personalized model answers with class probabilities and the gate's expert.
  await expect(phone.locator("#accuracy li")).toHaveCount(2);
  await draw(phone, SEVEN);
  await phone.locator("#pad-try").click();
  await expect(phone.locator("#pad-guess")).toHaveAttribute("data-digit", /^\d$/);
  await expect(phone.locator("#pad-expert")).toHaveAttribute("data-expert", /^\d+$/);
  await expect(phone.locator("#pad-probs li")).toHaveCount(10);

  // The dashboard got the two rounds by push: four charts, the heat map with the assignment, the clients.
  await expect(dash.locator("body")).toHaveAttribute("data-round", "2");
  await expect(dash.locator("#chart-accuracy")).toHaveAttribute("data-points", "2");
  await expect(dash.locator("#chart-cv")).toHaveAttribute("data-points", "2");
  await expect(dash.locator("#chart-load")).toHaveAttribute("data-points", "8");
  await expect(dash.locator("#fitness tbody tr")).toHaveCount(3);
  await expect(dash.locator("#fitness td.assigned")).not.toHaveCount(0);
  await expect(dash.locator("#clients tbody tr")).toHaveCount(3);
  await expect(dash.locator("#phase")).toHaveText("finished");
  await expect(dash.locator("#admin")).toBeVisible();

  await shot(dash, info, "dashboard.png");
  await phone.evaluate(() => window.scrollTo(0, 0));
  await shot(phone, info, "phone-client.png");

  // Admin from the dashboard: pause, allow a third round (stays paused), start, and it runs.
  await dash.locator("#btn-pause").click();
  await expect(dash.locator("#admin-msg")).toContainText("pause: done");
  await dash.locator("#inp-rounds").fill("3");
  await dash.locator("#btn-rounds").click();
  await expect(dash.locator("#admin-msg")).toContainText("set-rounds: done (paused)");
  await expect(dash.locator("#phase")).toHaveText("paused");
  await expect(dash.locator("#round-limit")).toHaveText(" / 3");
  await dash.locator("#btn-start").click();
  await expect(dash.locator("#admin-msg")).toContainText("start: done");
  await expect(dash.locator("body")).toHaveAttribute("data-round", "3", { timeout: 120_000 });
  await expect(dash.locator("#phase")).toHaveText("finished");
});

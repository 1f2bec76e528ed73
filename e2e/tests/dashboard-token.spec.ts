/**
 * The admin link on a projected dashboard: `/dashboard#admin=<token>` must not leave the token in the
 * address bar. The page keeps it in sessionStorage (controls still work, also after a reload) and
 * removes it from the URL with history.replaceState.
 */
import { chromium, expect, test, type Browser } from "@playwright/test";
import { BASE_ARGS, CHROMIUM } from "../playwright.config.ts";
import { startCoordinator, type RunningCoordinator } from "../support/coordinator.ts";

let coord: RunningCoordinator;
let browser: Browser;

test.beforeAll(async () => {
  coord = await startCoordinator(["--preset", "dense", "--max-samples", "60"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
});

test.afterAll(async () => {
  await browser?.close();
  await coord?.stop();
});

test("the admin token moves from the URL to sessionStorage; the controls keep working", async () => {
  const token = coord.adminToken();
  expect(token.length).toBeGreaterThan(10);
  const page = await browser.newPage();
  await page.goto(`${coord.url}dashboard#admin=${token}`);
  await expect(page.locator("#admin")).toBeVisible();
  expect(page.url()).toBe(`${coord.url}dashboard`);
  // Replaced, not pushed: Back leaves the page instead of showing the token again.
  await page.goBack();
  expect(page.url()).toBe("about:blank");
  await page.goForward();
  expect(page.url()).toBe(`${coord.url}dashboard`);
  await expect(page.locator("#admin")).toBeVisible();
  expect(await page.evaluate(() => sessionStorage.getItem("flexmoe.adminToken"))).toBe(token);
  await page.locator("#btn-pause").click();
  await expect(page.locator("#admin-msg")).toContainText("pause: done");

  await page.reload();
  await expect(page.locator("#admin")).toBeVisible();
  await page.locator("#btn-start").click();
  await expect(page.locator("#admin-msg")).toContainText("start: done");
  expect(page.url()).not.toContain(token);

  // Another tab without the link has no controls (sessionStorage is per tab).
  const other = await browser.newPage();
  await other.goto(`${coord.url}dashboard`);
  await expect(other.locator("#phase")).not.toBeEmpty();
  await expect(other.locator("#admin")).toBeHidden();
});

/**
 * The must-show of issue 5: two real browser pages are training when the coordinator is killed
 * with SIGKILL. It is restarted on the same port with the same --data-dir; /api/status continues
 * from the last completed round with its history intact, and the pages reconnect under their old
 * identities and carry on past the kill point.
 */
import { chromium, expect, test, type Browser, type Page } from "@playwright/test";
import { BASE_ARGS, CHROMIUM } from "../playwright.config.ts";
import { startCoordinator, type RunningCoordinator, type Status } from "../support/coordinator.ts";
import { freePort } from "@flexmoe/testkit";

let browser: Browser;
const coords: RunningCoordinator[] = [];

test.beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
});
test.afterAll(async () => {
  await browser?.close();
  for (const c of coords) await c.stop();
});

type FullStatus = Status & { runId: string; currentRound: number | null; clients: { id: string }[] };

test("kill -9 while browsers train, restart with the same data dir: the run and the pages carry on", async () => {
  const port = await freePort();
  const args = [
    "--port",
    String(port),
    "--preset",
    "dense",
    "--experts",
    "4",
    "--shards",
    "4",
    "--min-clients",
    "2",
    "--partition",
    "iid",
    "--max-samples",
    "120",
    "--gather-ms",
    "200",
    "--round-timeout",
    "60",
  ];
  const first = await startCoordinator(args);
  coords.push(first);
  const status = async (c: RunningCoordinator) => (await c.status()) as FullStatus;

  const pages: Page[] = [];
  for (const q of ["backend=wasm&capacity=2", "backend=wasm&capacity=2"]) {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => console.log(`[page ${q}] ${e.message}`));
    await page.goto(`${first.url}?${q}`);
    pages.push(page);
  }

  // Let two rounds complete, then kill while the third is being trained.
  await expect
    .poll(
      async () => {
        const s = await status(first);
        return s.round >= 2 && s.currentRound !== null;
      },
      { timeout: 120_000, intervals: [100] },
    )
    .toBe(true);
  const beforeKill = await status(first);
  first.proc.kill("SIGKILL");
  await new Promise((r) => (first.proc.exitCode !== null || first.proc.signalCode !== null ? r(null) : first.proc.once("exit", r)));
  console.log(`killed at round ${beforeKill.round} (round ${beforeKill.currentRound} in flight)`);

  const second = await startCoordinator(["--data-dir", first.dataDir, ...args]);
  coords.push(second);
  const resumed = await status(second);
  expect(resumed.runId).toBe(beforeKill.runId);
  expect(resumed.round).toBeGreaterThanOrEqual(beforeKill.round);
  expect(resumed.history.slice(0, beforeKill.history.length)).toEqual(beforeKill.history);
  expect(resumed.history.map((h) => h.round)).toEqual(Array.from({ length: resumed.round }, (_, i) => i + 1));

  // The pages reconnect by themselves, rejoin with their stored tokens and train on.
  await expect
    .poll(async () => (await status(second)).round, { timeout: 180_000, intervals: [500] })
    .toBeGreaterThanOrEqual(resumed.round + 2);
  const after = await status(second);
  expect(after.clients.map((c) => c.id).sort()).toEqual(beforeKill.clients.map((c) => c.id).sort());
  expect(after.history.slice(0, beforeKill.history.length)).toEqual(beforeKill.history);
  for (const h of after.history.slice(resumed.round)) expect(h.participants).toBe(2);
  for (const page of pages) await expect(page.locator("#state")).not.toHaveAttribute("data-state", "error");
  console.log(
    `resumed at round ${resumed.round}, reached round ${after.round}; accuracy per round: ${after.history.map((h) => h.accuracy?.toFixed(3)).join(" ")}`,
  );
});

/**
 * The classroom as a teacher meets it, measured: `flexmoe serve` with the defaults plus $FLAGS, three
 * headless pages that only open the URL, five rounds; one line per run (flags, accuracy per round,
 * seconds from the pages opening to round 5, each page's backend and capacity) on stdout and appended
 * to test-results/classroom.log. RUNS (default 3) runs in a row. The README's classroom numbers come
 * from here.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, expect, test } from "@playwright/test";
import { BASE_ARGS, CHROMIUM } from "../playwright.config.ts";
import { startCoordinator } from "../support/coordinator.ts";

const FLAGS = (process.env.FLAGS ?? "").split(" ").filter(Boolean);
const RUNS = Number(process.env.RUNS ?? 3);
const LOG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test-results/classroom.log");

for (let r = 0; r < RUNS; r++) {
  test(`classroom run ${r + 1} of ${RUNS}`, async () => {
    const coord = await startCoordinator(["--rounds", "5", ...FLAGS]);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
    const t0 = Date.now();
    try {
      for (let i = 0; i < 3; i++) await (await (await browser.newContext()).newPage()).goto(coord.url);
      await expect.poll(async () => (await coord.status()).round, { timeout: 6 * 60_000, intervals: [1_000] }).toBe(5);
      const s = await coord.status();
      const line = `${FLAGS.join(" ") || "(defaults)"} | ${s.history.map((h) => h.accuracy?.toFixed(3)).join(" ")} | ${(
        (Date.now() - t0) /
        1000
      ).toFixed(0)} s | ${s.clients.map((c) => `${c.backend}:${c.capacity}`).join(",")}`;
      console.log(line);
      mkdirSync(path.dirname(LOG), { recursive: true });
      appendFileSync(LOG, line + "\n");
      expect(s.history).toHaveLength(5);
    } finally {
      await browser.close();
      await coord.stop();
    }
  });
}

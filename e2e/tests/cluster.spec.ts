/**
 * The scaled-out coordinator with real browsers: a real redis-server on loopback, `flexmoe leader`,
 * two `flexmoe edge`s, and two Chromium pages, one opened on each edge, that only open the URL.
 * Three rounds complete with both pages in every one (the leader combines the edges' partials), and
 * the read-only dashboard on an edge charts them.
 */
import { chromium, expect, test, type Browser, type Page } from "@playwright/test";
import { Redis } from "ioredis";
import { freePort, killServeProcesses, spawnFlexmoe, startRedis, type RedisServer, type ServeProcess } from "@flexmoe/testkit";
import { BASE_ARGS, CHROMIUM } from "../playwright.config.ts";

const PREFIX = "e2e";
let redis: RedisServer;
let browser: Browser;
const procs: ServeProcess[] = [];

test.beforeAll(async () => {
  redis = await startRedis();
  const common = ["--redis", redis.url, "--prefix", PREFIX];
  // The dense preset and small shards: this checks the cluster's loop, not learning (docs/results does that).
  const leader = spawnFlexmoe(
    "leader",
    [
      ...common,
      ...["--preset", "dense", "--experts", "4", "--min-clients", "2", "--rounds", "3", "--partition", "iid"],
      ...["--max-samples", "150", "--epochs", "1", "--gather-ms", "500", "--round-timeout", "120"],
    ],
    /leader ready/,
  );
  procs.push(leader);
  await leader.ready(30_000);
  for (const id of ["e1", "e2"]) {
    const port = await freePort();
    const edge = spawnFlexmoe("edge", [...common, "--port", String(port), "--host", "127.0.0.1", "--id", id], /edge listening/);
    procs.push(edge);
    await edge.ready(30_000);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: BASE_ARGS });
});

test.afterAll(async () => {
  await browser?.close();
  killServeProcesses();
  await redis?.stop();
});

test("pages on two edges complete three rounds led by one leader", async () => {
  test.setTimeout(6 * 60_000);
  const urls = procs.slice(1).map((p) => /edge \S+: (http:\/\/\S+)/.exec(p.output())![1]!);
  const pages: Page[] = [];
  for (const url of urls) {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => console.log(`[page ${url}] ${e.message}`));
    await page.goto(`${url}?backend=webgl&capacity=2`);
    pages.push(page);
  }
  const kv = new Redis(redis.url);
  try {
    const applied = async () => {
      const raw = await kv.get(`${PREFIX}:run`);
      return raw ? (JSON.parse(raw) as { round: number }).round : 0;
    };
    await expect.poll(applied, { timeout: 5 * 60_000, intervals: [2_000] }).toBe(3);
    // Each page trained in every round, on its own edge (the page shows the rounds it took part in).
    for (const page of pages) {
      await expect(page.locator("#round")).toHaveText("3");
      await expect(page.locator("#accuracy li")).toHaveCount(3);
    }
    const log = procs[0]!.output();
    // Every round's combination came from both edges' partials.
    const closes = log.split("\n").filter((l) => l.includes('"msg":"round closed"'));
    expect(closes).toHaveLength(3);
    for (const l of closes) expect(JSON.parse(l)).toMatchObject({ participants: 2, edges: 2 });
    // Any edge's dashboard shows the leader's run (read-only: no admin token in cluster mode).
    const dash = await (await browser.newContext()).newPage();
    dash.on("pageerror", (e) => console.log(`[dashboard] ${e.message}`));
    await dash.goto(`${urls[1]}dashboard`);
    await expect(dash.locator("body")).toHaveAttribute("data-round", "3");
    await expect(dash.locator("#chart-accuracy")).toHaveAttribute("data-points", "3");
    await expect(dash.locator("#phase")).toHaveText("finished");
    await expect(dash.locator("#qr")).toHaveAttribute("data-url", urls[1]!);
  } finally {
    kv.disconnect();
  }
});

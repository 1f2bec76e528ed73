/**
 * Browser training bench driver: bundles ./browser/page.ts with esbuild, serves it on loopback with the
 * TF.js WASM binaries, and runs it in headless Chromium (Playwright) once per backend, each in a fresh page.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "./common.ts";
import type { PageConfig, PageResult } from "./browser/page.ts";
import { ratio, sig } from "./stats.ts";
import { servePage, type ServedPage } from "@flexmoe/testkit";

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const BROWSER_BACKENDS = ["webgl", "webgpu", "wasm", "cpu"] as const;

export interface BrowserRow {
  backend: string;
  /** Model preset of both sides (WASM lacks the CNN's Conv2DBackpropFilter, so it runs "dense"). */
  preset: "cnn" | "dense";
  ok: boolean;
  error?: string;
  moeSamplesPerSec: number | null;
  denseSamplesPerSec: number | null;
  /** moeSamplesPerSec / denseSamplesPerSec. */
  ratio: number | null;
  tensorsAfter1: number | null;
  tensorsAfter3: number | null;
  samples: number;
  reps: number;
}

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  // WebGPU on SwiftShader (no GPU here); WebGL also renders through SwiftShader.
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-angle=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--enable-unsafe-swiftshader",
];

export async function benchBrowser(ctx: BenchContext, backends: readonly string[] = BROWSER_BACKENDS): Promise<BrowserRow[]> {
  const cfgBase = { batchSize: 32, experts: 8, capacity: 2, reps: ctx.quick ? 2 : 5 };
  // Samples per round and budget per backend: SwiftShader (WebGL, WebGPU) and the plain-JS CPU backend are
  // slow on a small shared machine, so they get fewer samples to keep the run bounded.
  const samplesFor = (b: string): number => (b === "wasm" ? (ctx.quick ? 256 : 1024) : ctx.quick ? 64 : 128);
  let served: ServedPage | undefined;
  const { chromium } = await import("@playwright/test");
  const browser = await chromium.launch({ executablePath: process.env.FLEXMOE_CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  try {
    ctx.progress("browser: bundling the bench page");
    served = await servePage(path.join(HERE, "browser/page.ts"));
    const url = served.url;
    const rows: BrowserRow[] = [];
    for (const backend of backends) {
      if (ctx.quick && backend === "webgpu") {
        // Compiling the WebGPU shaders on SwiftShader alone takes about 30 s here: full run only.
        rows.push({
          backend,
          preset: "cnn",
          ok: false,
          error: "skipped in --quick (SwiftShader shader compilation > 30 s)",
          moeSamplesPerSec: null,
          denseSamplesPerSec: null,
          ratio: null,
          tensorsAfter1: null,
          tensorsAfter3: null,
          samples: 0,
          reps: 0,
        });
        continue;
      }
      // The CPU and SwiftShader-WebGPU backends are far slower: fewer samples keep the run bounded.
      // SwiftShader WebGPU compiles its shaders for ~50 s and trains at a few samples/s: 64 samples,
      // the 2 reps the tensor-count check needs, and a longer budget.
      const gpu = backend === "webgpu";
      const cfg: PageConfig = {
        ...cfgBase,
        backend,
        preset: backend === "wasm" ? "dense" : "cnn",
        samples: gpu ? 64 : samplesFor(backend),
        ...(gpu && { reps: 2 }),
      };
      ctx.progress(`browser: ${backend} (${cfg.samples} samples x ${cfg.reps} reps)`);
      const page = await browser.newPage();
      page.on("console", (m) => {
        const t = m.text();
        if (t.startsWith("[bench] ")) ctx.progress(`browser: ${t.slice(8)}`);
      });
      let r: PageResult;
      try {
        await page.goto(url);
        await page.waitForFunction(() => "flexmoeBench" in globalThis, undefined, { timeout: 30_000 });
        const budget = ctx.quick ? 30_000 : gpu ? 300_000 : 150_000;
        let timer: ReturnType<typeof setTimeout> | undefined;
        r = await Promise.race([
          page.evaluate(
            (c) => (globalThis as unknown as { flexmoeBench: { run(c: PageConfig): Promise<PageResult> } }).flexmoeBench.run(c),
            cfg,
          ),
          new Promise<PageResult>((resolve) => {
            timer = setTimeout(() => resolve({ backend, ok: false, error: `over the ${budget / 1000} s budget` }), budget);
          }),
        ]).finally(() => clearTimeout(timer));
      } catch (e) {
        r = { backend, ok: false, error: (e as Error).message.split("\n")[0] ?? "failed" };
      } finally {
        await page.close().catch(() => undefined);
      }
      const moe = r.moeSamplesPerSec ?? null;
      const dense = r.denseSamplesPerSec ?? null;
      rows.push({
        backend,
        preset: cfg.preset,
        ok: r.ok,
        ...(r.error !== undefined && { error: r.error }),
        moeSamplesPerSec: moe === null ? null : sig(moe),
        denseSamplesPerSec: dense === null ? null : sig(dense),
        ratio: moe === null || dense === null ? null : sig(ratio(moe, dense) ?? Number.NaN),
        tensorsAfter1: r.tensorsAfter1 ?? null,
        tensorsAfter3: r.tensorsAfter3 ?? null,
        samples: cfg.samples,
        reps: cfg.reps,
      });
    }
    return rows;
  } finally {
    await browser.close().catch(() => undefined);
    await served?.close();
  }
}

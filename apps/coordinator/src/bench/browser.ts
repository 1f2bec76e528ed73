/**
 * Browser training bench driver: bundles ./browser/page.ts with esbuild, serves it on loopback with the
 * TF.js WASM binaries, and runs it in headless Chromium (Playwright) once per backend, each in a fresh page.
 */
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "./common.ts";
import type { PageConfig, PageResult } from "./browser/page.ts";
import { ratio, sig } from "./stats.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../../../..");

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

const CHROMIUM_ARGS = [
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

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

async function bundle(dir: string): Promise<void> {
  const { build } = await import("esbuild");
  await build({
    entryPoints: [path.join(HERE, "browser/page.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outfile: path.join(dir, "page.js"),
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "error",
  });
  const wasmDir = path.join(ROOT, "node_modules/@tensorflow/tfjs-backend-wasm/dist");
  for (const f of await readdir(wasmDir)) if (f.endsWith(".wasm")) await copyFile(path.join(wasmDir, f), path.join(dir, f));
  await writeFile(
    path.join(dir, "index.html"),
    '<!doctype html><meta charset="utf-8"><title>flexmoe bench</title><script type="module" src="/page.js"></script>\n',
  );
}

function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const name = path.basename(new URL(req.url ?? "/", "http://x").pathname) || "index.html";
    readFile(path.join(dir, name)).then(
      (body) => {
        res.writeHead(200, { "content-type": TYPES[path.extname(name)] ?? "application/octet-stream" });
        res.end(body);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

export async function benchBrowser(ctx: BenchContext, backends: readonly string[] = BROWSER_BACKENDS): Promise<BrowserRow[]> {
  const cfgBase = { batchSize: 32, experts: 8, capacity: 2, reps: ctx.quick ? 2 : 5 };
  // Samples per round and budget per backend: SwiftShader (WebGL, WebGPU) and the plain-JS CPU backend are
  // slow on a small shared machine, so they get fewer samples to keep the run bounded.
  const samplesFor = (b: string): number => (b === "wasm" ? (ctx.quick ? 256 : 1024) : ctx.quick ? 64 : 128);
  const dir = await mkdtemp(path.join(tmpdir(), "flexmoe-bench-"));
  let server: Server | undefined;
  const { chromium } = await import("@playwright/test");
  const browser = await chromium.launch({ executablePath: process.env.FLEXMOE_CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  try {
    ctx.progress("browser: bundling the bench page");
    await bundle(dir);
    server = await serve(dir);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
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
      const cfg: PageConfig = { ...cfgBase, backend, preset: backend === "wasm" ? "dense" : "cnn", samples: samplesFor(backend) };
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
        const budget = ctx.quick ? 30_000 : 150_000;
        r = await Promise.race([
          page.evaluate(
            (c) => (globalThis as unknown as { flexmoeBench: { run(c: PageConfig): Promise<PageResult> } }).flexmoeBench.run(c),
            cfg,
          ),
          new Promise<PageResult>((resolve) =>
            setTimeout(() => resolve({ backend, ok: false, error: `over the ${budget / 1000} s budget` }), budget),
          ),
        ]);
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
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await rm(dir, { recursive: true, force: true });
  }
}

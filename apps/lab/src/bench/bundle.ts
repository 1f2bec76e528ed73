/**
 * The volunteer page's load cost: a fresh production build of apps/web-client (the repo's vite.config.ts,
 * into a temp dir, so the numbers are this checkout's and not a stale dist/), sized from its manifest by
 * @flexmoe/web-client/bundle-sizes: the JavaScript before TF.js (the page's first script and its static
 * imports, against the 150 kB gzip budget), and every chunk and asset.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pageEntry, readBundleSizes, type BundleSizes } from "@flexmoe/web-client/bundle-sizes";
import type { BenchContext } from "./common.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

/** The page's JS before the backend chunk, gzipped (kB of 1,000 bytes). */
export const PAGE_INITIAL_BUDGET_BYTES = 150_000;

export interface BundleResult extends BundleSizes {
  pageInitialGzipBytes: number;
  budgetBytes: number;
  withinBudget: boolean;
}

export async function benchBundle(ctx: BenchContext): Promise<BundleResult> {
  ctx.progress("bundle: building the page");
  const { build } = await import("vite");
  const outDir = await mkdtemp(path.join(os.tmpdir(), "flexmoe-bundle-"));
  try {
    await build({ configFile: path.join(ROOT, "vite.config.ts"), logLevel: "warn", build: { outDir, emptyOutDir: true } });
    const sizes = readBundleSizes(outDir);
    const page = pageEntry(sizes);
    if (!page) throw new Error("the build has no index.html entry");
    ctx.progress(`bundle: page initial JS ${(page.initialJs.gzipBytes / 1000).toFixed(1)} kB gzip`);
    return {
      ...sizes,
      pageInitialGzipBytes: page.initialJs.gzipBytes,
      budgetBytes: PAGE_INITIAL_BUDGET_BYTES,
      withinBudget: page.initialJs.gzipBytes <= PAGE_INITIAL_BUDGET_BYTES,
    };
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

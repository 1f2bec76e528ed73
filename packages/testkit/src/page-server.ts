/**
 * Bundles one TypeScript page with esbuild and serves it (with the TF.js WASM binaries) on loopback:
 * for the browser bench and for e2e checks of library code that needs a browser but not the coordinator.
 */
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

export interface ServedPage {
  url: string;
  close(): Promise<void>;
}

export async function servePage(entry: string): Promise<ServedPage> {
  const dir = await mkdtemp(path.join(tmpdir(), "flexmoe-page-"));
  const { build } = await import("esbuild");
  await build({
    entryPoints: [entry],
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
  await writeFile(path.join(dir, "index.html"), '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>\n');
  const server: Server = createServer((req, res) => {
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
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

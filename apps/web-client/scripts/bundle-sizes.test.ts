import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { bundleSizes, formatBundleSizes, pageEntry, readBundleSizes, type Manifest } from "./bundle-sizes.ts";

// The shape of this repo's build: two pages sharing a chunk, the page importing TF.js lazily, and
// each backend a dynamic chunk of the TF.js chunk (the WASM one with its binary as an asset).
const MANIFEST: Manifest = {
  "index.html": {
    file: "assets/main-1.js",
    name: "main",
    src: "index.html",
    isEntry: true,
    imports: ["_shared-1.js"],
    dynamicImports: ["_backend-1.js"],
    css: ["assets/shared-1.css"],
  },
  "dashboard.html": { file: "assets/dashboard-1.js", name: "dashboard", src: "dashboard.html", isEntry: true, imports: ["_shared-1.js"] },
  "_shared-1.js": { file: "assets/shared-1.js", name: "shared" },
  "_backend-1.js": { file: "assets/backend-1.js", name: "backend", imports: ["_shared-1.js"], dynamicImports: ["src/wasm.ts", "webgl"] },
  "src/wasm.ts": {
    file: "assets/wasm-1.js",
    name: "wasm",
    src: "src/wasm.ts",
    isDynamicEntry: true,
    imports: ["_backend-1.js"],
    assets: ["assets/tfjs-backend-wasm-simd-1.wasm"],
  },
  webgl: { file: "assets/tfjs-webgl-1.js", name: "dist", isDynamicEntry: true, imports: ["_backend-1.js", "_shared-1.js"] },
};

const SIZES: Record<string, number> = {
  "assets/main-1.js": 10,
  "assets/dashboard-1.js": 20,
  "assets/shared-1.js": 70,
  "assets/shared-1.css": 1,
  "assets/backend-1.js": 55,
  "assets/wasm-1.js": 34,
  "assets/tfjs-webgl-1.js": 79,
  "assets/tfjs-backend-wasm-simd-1.wasm": 137,
};
const sizeOf = (file: string) => ({ bytes: SIZES[file]! * 3, gzipBytes: SIZES[file]! });

describe("bundleSizes", () => {
  it("counts an entry's static imports as its initial JS and its dynamic imports as lazy", () => {
    const s = bundleSizes(MANIFEST, sizeOf);
    const page = pageEntry(s)!;
    expect(page.name).toBe("main");
    expect(page.initialJs.files.sort()).toEqual(["assets/main-1.js", "assets/shared-1.js"]);
    expect(page.initialJs).toMatchObject({ gzipBytes: 80, bytes: 240 });
    expect(page.lazyJs.files.sort()).toEqual(["assets/backend-1.js", "assets/tfjs-webgl-1.js", "assets/wasm-1.js"]);
    expect(page.lazyJs.gzipBytes).toBe(55 + 34 + 79);
    const dash = s.entries.find((e) => e.name === "dashboard")!;
    expect(dash.initialJs.gzipBytes).toBe(90);
    expect(dash.lazyJs.files).toEqual([]);
  });

  it("lists every file once, largest first, with its kind and the entries that load it first", () => {
    const s = bundleSizes(MANIFEST, sizeOf);
    expect(s.files.map((f) => f.file)).toEqual([
      "assets/tfjs-backend-wasm-simd-1.wasm",
      "assets/tfjs-webgl-1.js",
      "assets/shared-1.js",
      "assets/backend-1.js",
      "assets/wasm-1.js",
      "assets/dashboard-1.js",
      "assets/main-1.js",
      "assets/shared-1.css",
    ]);
    const by = new Map(s.files.map((f) => [f.file, f]));
    expect(by.get("assets/shared-1.js")).toMatchObject({ kind: "shared", initialFor: ["dashboard", "main"] });
    expect(by.get("assets/main-1.js")).toMatchObject({ kind: "entry", initialFor: ["main"] });
    expect(by.get("assets/wasm-1.js")).toMatchObject({ kind: "lazy", initialFor: [], name: "wasm" });
    expect(by.get("assets/tfjs-backend-wasm-simd-1.wasm")).toMatchObject({ kind: "asset", initialFor: [] });
    expect(formatBundleSizes(s)).toContain("assets/tfjs-webgl-1.js");
  });

  it("sizes a build on disk with gzip", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "flexmoe-bundle-"));
    try {
      mkdirSync(path.join(dir, ".vite"));
      mkdirSync(path.join(dir, "assets"));
      const code = "console.log('flexmoe');\n".repeat(400);
      writeFileSync(path.join(dir, "assets/main-1.js"), code);
      writeFileSync(
        path.join(dir, ".vite/manifest.json"),
        JSON.stringify({ "index.html": { file: "assets/main-1.js", name: "main", isEntry: true } } satisfies Manifest),
      );
      const page = pageEntry(readBundleSizes(dir))!;
      expect(page.initialJs.bytes).toBe(code.length);
      expect(page.initialJs.gzipBytes).toBeGreaterThan(0);
      expect(page.initialJs.gzipBytes).toBeLessThan(code.length / 20);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzip, constants as zlib } from "node:zlib";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

const gzipAsync = promisify(gzip);

/**
 * Writes `<file>.gz` next to every text or WASM output over 1 KiB, so the coordinator serves the page
 * compressed without compressing per request (apps/coordinator/src/static.ts).
 */
function precompress(): Plugin {
  return {
    name: "flexmoe:precompress",
    apply: "build",
    async writeBundle(options, bundle) {
      const dir = options.dir ?? "dist";
      await Promise.all(
        Object.values(bundle).map(async (out) => {
          if (!/\.(js|css|html|wasm|svg|json)$/.test(out.fileName)) return;
          const data = out.type === "chunk" ? out.code : out.source;
          if (data.length < 1024) return;
          const gz = await gzipAsync(data, { level: zlib.Z_BEST_COMPRESSION });
          await writeFile(path.join(dir, `${out.fileName}.gz`), gz);
        }),
      );
    },
  };
}

// One config for the web client build (Vite) and the unit/integration tests (Vitest).
export default defineConfig(({ mode }) => ({
  root: "apps/web-client",
  publicDir: false,
  resolve: {
    // The page's TF.js is tfjs-core with its gradients (src/tf.ts) plus the one backend it chose, loaded
    // on demand (src/backend.ts). @flexmoe/model imports the "@tensorflow/tfjs" bundle (also layers,
    // converter, data, the CPU and WebGL backends) for Node; it uses only core's ops and gradients, so
    // the page build points that name at src/tf.ts. Not under Vitest: Node tests use the full bundle.
    alias:
      mode === "test"
        ? []
        : [{ find: /^@tensorflow\/tfjs$/, replacement: fileURLToPath(new URL("apps/web-client/src/tf.ts", import.meta.url)) }],
  },
  plugins: [precompress()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // The first script stays small; TF.js and each backend are their own lazy chunks.
    chunkSizeWarningLimit: 1024,
    // dist/.vite/manifest.json: what apps/web-client/scripts/bundle-sizes.ts reads.
    manifest: true,
    rollupOptions: {
      // Two pages: the volunteer's (index.html) and the classroom dashboard (served at /dashboard).
      input: {
        main: fileURLToPath(new URL("apps/web-client/index.html", import.meta.url)),
        dashboard: fileURLToPath(new URL("apps/web-client/dashboard.html", import.meta.url)),
      },
      output: {
        // The lazy backend chunks after their backend (Rollup would call each "dist", after dist/index.js).
        chunkFileNames: (chunk) => {
          const backend = /tfjs-backend-(\w+)/.exec(chunk.facadeModuleId ?? "")?.[1];
          return backend ? `assets/tfjs-${backend}-[hash].js` : "assets/[name]-[hash].js";
        },
      },
      onwarn(warning, warn) {
        // zod ships comments Rollup cannot place; harmless and not ours.
        if (warning.code === "INVALID_ANNOTATION" && warning.id?.includes("node_modules")) return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: {
      "/socket.io": { target: "http://localhost:3000", ws: true },
      "/api": "http://localhost:3000",
    },
  },
  test: {
    root: ".",
    include: ["packages/**/src/**/*.test.ts", "apps/**/src/**/*.test.ts", "apps/web-client/scripts/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
}));

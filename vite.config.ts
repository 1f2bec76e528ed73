import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// One config for the web client build (Vite) and the unit/integration tests (Vitest).
export default defineConfig({
  root: "apps/web-client",
  publicDir: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      // Two pages: the volunteer's (index.html) and the classroom dashboard (served at /dashboard).
      input: {
        main: fileURLToPath(new URL("apps/web-client/index.html", import.meta.url)),
        dashboard: fileURLToPath(new URL("apps/web-client/dashboard.html", import.meta.url)),
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
    include: ["packages/**/src/**/*.test.ts", "apps/**/src/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});

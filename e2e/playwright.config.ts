import { defineConfig } from "@playwright/test";

// Debian's Chromium, not a Playwright download (none is possible on these machines).
export const CHROMIUM = "/usr/bin/chromium";
export const BASE_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
/** WebGPU only works headless through SwiftShader with these flags (slow, but the real code path). */
export const WEBGPU_ARGS = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-angle=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--enable-unsafe-swiftshader",
];

export default defineConfig({
  testDir: "./tests",
  outputDir: "../test-results",
  workers: 1,
  retries: 0,
  timeout: 6 * 60_000,
  expect: { timeout: 30_000 },
  reporter: [["list"]],
  use: {
    launchOptions: { executablePath: CHROMIUM, args: BASE_ARGS },
    trace: "off",
    screenshot: "only-on-failure",
  },
});

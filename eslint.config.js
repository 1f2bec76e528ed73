// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "**/.flexmoe/**", "test-results/**", "playwright-report/**", "docs/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.mjs", "**/*.js", "e2e/**/*.ts", "apps/coordinator/**/*.ts", "apps/lab/**/*.ts", "packages/testkit/**/*.ts"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ["apps/web-client/**/*.ts"],
    ignores: ["apps/web-client/scripts/**"],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Build tooling run by Node (tsx), not page code.
    files: ["apps/web-client/scripts/**/*.ts"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // The core and the model run in browsers and in Node alike: no platform imports, no console.
    files: ["packages/**/*.ts"],
    // testkit is Node-side test support (sockets, files, child processes), not shared runtime code.
    ignores: ["packages/**/*.test.ts", "packages/testkit/**"],
    rules: {
      "no-console": "error",
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*", "fs", "path", "os", "crypto", "http", "https"], message: "packages/* must stay platform-neutral" },
            { group: ["socket.io", "socket.io-client", "express", "pino"], message: "transport and logging belong to the apps" },
          ],
        },
      ],
    },
  },
  {
    files: ["packages/core/**/*.ts"],
    ignores: ["packages/core/**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*", "fs", "path", "os", "crypto", "http", "https"], message: "core must stay platform-neutral" },
            { group: ["socket.io", "socket.io-client", "express", "pino"], message: "transport and logging belong to the apps" },
            { group: ["@tensorflow/*"], message: "core works on typed arrays; TensorFlow.js lives in @flexmoe/model" },
          ],
        },
      ],
    },
  },
  {
    // The server logs through its injected logger; only the process entry (main.ts) prints the join info.
    files: ["apps/coordinator/src/**/*.ts"],
    ignores: ["apps/coordinator/src/main.ts", "**/*.test.ts"],
    rules: { "no-console": "error" },
  },
);

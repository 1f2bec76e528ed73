export * from "./engine.ts";
export * from "./layout.ts";
export * from "./admit.ts";
export * from "./partial.ts";

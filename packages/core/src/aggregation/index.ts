export * from "./aggregate.ts";
export * from "./registry.ts";
export * from "./rule.ts";
export { weightedAverageInto } from "./kernels.ts";

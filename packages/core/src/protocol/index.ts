export * from "./version.ts";
export * from "./errors.ts";
export * from "./schemas.ts";
export * from "./events.ts";

/** @flexmoe/testkit: test support imported by name (never by a relative path into another package). */
export * from "./manual-clock.ts";
export * from "./synthetic-client.ts";
export * from "./fingerprint.ts";
export * from "./net.ts";
export * from "./page-server.ts";
export * from "./app-fixture.ts";
export * from "./federation-harness.ts";
export * from "./training-client.ts";
// Tests that need a bare Socket.IO client take it from here, so the server's package lists no client library.
export { io, type Socket } from "socket.io-client";
export * from "./serve-process.ts";
export * from "./redis-server.ts";

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticPage } from "./static.ts";

let dir: string;
let server: Server;
let base: string;

const JS = "export const x = 1;\n".repeat(200);
const HTML = `<!doctype html><title>page</title>${" ".repeat(2000)}`;

/** A raw GET (no automatic decompression), with or without gzip accepted. */
function get(
  url: string,
  gzip: boolean,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${url}`, { headers: gzip ? { "accept-encoding": "gzip, deflate" } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "flexmoe-static-"));
  mkdirSync(path.join(dir, "assets"));
  mkdirSync(path.join(dir, ".vite"));
  writeFileSync(path.join(dir, "index.html"), HTML);
  writeFileSync(path.join(dir, "index.html.gz"), gzipSync(HTML));
  writeFileSync(path.join(dir, "dashboard.html"), "<!doctype html><title>dashboard</title>");
  writeFileSync(path.join(dir, "assets/main-abc123.js"), JS);
  writeFileSync(path.join(dir, "assets/main-abc123.js.gz"), gzipSync(JS));
  writeFileSync(path.join(dir, "assets/tiny-def456.js"), "export {};\n");
  writeFileSync(path.join(dir, ".vite/manifest.json"), "{}");
  const app = express();
  app.use(staticPage(dir));
  app.use((_req, res) => res.status(404).send("nothing"));
  server = app.listen(0, "127.0.0.1");
  await new Promise<void>((r) => server.once("listening", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe("staticPage", () => {
  it("serves the precompressed file with the original type when gzip is accepted", async () => {
    const r = await get("/assets/main-abc123.js", true);
    expect(r.status).toBe(200);
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(r.headers["content-type"]).toMatch(/^text\/javascript/);
    expect(r.headers["vary"]).toMatch(/Accept-Encoding/i);
    expect(r.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(r.body.length).toBeLessThan(JS.length / 5);
    expect(gunzipSync(r.body).toString()).toBe(JS);
  });

  it("serves the plain file to a client that does not accept gzip", async () => {
    const r = await get("/assets/main-abc123.js", false);
    expect(r.status).toBe(200);
    expect(r.headers["content-encoding"]).toBeUndefined();
    expect(r.headers["vary"]).toMatch(/Accept-Encoding/i);
    expect(r.body.toString()).toBe(JS);
  });

  it("revalidates the HTML, which names the current asset hashes", async () => {
    for (const url of ["/", "/index.html"]) {
      const r = await get(url, true);
      expect(r.status).toBe(200);
      expect(r.headers["content-encoding"]).toBe("gzip");
      expect(r.headers["content-type"]).toMatch(/^text\/html/);
      expect(r.headers["cache-control"]).toBe("no-cache");
      expect(gunzipSync(r.body).toString()).toBe(HTML);
    }
  });

  it("serves files without a .gz as they are, and the dashboard at /dashboard", async () => {
    const tiny = await get("/assets/tiny-def456.js", true);
    expect(tiny.headers["content-encoding"]).toBeUndefined();
    expect(tiny.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const dash = await get("/dashboard", true);
    expect(dash.status).toBe(200);
    expect(dash.body.toString()).toContain("dashboard");
  });

  it("does not serve build metadata", async () => {
    expect((await get("/.vite/manifest.json", true)).status).toBe(404);
  });
});

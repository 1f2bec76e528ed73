/**
 * The classroom surface over real HTTP and sockets: the admin endpoint (token, validation,
 * pause/resume, strategy, rounds, reset), the dashboard
 * namespace push, the model and round-log exports, and the TLS server with a generated certificate.
 */
import { get as httpsGet } from "node:https";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DashboardState } from "@flexmoe/core";
import { backboneManifest, countParams, expertManifest } from "@flexmoe/model/spec";
import type { AppDeps } from "./app.ts";
import { loadOrCreateSelfSigned } from "./tls.ts";
import { AppFixture, rawSocket } from "@flexmoe/testkit";

const TOKEN = "admin-test-token-0123456789";

const fixture = new AppFixture();
afterEach(async () => {
  await fixture.closeAll();
  vi.restoreAllMocks();
});

const start = (deps: Partial<AppDeps> = {}, rounds = 0) =>
  fixture.start({
    config: { gatherMs: 20, shards: 2, rounds },
    deps: { adminToken: TOKEN, joinUrls: () => ["http://192.0.2.1:3000/"], ...deps },
    samples: 100,
    seed: 5,
  });

const admin = (url: string, body: unknown, token: string | null = TOKEN) =>
  fetch(`${url}/api/admin`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as { ok: boolean; value?: Record<string, unknown>; error?: { code: string } },
  }));

describe("admin over HTTP", () => {
  it("refuses without the token or with a wrong one, and leaves the federation alone", async () => {
    const { app, url } = await start();
    for (const token of [null, "wrong-token", `${TOKEN}x`]) {
      const res = await admin(url, { action: "pause" }, token);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ ok: false, error: { code: "UNAUTHORIZED" } });
    }
    expect(app.federation.phase).toBe("waiting");
  });

  it("is disabled without a configured token", async () => {
    const { url } = await start({ adminToken: undefined });
    expect((await admin(url, { action: "pause" })).body).toMatchObject({ ok: false, error: { code: "UNAUTHORIZED" } });
  });

  it("rejects malformed commands with INVALID_PAYLOAD", async () => {
    const { url } = await start();
    for (const body of [
      { action: "explode" },
      { action: "set-strategy", value: "best" },
      { action: "set-rounds", value: -1 },
      { action: "pause", extra: 1 },
    ]) {
      const res = await admin(url, body);
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe("INVALID_PAYLOAD");
    }
  });

  it("pauses and resumes rounds, switches strategy, changes the limit and resets", async () => {
    const { app, url, client } = await start({}, 1);
    expect((await admin(url, { action: "pause" })).body).toMatchObject({ ok: true, value: { phase: "paused" } });
    const a = client({ capacity: 2 });
    const b = client({ capacity: 2 });
    await Promise.all([a.join(), b.join()]);
    await new Promise((r) => setTimeout(r, 150));
    expect(app.federation.round).toBe(0);
    expect((await admin(url, { action: "set-strategy", value: "roundrobin" })).body).toMatchObject({
      ok: true,
      value: { strategy: "roundrobin" },
    });
    expect((await admin(url, { action: "start" })).body.ok).toBe(true);
    await vi.waitFor(() => expect(app.federation.phase).toBe("finished"), { timeout: 8_000, interval: 20 });
    expect(app.federation.snapshot.history[0]!.strategy).toBe("roundrobin");
    // A larger limit resumes a finished run.
    expect((await admin(url, { action: "set-rounds", value: 2 })).body).toMatchObject({ ok: true, value: { rounds: 2 } });
    await vi.waitFor(() => expect(app.federation.round).toBe(2), { timeout: 8_000, interval: 20 });
    const runId = app.federation.snapshot.runId;
    expect((await admin(url, { action: "pause" })).body.ok).toBe(true);
    const reset = await admin(url, { action: "reset" });
    expect(reset.body).toMatchObject({ ok: true, value: { round: 0, phase: "paused" } });
    expect(reset.body.value?.runId).not.toBe(runId);
    expect(app.federation.snapshot.history).toEqual([]);
  });
});

describe("dashboard namespace", () => {
  it("pushes the state on connect and again after a round", async () => {
    const { url, client } = await start({}, 1);
    const dash = rawSocket(`${url}/dashboard`);
    const states: DashboardState[] = [];
    dash.on("dashboard:state", (s: DashboardState) => states.push(s));
    try {
      await vi.waitFor(() => expect(states.length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
      expect(states[0]).toMatchObject({ round: 0, experts: 4, joinUrls: ["http://192.0.2.1:3000/"], clients: [] });
      const a = client({ capacity: 2 });
      const b = client({ capacity: 2 });
      await Promise.all([a.join(), b.join()]);
      await vi.waitFor(() => expect(states.at(-1)?.round).toBe(1), { timeout: 8_000, interval: 20 });
      const s = states.at(-1)!;
      expect(s.history).toHaveLength(1);
      expect(s.clients).toHaveLength(2);
      expect(s.fitness.clients).toEqual(["c1", "c2"]);
      expect(s.fitness.q.map((r) => r.length)).toEqual([4, 4]);
      expect(Object.values(s.assignment).flat().sort()).toEqual([0, 1, 2, 3]);
    } finally {
      dash.close();
    }
  });
});

describe("export", () => {
  it("serves the model as TF.js weights (manifest + bin) and the round log as CSV", async () => {
    const { app, url, client } = await start({}, 1);
    const a = client({ capacity: 2 });
    const b = client({ capacity: 2 });
    await Promise.all([a.join(), b.join()]);
    await vi.waitFor(() => expect(app.federation.round).toBe(1), { timeout: 8_000, interval: 20 });

    const model = (await (await fetch(`${url}/api/export/model.json`)).json()) as {
      weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
      userDefinedMetadata: { experts: number; round: number };
    };
    const spec = app.federation.spec;
    const names = [...backboneManifest(spec), ...Array.from({ length: 4 }, (_, e) => expertManifest(spec, e)).flat()];
    expect(model.weightsManifest[0]!.paths).toEqual(["weights.bin"]);
    expect(model.weightsManifest[0]!.weights.map((w) => w.name)).toEqual(names.map((n) => n.name));
    expect(model.weightsManifest[0]!.weights.every((w) => w.dtype === "float32")).toBe(true);
    expect(model.userDefinedMetadata).toMatchObject({ experts: 4, round: 1 });

    const bin = new Float32Array(await (await fetch(`${url}/api/export/weights.bin`)).arrayBuffer());
    expect(bin.length).toBe(countParams(names));
    const first = app.federation.snapshot.backbone[0]!;
    expect(Array.from(bin.subarray(0, 5))).toEqual(Array.from(first.data.subarray(0, 5)));

    const csv = await (await fetch(`${url}/api/export/rounds.csv`)).text();
    const lines = csv.trim().split("\n");
    expect(lines[0]).toMatch(/^round,started_at,closed_at,duration_ms,reason,strategy,participants,accuracy,loss,cv,/);
    expect(lines).toHaveLength(2);
    expect(lines[1]!.split(",")[0]).toBe("1");
    expect(lines[1]!.split(",")[5]).toBe("flex");
  });
});

describe("TLS", () => {
  it("generates a self-signed certificate once, reuses it, and serves the API over https", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "flexmoe-tls-"));
    const tls = await loadOrCreateSelfSigned(dir, ["192.0.2.7"]);
    expect(tls.source).toBe("generated");
    expect((await loadOrCreateSelfSigned(dir, ["192.0.2.7"])).source).toBe("reused");
    expect((await loadOrCreateSelfSigned(dir, ["192.0.2.8"])).source).toBe("generated");
    const { app } = await start({ tls: { key: tls.key, cert: tls.cert } });
    const port = (app.http.address() as { port: number }).port;
    const body = await new Promise<string>((resolve, reject) => {
      httpsGet({ host: "127.0.0.1", port, path: "/api/status", ca: tls.cert, servername: "localhost" }, (res) => {
        let data = "";
        res.on("data", (d: Buffer) => (data += d.toString()));
        res.on("end", () => resolve(data));
      }).on("error", reject);
    });
    expect(JSON.parse(body)).toMatchObject({ round: 0, phase: "waiting" });
  });
});

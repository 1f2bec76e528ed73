/**
 * The RunStore contract (both implementations), checkpoint compatibility checks, and a Federation
 * resumed from a store continuing exactly where the saved one stopped.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeTensors, FitnessMatrix } from "@flexmoe/core";
import { resolveConfig, type CoordinatorConfig } from "../config.ts";
import { silentLogger } from "../logger.ts";
import { restoreCheckpoint } from "./checkpoint.ts";
import { openRun, persistenceHooks } from "./persist.ts";
import { FileRunStore, MemoryRunStore, type RunStore } from "./store.ts";
import { fingerprint, harness } from "@flexmoe/testkit";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), "flexmoe-store-"));
  dirs.push(d);
  return d;
};

const CFG: CoordinatorConfig = { experts: 4, minClients: 2, preset: "dense", shards: 4 };

/** A federation with two completed rounds, checkpointed into `store` by the real hooks. */
function runTwoRounds(store: RunStore, cfg: CoordinatorConfig = CFG) {
  const hooks = persistenceHooks({
    store,
    clock: { now: () => 0, timeout: () => ({ cancel() {} }) },
    logger: silentLogger,
  });
  const h = harness(cfg, { onRoundClosed: hooks.onRoundClosed, onClientAdded: hooks.onClientAdded, onReset: hooks.onReset });
  const fed = h.federation;
  const config = fed.config;
  const a = fed.join({ protocol: 1, capacity: 2, backend: "cpu" });
  const b = fed.join({ protocol: 1, capacity: 2, backend: "cpu" });
  if (!a.ok || !b.ok) throw new Error("join failed");
  const ids = [a.value.clientId, b.value.clientId];
  ids.forEach((id) => fed.setReady(id, true));
  for (let r = 0; r < 2; r++) {
    h.clock.advance(20);
    for (const id of ids) {
      const u = h.update(id);
      expect(fed.submit(id, u.meta, u.frame).ok).toBe(true);
    }
  }
  expect(fed.round).toBe(2);
  return { h, fed, config, tokens: [a.value.token, b.value.token] };
}

describe.each([
  ["MemoryRunStore", () => new MemoryRunStore()],
  ["FileRunStore", () => new FileRunStore(path.join(tempDir(), "nested", "dir"))],
])("RunStore contract: %s", (_name, make) => {
  it("loads nothing from an empty store", () => {
    expect(make().load()).toEqual({ ok: true, value: null });
  });

  it("round-trips a checkpoint bit for bit, the latest save winning", () => {
    const store = make();
    const { fed, config } = runTwoRounds(store);
    const loaded = store.load();
    if (!loaded.ok || !loaded.value) throw new Error("nothing loaded");
    const restored = restoreCheckpoint(loaded.value, config);
    if (!restored.ok) throw new Error(restored.error.message);
    const s = restored.value.initial;
    expect(s.round).toBe(2);
    expect(Buffer.from(encodeTensors([...s.backbone, ...s.experts.flat()]))).toEqual(
      Buffer.from(encodeTensors([...fed.snapshot.backbone, ...fed.snapshot.experts.flat()])),
    );
    expect(s.fitness.toJSON()).toEqual(fed.snapshot.fitness.toJSON());
    expect(JSON.stringify(s.history)).toBe(JSON.stringify(fed.snapshot.history));
    expect(restored.value.clients.map((c) => c.token)).toEqual(fed.registry().map((c) => c.token));
  });

  it("keeps a client that registered after the last checkpoint", () => {
    const store = make();
    const { fed } = runTwoRounds(store);
    const late = fed.join({ protocol: 1, capacity: 1, backend: "wasm", label: "late" });
    if (!late.ok) throw new Error("join");
    const loaded = store.load();
    if (!loaded.ok || !loaded.value) throw new Error("nothing loaded");
    expect(loaded.value.meta.round).toBe(2);
    expect(loaded.value.meta.clients.map((c) => c.id)).toEqual(["c1", "c2", "c3"]);
    expect(loaded.value.meta.clients[2]).toMatchObject({ token: late.value.token, label: "late", capacity: 1 });
  });
});

describe("admin reset", () => {
  it("replaces the stored run at once, keeping the registry", () => {
    const store = new MemoryRunStore();
    const { fed } = runTwoRounds(store);
    const old = fed.snapshot.runId;
    fed.reset();
    const loaded = store.load();
    if (!loaded.ok || !loaded.value) throw new Error("nothing loaded");
    expect(loaded.value.meta).toMatchObject({ round: 0, runId: fed.snapshot.runId, history: [] });
    expect(loaded.value.meta.runId).not.toBe(old);
    expect(loaded.value.meta.clients.map((c) => c.id)).toEqual(["c1", "c2"]);
  });
});

describe("FileRunStore on disk", () => {
  it("writes atomically: no temp files left, a stray temp file is ignored", () => {
    const dir = tempDir();
    const store = new FileRunStore(dir);
    runTwoRounds(store);
    expect(readdirSync(dir).sort()).toEqual(["checkpoint.fms", "clients.json"]);
    // A crash between write and rename leaves a temp file; it must not be read.
    writeFileSync(path.join(dir, "checkpoint.fms.999.tmp"), "half a file");
    expect(store.load().ok).toBe(true);
  });

  it("reports a corrupt checkpoint instead of starting over", () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "checkpoint.fms"), "FMS1 not really");
    const res = new FileRunStore(dir).load();
    expect(res).toMatchObject({ ok: false, error: { code: "CORRUPT" } });
  });
});

describe("resume", () => {
  it("refuses a configuration that would make the stored state unusable", () => {
    const store = new MemoryRunStore();
    runTwoRounds(store);
    const experts = openRun(store, resolveConfig({ ...CFG, experts: 8 }));
    expect(experts).toMatchObject({ ok: false, error: { code: "INCOMPATIBLE" } });
    expect(!experts.ok && experts.error.message).toMatch(/experts: stored 4, now 8/);
    expect(openRun(store, resolveConfig({ ...CFG, preset: "cnn" }))).toMatchObject({ ok: false, error: { code: "INCOMPATIBLE" } });
    expect(openRun(store, resolveConfig({ ...CFG, seed: 2 }))).toMatchObject({ ok: false, error: { code: "INCOMPATIBLE" } });
    const tuned = openRun(store, resolveConfig({ ...CFG, roundTimeoutSec: 60, strategy: "greedy", aggregator: "median" }));
    expect(tuned.ok && tuned.value.changed).toEqual(['strategy: "flex" -> "greedy"', 'aggregator: "mean" -> "median"']);
  });

  it("continues from the last completed round: same model, Q, history, tokens; the round in flight is redone", () => {
    const store = new MemoryRunStore();
    const { h, fed, tokens } = runTwoRounds(store);
    // Round 3 starts and one update arrives; then the coordinator "dies".
    h.clock.advance(20);
    expect(fed.currentRound).toBe(3);
    const u = h.update("c1");
    expect(fed.submit("c1", u.meta, u.frame).ok).toBe(true);
    const before = fingerprint(fed);

    const resumed = openRun(store, resolveConfig(CFG));
    if (!resumed.ok || !resumed.value.initial) throw new Error("no resume");
    expect(resumed.value.summary).toMatch(/after round 2/);
    const h2 = harness(CFG, { initial: resumed.value.initial, initialClients: resumed.value.initialClients! });
    const f2 = h2.federation;
    expect(fingerprint(f2)).toEqual(before);
    expect(f2.clientList().every((c) => !c.online)).toBe(true);
    // Rejoining with the old tokens restores identity; a new client gets the next id and shard.
    const again = tokens.map((token) => f2.join({ protocol: 1, token, capacity: 2, backend: "cpu" }));
    expect(again.map((r) => r.ok && r.value.clientId)).toEqual(["c1", "c2"]);
    const fresh = f2.join({ protocol: 1, capacity: 2, backend: "cpu" });
    expect(fresh.ok && fresh.value.clientId).toBe("c3");
    expect(f2.registry()[2]!.shard).toBe(2);
    ["c1", "c2"].forEach((id) => f2.setReady(id, true));
    h2.clock.advance(20);
    expect(f2.currentRound).toBe(3);
    for (const id of ["c1", "c2"]) {
      const up = h2.update(id);
      expect(f2.submit(id, up.meta, up.frame).ok).toBe(true);
    }
    expect(f2.round).toBe(3);
    expect(f2.snapshot.history.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(f2.snapshot.fitness).toBeInstanceOf(FitnessMatrix);
  });
});

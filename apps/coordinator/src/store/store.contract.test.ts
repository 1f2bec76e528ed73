/**
 * The RunStore contract (both implementations), checkpoint compatibility checks, and a Federation
 * resumed from a store continuing exactly where the saved one stopped.
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeTensors, FitnessMatrix } from "@flexmoe/core";
import { resolveConfig, type CoordinatorConfig } from "../config.ts";
import { silentLogger } from "../logger.ts";
import { decodeCheckpoint, encodeCheckpoint, restoreCheckpoint, type Checkpoint } from "./checkpoint.ts";
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
  const h = harness(cfg, { onRoundClosed: hooks.onRoundClosed, onClientChanged: hooks.onClientChanged, onReset: hooks.onReset });
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
    expect(readdirSync(dir).sort()).toEqual(["checkpoint.fms", "checkpoint.prev.fms", "clients.jsonl"]);
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

/** Flip one bit `back` bytes before the end (inside the weights, before the checksum). */
function flipBit(file: string, back = 200): void {
  const bytes = readFileSync(file);
  bytes[bytes.length - back]! ^= 0x10;
  writeFileSync(file, bytes);
}

function loadedOrThrow(store: RunStore): Checkpoint {
  const res = store.load();
  if (!res.ok) throw new Error(res.error.message);
  if (!res.value) throw new Error("nothing loaded");
  return res.value;
}

describe("FileRunStore integrity", () => {
  it("a flipped bit in the last checkpoint fails its checksum: the previous one is used, with a warning naming the file", () => {
    const dir = tempDir();
    runTwoRounds(new FileRunStore(dir));
    flipBit(path.join(dir, "checkpoint.fms"));
    const store = new FileRunStore(dir);
    const resumed = openRun(store, resolveConfig(CFG));
    if (!resumed.ok) throw new Error(resumed.error.message);
    expect(resumed.value.summary).toMatch(/after round 1 /);
    expect(resumed.value.recovered).toContain(`${store.checkpointPath}: checkpoint: checksum mismatch`);
    expect(resumed.value.recovered).toContain(store.previousPath);
    // The damaged file is kept aside, so the next save does not rotate it into the fallback slot.
    expect(existsSync(store.corruptPath)).toBe(true);
    expect(existsSync(store.checkpointPath)).toBe(false);
    // Both tokens survive the fallback (they were registered before round 1 was saved).
    expect(resumed.value.initialClients!.map((c) => c.id)).toEqual(["c1", "c2"]);
  });

  it("refuses to start when both copies are bad, naming both files", () => {
    const dir = tempDir();
    runTwoRounds(new FileRunStore(dir));
    flipBit(path.join(dir, "checkpoint.fms"));
    flipBit(path.join(dir, "checkpoint.prev.fms"), 40);
    const store = new FileRunStore(dir);
    const res = store.load();
    expect(res).toMatchObject({ ok: false, error: { code: "CORRUPT" } });
    expect(!res.ok && res.error.message).toContain(store.checkpointPath);
    expect(!res.ok && res.error.message).toContain(store.previousPath);
  });

  it("a crafted history record with a valid checksum is refused by the schema, an inconsistent one by restore", () => {
    const store = new MemoryRunStore();
    const { config } = runTwoRounds(store);
    const good = loadedOrThrow(store);
    const crafted = structuredClone(good);
    (crafted.meta.history[0] as unknown as Record<string, unknown>)["load"] = { length: 1e9 };
    const bad = decodeCheckpoint(encodeCheckpoint(crafted));
    expect(bad).toMatchObject({ ok: false, error: { code: "CORRUPT" } });
    expect(!bad.ok && bad.error.message).toMatch(/metadata: history\.0\.load/);

    const reordered = structuredClone(good);
    reordered.meta.history[1]!.round = 9;
    const decoded = decodeCheckpoint(encodeCheckpoint(reordered));
    if (!decoded.ok) throw new Error(decoded.error.message);
    const restored = restoreCheckpoint(decoded.value, config);
    expect(restored).toMatchObject({ ok: false, error: { code: "CORRUPT" } });
    expect(!restored.ok && restored.error.message).toMatch(/history round 9 out of order/);
  });

  it("the registry log: appended per join, a torn last line skipped, compacted at checkpoints", () => {
    const dir = tempDir();
    const store = new FileRunStore(dir);
    const { h, fed } = runTwoRounds(store);
    // After round 2 the log holds nobody: the previous checkpoint (round 1) already lists c1 and c2.
    expect(readFileSync(store.clientsPath, "utf8")).toBe("");
    const late = fed.join({ protocol: 1, capacity: 1, backend: "wasm", label: "late" });
    if (!late.ok) throw new Error("join");
    expect(readFileSync(store.clientsPath, "utf8").trim().split("\n")).toHaveLength(1);
    appendFileSync(store.clientsPath, '{"id":"c4","tok'); // a crash mid-append
    const loaded = loadedOrThrow(new FileRunStore(dir));
    expect(loaded.meta.clients.map((c) => c.id)).toEqual(["c1", "c2", "c3"]);
    expect(loaded.recovered).toMatch(/skipped 1 unreadable line/);
    // A checkpoint that lists c3 keeps it in the log (the previous checkpoint does not list it), then drops it.
    fed.setReady("c1", true);
    fed.setReady("c2", true);
    for (let r = 0; r < 2; r++) {
      h.clock.advance(20);
      for (const id of ["c1", "c2"]) {
        const u = h.update(id);
        expect(fed.submit(id, u.meta, u.frame).ok).toBe(true);
      }
    }
    expect(fed.round).toBe(4);
    expect(readFileSync(store.clientsPath, "utf8")).toBe("");
    expect(loadedOrThrow(new FileRunStore(dir)).meta.clients.map((c) => c.id)).toEqual(["c1", "c2", "c3"]);
  });

  it("a token rotated after the last checkpoint survives a restart, also through a fallback to the previous copy", () => {
    const dir = tempDir();
    const store = new FileRunStore(dir);
    const { fed } = runTwoRounds(store);
    const old = fed.client("c1")!.token;
    const again = fed.join({ protocol: 1, token: old, capacity: 2, backend: "cpu" });
    if (!again.ok) throw new Error("rejoin");
    expect(again.value.token).not.toBe(old);
    const loaded = loadedOrThrow(new FileRunStore(dir));
    expect(loaded.meta.clients.find((c) => c.id === "c1")).toMatchObject({ token: again.value.token, prevToken: old, lastRound: 2 });
    // The last checkpoint is lost: the previous one plus the log still know the new token.
    rmSync(path.join(dir, "checkpoint.fms"));
    const fallback = loadedOrThrow(new FileRunStore(dir));
    expect(fallback.meta.round).toBe(1);
    expect(fallback.meta.clients.find((c) => c.id === "c1")?.token).toBe(again.value.token);
  });

  it("reads a checkpoint (FMS1, no checksum) and clients.json written by the previous version", () => {
    const dir = tempDir();
    const mem = new MemoryRunStore();
    runTwoRounds(mem);
    const cp = loadedOrThrow(mem);
    const v2 = encodeCheckpoint(cp);
    const v1 = v2.slice(0, v2.length - 32);
    v1[3] = 0x31;
    writeFileSync(path.join(dir, "checkpoint.fms"), v1);
    const extra = { ...cp.meta.clients[0]!, id: "c7", token: "t".repeat(24) };
    writeFileSync(path.join(dir, "clients.json"), JSON.stringify([...cp.meta.clients, extra]));
    const loaded = loadedOrThrow(new FileRunStore(dir));
    expect(loaded.meta.round).toBe(2);
    expect(loaded.meta.clients.map((c) => c.id)).toEqual(["c1", "c2", "c7"]);
  });
});

describe("FileRunStore lock", () => {
  it("a second open of a locked dir is LOCKED, naming the file and the owner; unlocking frees it", () => {
    const dir = tempDir();
    const a = new FileRunStore(dir);
    const b = new FileRunStore(dir);
    expect(a.lock()).toEqual({ ok: true, value: undefined });
    const second = b.lock();
    expect(second).toMatchObject({ ok: false, error: { code: "LOCKED" } });
    expect(!second.ok && second.error.message).toContain(`${a.lockPath}: the data dir is in use by pid ${process.pid}`);
    a.unlock();
    expect(existsSync(a.lockPath)).toBe(false);
    expect(b.lock().ok).toBe(true);
    b.unlock();
  });

  it("takes over a stale lock (its process is gone) and an unreadable one", () => {
    const dir = tempDir();
    const store = new FileRunStore(dir);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    writeFileSync(store.lockPath, JSON.stringify({ pid: dead, host: hostname(), startedAt: "earlier" }));
    expect(store.lock().ok).toBe(true);
    expect(JSON.parse(readFileSync(store.lockPath, "utf8"))).toMatchObject({ pid: process.pid });
    store.unlock();
    writeFileSync(store.lockPath, "{half");
    expect(store.lock().ok).toBe(true);
    store.unlock();
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

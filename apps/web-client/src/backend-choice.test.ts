import { describe, expect, it } from "vitest";
import { modelSpec } from "@flexmoe/model/spec";
import { decideBackend, memoKey, needlessProbe, parseMemo, softwareAdapterReason, type BackendMemo } from "./backend-choice.ts";

describe("decideBackend", () => {
  it("takes the fastest measured backend and says why", () => {
    const d = decideBackend([
      { backend: "webgpu", status: "skipped", reason: "software adapter" },
      { backend: "webgl", status: "measured", samplesPerSec: 60.4 },
      { backend: "wasm", status: "measured", samplesPerSec: 410.2 },
      { backend: "cpu", status: "measured", samplesPerSec: 3.14159 },
    ]);
    expect(d.backend).toBe("wasm");
    expect(d.summary).toBe("WASM: 410 samples/s; WebGL 60; CPU 3.1; WebGPU skipped: software adapter");
  });

  it("prefers a real GPU when it is faster", () => {
    const d = decideBackend([
      { backend: "webgpu", status: "measured", samplesPerSec: 2000 },
      { backend: "webgl", status: "measured", samplesPerSec: 900 },
      { backend: "wasm", status: "measured", samplesPerSec: 410 },
    ]);
    expect(d.backend).toBe("webgpu");
  });

  it("breaks ties by the usual order and ignores non-finite or zero speeds", () => {
    expect(
      decideBackend([
        { backend: "cpu", status: "measured", samplesPerSec: 100 },
        { backend: "wasm", status: "measured", samplesPerSec: 100 },
      ]).backend,
    ).toBe("wasm");
    expect(
      decideBackend([
        { backend: "webgl", status: "measured", samplesPerSec: Number.NaN },
        { backend: "wasm", status: "measured", samplesPerSec: 0 },
        { backend: "cpu", status: "measured", samplesPerSec: 5 },
      ]).backend,
    ).toBe("cpu");
  });

  it("falls back to CPU when nothing could be measured, listing the failures", () => {
    const d = decideBackend([
      { backend: "webgpu", status: "skipped", reason: "needs https" },
      { backend: "webgl", status: "failed", reason: "failed to initialize" },
    ]);
    expect(d).toEqual({
      backend: "cpu",
      summary: "CPU: nothing else could be measured; WebGPU skipped: needs https; WebGL failed: failed to initialize",
    });
  });
});

describe("needlessProbe", () => {
  it("skips the CPU backend only once WASM has been measured", () => {
    expect(needlessProbe("cpu", [{ backend: "wasm", status: "measured", samplesPerSec: 400 }])).toBe("not needed, WASM works");
    expect(needlessProbe("cpu", [{ backend: "wasm", status: "failed", reason: "no WebAssembly" }])).toBeNull();
    expect(needlessProbe("cpu", [])).toBeNull();
    expect(needlessProbe("wasm", [{ backend: "webgl", status: "measured", samplesPerSec: 4000 }])).toBeNull();
  });
});

describe("softwareAdapterReason", () => {
  it("flags fallback adapters, by flag or by name", () => {
    // What headless Chromium 150 reports for --use-webgpu-adapter=swiftshader.
    expect(
      softwareAdapterReason({ vendor: "google", architecture: "swiftshader", device: "", description: "", isFallbackAdapter: true }),
    ).toBe("software adapter");
    expect(softwareAdapterReason({ vendor: "google", architecture: "swiftshader" })).toBe("software adapter");
    expect(softwareAdapterReason({ vendor: "mesa", description: "llvmpipe (LLVM 15.0.6, 256 bits)" })).toBe("software adapter");
    expect(softwareAdapterReason({}, true)).toBe("software adapter");
  });

  it("lets hardware adapters through, including ones that say little", () => {
    expect(softwareAdapterReason({ vendor: "nvidia", architecture: "ampere" })).toBeNull();
    expect(softwareAdapterReason({ vendor: "apple", architecture: "metal-3" }, false)).toBeNull();
    expect(softwareAdapterReason({ vendor: "", architecture: "" })).toBeNull();
    expect(softwareAdapterReason(null)).toBeNull();
  });
});

describe("the memo", () => {
  const memo: BackendMemo = {
    backend: "wasm",
    capacity: 3,
    capacityTest: "wasm, 12.0 MMAC/ms",
    summary: "WASM: 410 samples/s",
    measuredAt: "2026-01-01T00:00:00.000Z",
  };

  it("is keyed by every field of the model spec and the user agent", () => {
    const ua = "Mozilla/5.0 HeadlessChrome/150";
    const a = memoKey(modelSpec("cnn", 8), ua);
    expect(memoKey(modelSpec("cnn", 8), ua)).toBe(a);
    expect(memoKey(modelSpec("cnn", 16), ua)).not.toBe(a);
    expect(memoKey(modelSpec("dense", 8), ua)).not.toBe(a);
    expect(memoKey(modelSpec("cnn", 8, 10, { expertHidden: 64 }), ua)).not.toBe(a);
    expect(memoKey(modelSpec("cnn", 8), "Mozilla/5.0 HeadlessChrome/151")).not.toBe(a);
    // Field order does not matter.
    const s = modelSpec("cnn", 8);
    const reordered = Object.fromEntries(Object.entries(s).reverse()) as unknown as typeof s;
    expect(memoKey(reordered, ua)).toBe(a);
  });

  it("round-trips and rejects what it did not write", () => {
    expect(parseMemo(JSON.stringify(memo))).toEqual(memo);
    expect(parseMemo(null)).toBeNull();
    expect(parseMemo("not json")).toBeNull();
    expect(parseMemo("null")).toBeNull();
    expect(parseMemo(JSON.stringify({ ...memo, backend: "tpu" }))).toBeNull();
    expect(parseMemo(JSON.stringify({ ...memo, capacity: 0 }))).toBeNull();
    expect(parseMemo(JSON.stringify({ ...memo, summary: undefined }))).toBeNull();
  });
});

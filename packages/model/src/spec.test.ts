import { describe, expect, it } from "vitest";
import { clientManifest, createRng, fullModelParams, paramCount } from "@flexmoe/core";
import {
  backboneManifest,
  checkTensors,
  countParams,
  expertManifest,
  gateForRound,
  gateManifest,
  initBackbone,
  initExpert,
  initGate,
  modelLayout,
  modelSpec,
} from "./spec.ts";

describe("modelSpec", () => {
  it("has the documented defaults and validates its inputs", () => {
    // cnn: the paper's shape, a conv stem flattened to 3 x 3 x 16 features, experts 144 -> 128 -> classes.
    expect(modelSpec("cnn", 4)).toEqual({
      preset: "cnn",
      experts: 4,
      numClasses: 10,
      inputShape: [28, 28, 1],
      featureDim: 144,
      expertHidden: 128,
    });
    expect(modelSpec("dense", 4)).toMatchObject({ featureDim: 64, expertHidden: 32 });
    expect(modelSpec("cnn", 4, 10, { inputShape: [32, 32, 3] }).featureDim).toBe(4 * 4 * 16);
    expect(() => modelSpec("dense", 0)).toThrow(/experts/);
    expect(() => modelSpec("dense", 2, 1)).toThrow(/numClasses/);
    expect(() => modelSpec("cnn", 2, 10, { inputShape: [7, 7, 1] })).toThrow(/too small/);
    expect(() => modelSpec("cnn", 2, 10, { featureDim: 64 })).toThrow(/flattened output, 144/);
  });
});

describe("cnn preset: what a page downloads", () => {
  it("holding k = 2 of 8 experts, a page receives at most 35% of the full float32 model", () => {
    const spec = modelSpec("cnn", 8);
    const layout = modelLayout(spec);
    expect(countParams(layout.backbone)).toBe(9 * 8 + 8 + (9 * 8 * 16 + 16) + (9 * 16 * 16 + 16));
    expect(countParams(expertManifest(spec, 0))).toBe(144 * 128 + 128 + 128 * 10 + 10);
    // The frame a page receives (and sends back) is the backbone and its experts; the gate never travels.
    const fraction = paramCount(clientManifest(layout, [3, 6])) / fullModelParams(layout);
    expect(fraction).toBeLessThanOrEqual(0.35);
    expect(fraction).toBeCloseTo((3568 + 2 * 19850) / (3568 + 8 * 19850), 12);
  });
});

describe.each(["cnn", "dense"] as const)("manifests and init (%s)", (preset) => {
  const spec = modelSpec(preset, 4);

  it("init tensors match the manifests", () => {
    const rng = createRng(1);
    checkTensors(backboneManifest(spec), initBackbone(spec, rng), "backbone");
    checkTensors(gateManifest(spec), initGate(spec, rng), "gate");
    for (let e = 0; e < spec.experts; e++) {
      const t = initExpert(spec, e, rng);
      checkTensors(expertManifest(spec, e), t, `expert ${e}`);
      expect(t.every((x) => x.name.startsWith(`expert/${e}/`))).toBe(true);
    }
  });

  it("names are unique and follow the scheme", () => {
    const names = [
      ...backboneManifest(spec),
      ...gateManifest(spec),
      ...Array.from({ length: 4 }, (_, e) => expertManifest(spec, e)).flat(),
    ].map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.every((n) => /^(backbone|gate|expert\/\d+)\//.test(n))).toBe(true);
    expect(gateManifest(spec)).toEqual([
      { name: "gate/kernel", shape: [spec.featureDim, 4] },
      { name: "gate/bias", shape: [4] },
    ]);
    expect(() => expertManifest(spec, 4)).toThrow(RangeError);
  });

  it("init is reproducible from the seed, glorot-bounded, zero biases", () => {
    const a = initBackbone(spec, createRng(7));
    const b = initBackbone(spec, createRng(7));
    const c = initBackbone(spec, createRng(8));
    expect(a).toEqual(b);
    expect(a[0]?.data).not.toEqual(c[0]?.data);
    for (const t of a) {
      if (t.shape.length === 1) expect(t.data.every((v) => v === 0)).toBe(true);
      else {
        const receptive = t.shape.slice(0, -2).reduce((x, y) => x * y, 1);
        const limit = Math.sqrt(6 / (receptive * ((t.shape.at(-2) ?? 0) + (t.shape.at(-1) ?? 0))));
        expect(t.data.every((v) => Math.abs(v) <= limit)).toBe(true);
        expect(t.data.some((v) => v !== 0)).toBe(true);
      }
    }
  });

  it("countParams sums the manifest", () => {
    const n = countParams(backboneManifest(spec));
    expect(n).toBe(initBackbone(spec, createRng(1)).reduce((s, t) => s + t.data.length, 0));
    const { featureDim: f, expertHidden: h } = spec;
    expect(countParams(expertManifest(spec, 0))).toBe(f * h + h + h * 10 + 10);
    expect(countParams(gateManifest(spec))).toBe(f * 4 + 4);
  });
});

describe("checkTensors", () => {
  const spec = modelSpec("dense", 2);
  const ok = () => initGate(spec, createRng(3));
  it("names the offending tensor", () => {
    const wrongShape = ok();
    wrongShape[0] = { name: "gate/kernel", shape: [64, 3], data: new Float32Array(192) };
    expect(() => checkTensors(gateManifest(spec), wrongShape, "gate")).toThrow(/"gate\/kernel".*shape \[64,3\]/);
    expect(() => checkTensors(gateManifest(spec), ok().slice(1), "gate")).toThrow(/"gate\/kernel" is missing/);
    const extra = [...ok(), { name: "gate/extra", shape: [1], data: new Float32Array(1) }];
    expect(() => checkTensors(gateManifest(spec), extra, "gate")).toThrow(/unexpected tensor "gate\/extra"/);
    const shortData = ok();
    shortData[1] = { name: "gate/bias", shape: [2], data: new Float32Array(1) };
    expect(() => checkTensors(gateManifest(spec), shortData, "gate")).toThrow(/"gate\/bias" has 1 values/);
  });
});

describe("gateForRound", () => {
  const gate = [
    { name: "gate/kernel", shape: [2, 3], data: Float32Array.from([1, 2, 9, 4, 6, 9]) },
    { name: "gate/bias", shape: [3], data: Float32Array.from([0.5, 1.5, -7]) },
  ];
  it("gives a newly held expert the mean column of the kept ones, and leaves the rest", () => {
    const g = gateForRound(gate, [0, 1], [0, 1, 2], "mean");
    expect(Array.from(g[0]!.data)).toEqual([1, 2, 1.5, 4, 6, 5]);
    expect(Array.from(g[1]!.data)).toEqual([0.5, 1.5, 1]);
    // The input is not mutated.
    expect(gate[0]!.data[2]).toBe(9);
  });
  it("changes nothing for keep, an unknown history, nothing kept or nothing new", () => {
    for (const g of [
      gateForRound(gate, [0, 1], [0, 2], "keep"),
      gateForRound(gate, null, [0, 2], "mean"),
      gateForRound(gate, [0], [1, 2], "mean"),
      gateForRound(gate, [0, 1], [0, 1], "mean"),
    ])
      expect(g.map((t) => Array.from(t.data))).toEqual(gate.map((t) => Array.from(t.data)));
  });
});

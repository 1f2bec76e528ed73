import { describe, expect, it } from "vitest";
import { aggregateRound, aggregateTensors, weightedAverageInto } from "./index.ts";
import type { NamedTensor } from "../types.ts";

const t = (name: string, values: number[], shape: number[] = [values.length]): NamedTensor => ({
  name,
  shape,
  data: Float32Array.from(values),
});
const vals = (ts: readonly NamedTensor[]): number[][] => ts.map((x) => Array.from(x.data));
const close = (a: number[][], b: number[][]): void => {
  expect(a.length).toBe(b.length);
  a.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo((b[i] as number[])[j] as number, 5)));
};

describe("weightedAverageInto", () => {
  it("computes sum w x / sum w", () => {
    const out = new Float32Array(2);
    weightedAverageInto(out, [Float32Array.from([1, 2]), Float32Array.from([4, 8])], [1, 2]);
    expect(Array.from(out)).toEqual([3, 6]);
  });

  it("allows out to alias an input", () => {
    const a = Float32Array.from([0, 10]);
    weightedAverageInto(a, [a, Float32Array.from([10, 0])], [1, 1]);
    expect(Array.from(a)).toEqual([5, 5]);
  });

  it("rejects mismatches and bad weights", () => {
    const x = new Float32Array(2);
    expect(() => weightedAverageInto(x, [x], [1, 2])).toThrow(RangeError);
    expect(() => weightedAverageInto(x, [new Float32Array(3)], [1])).toThrow(RangeError);
    expect(() => weightedAverageInto(x, [x], [0])).toThrow(RangeError);
    expect(() => weightedAverageInto(x, [x, x], [-1, 2])).toThrow(RangeError);
  });
});

describe("aggregateTensors", () => {
  const global = [t("w", [0, 0, 0, 0], [2, 2]), t("b", [1])];

  it("weighted mean of new local weights; global untouched; fresh arrays", () => {
    const before = vals(global);
    const out = aggregateTensors(global, [
      { tensors: [t("w", [1, 2, 3, 4], [2, 2]), t("b", [3])], weight: 1 },
      { tensors: [t("w", [4, 5, 6, 7], [2, 2]), t("b", [6])], weight: 2 },
    ]);
    close(vals(out), [[3, 4, 5, 6], [5]]);
    expect(out.map((x) => x.name)).toEqual(["w", "b"]);
    expect(out[0]?.shape).toEqual([2, 2]);
    expect(vals(global)).toEqual(before);
    expect(out[0]?.data).not.toBe(global[0]?.data);
  });

  it("skips weights <= 0 and keeps global when nobody trained", () => {
    const out = aggregateTensors(global, [
      { tensors: [t("w", [9, 9, 9, 9], [2, 2]), t("b", [9])], weight: 0 },
      { tensors: [t("w", [2, 2, 2, 2], [2, 2]), t("b", [2])], weight: 3 },
      { tensors: [t("w", [7, 7, 7, 7], [2, 2]), t("b", [7])], weight: -1 },
    ]);
    close(vals(out), [[2, 2, 2, 2], [2]]);
    const kept = aggregateTensors(global, [{ tensors: [t("w", [9, 9, 9, 9], [2, 2]), t("b", [9])], weight: 0 }]);
    expect(vals(kept)).toEqual(vals(global));
    expect(kept[1]?.data).not.toBe(global[1]?.data);
    expect(vals(aggregateTensors(global, []))).toEqual(vals(global));
  });

  it("clipNorm clips each update's whole delta (across tensors) before averaging", () => {
    const g = [t("a", [0, 0]), t("b", [0])];
    // Update 1: delta (3, 4, 0), norm 5 -> clipped to norm 1: (0.6, 0.8, 0).
    // Update 2: delta (0, 0, 0.5), norm 0.5 <= 1: unchanged.
    const out = aggregateTensors(
      g,
      [
        { tensors: [t("a", [3, 4]), t("b", [0])], weight: 1 },
        { tensors: [t("a", [0, 0]), t("b", [0.5])], weight: 1 },
      ],
      { clipNorm: 1 },
    );
    close(vals(out), [[0.3, 0.4], [0.25]]);
    // Clipping is around global, not around zero.
    const g2 = [t("a", [10, 10])];
    const out2 = aggregateTensors(g2, [{ tensors: [t("a", [13, 14])], weight: 1 }], { clipNorm: 1 });
    close(vals(out2), [[10.6, 10.8]]);
  });

  it("trim: coordinate-wise trimmed mean, unweighted", () => {
    const g = [t("a", [0, 0])];
    const ups = [
      [1, 100],
      [2, -50],
      [3, 4],
      [1000, 5],
      [4, 6],
    ].map((v, i) => ({ tensors: [t("a", v)], weight: i + 1 }));
    // n = 5, trim 0.2 -> drop 1 from each end per coordinate.
    // coord 0: sorted 1,2,3,4,1000 -> mean(2,3,4) = 3; coord 1: -50,4,5,6,100 -> mean(4,5,6) = 5.
    close(vals(aggregateTensors(g, ups, { rule: "trimmed", trim: 0.2 })), [[3, 5]]);
    // trim 0.5 keeps the median.
    close(vals(aggregateTensors(g, ups, { rule: "trimmed", trim: 0.5 })), [[3, 5]]);
    // Four updates with trim 0.5: the two middle values.
    close(vals(aggregateTensors(g, ups.slice(0, 4), { rule: "trimmed", trim: 0.5 })), [[2.5, 4.5]]);
  });

  it("trim falls back to the weighted mean with n <= 2 or nothing to trim", () => {
    const g = [t("a", [0])];
    const two = [
      { tensors: [t("a", [1])], weight: 1 },
      { tensors: [t("a", [4])], weight: 2 },
    ];
    close(vals(aggregateTensors(g, two, { rule: "trimmed", trim: 0.5 })), [[3]]);
    const three = [...two, { tensors: [t("a", [10])], weight: 3 }];
    // floor(0.2 * 3) = 0: weighted mean (1 + 8 + 30) / 6.
    close(vals(aggregateTensors(g, three, { rule: "trimmed", trim: 0.2 })), [[6.5]]);
    // floor(0.4 * 3) = 1: median 4.
    close(vals(aggregateTensors(g, three, { rule: "trimmed", trim: 0.4 })), [[4]]);
  });

  it("clip and trim compose: clipped values are trimmed", () => {
    const g = [t("a", [0])];
    const ups = [[1], [2], [3], [100]].map((v) => ({ tensors: [t("a", v)], weight: 1 }));
    // Clipped to norm 2.5: 1, 2, 2.5, 2.5; trim 0.25 drops one each end -> mean(2, 2.5) = 2.25.
    close(vals(aggregateTensors(g, ups, { clipNorm: 2.5, rule: "trimmed", trim: 0.25 })), [[2.25]]);
  });

  it("large trimmed aggregation uses the native sort path", () => {
    const g = [t("a", [0])];
    const ups = Array.from({ length: 40 }, (_, i) => ({ tensors: [t("a", [i === 0 ? 1e6 : i])], weight: 1 }));
    // trim 0.1 of 40 -> drop 4 each end: values 0..39 with 0 replaced by 1e6 -> sorted 1..39, 1e6; keep 5..36.
    close(vals(aggregateTensors(g, ups, { rule: "trimmed", trim: 0.1 })), [[20.5]]);
  });

  it("rejects incompatible updates and bad options", () => {
    expect(() => aggregateTensors(global, [{ tensors: [t("w", [1, 2, 3, 4], [2, 2])], weight: 1 }])).toThrow(RangeError);
    expect(() => aggregateTensors(global, [{ tensors: [t("x", [1, 2, 3, 4], [2, 2]), t("b", [1])], weight: 1 }])).toThrow(/named "x"/);
    expect(() => aggregateTensors(global, [{ tensors: [t("w", [1, 2, 3], [3]), t("b", [1])], weight: 1 }])).toThrow(/shape \[3\]/);
    expect(() => aggregateTensors(global, [{ tensors: [t("w", [1, 2, 3], [2, 2]), t("b", [1])], weight: 1 }])).toThrow(/3 values/);
    expect(() => aggregateTensors(global, [{ tensors: [t("w", [1, 2, 3, 4], [4]), t("b", [1])], weight: 1 }])).toThrow(/expected \[2,2\]/);
    expect(() => aggregateTensors(global, [], { rule: "trimmed", trim: 0.6 })).toThrow(RangeError);
    expect(() => aggregateTensors(global, [], { clipNorm: 0 })).toThrow(RangeError);
  });
});

describe("aggregateRound", () => {
  it("backbone by numSamples over all; experts by usage over holders; untrained expert kept", () => {
    const backbone = [t("psi", [0, 0])];
    const experts = [[t("e0", [1])], [t("e1", [2])], [t("e2", [3])]];
    const snapshot = [vals(backbone), ...experts.map(vals)];
    const out = aggregateRound(backbone, experts, [
      {
        backbone: [t("psi", [1, 1])],
        numSamples: 100,
        experts: [
          { expert: 0, tensors: [t("e0", [10])], usage: 30 },
          { expert: 1, tensors: [t("e1", [5])], usage: 0 },
        ],
      },
      {
        backbone: [t("psi", [4, 7])],
        numSamples: 300,
        experts: [
          { expert: 0, tensors: [t("e0", [20])], usage: 10 },
          { expert: 1, tensors: [t("e1", [6])], usage: 0 },
        ],
      },
    ]);
    close(vals(out.backbone), [[3.25, 5.5]]); // (1*100 + 4*300)/400, (1*100 + 7*300)/400
    close(vals(out.experts[0] ?? []), [[12.5]]); // (10*30 + 20*10)/40
    close(vals(out.experts[1] ?? []), [[2]]); // zero total usage: kept
    close(vals(out.experts[2] ?? []), [[3]]); // no holder: kept
    expect([vals(backbone), ...experts.map(vals)]).toEqual(snapshot);
  });

  it("rejects unknown or duplicated experts", () => {
    const b = [t("psi", [0])];
    const ex = [[t("e0", [0])]];
    expect(() => aggregateRound(b, ex, [{ backbone: b, numSamples: 1, experts: [{ expert: 1, tensors: ex[0] ?? [], usage: 1 }] }])).toThrow(
      RangeError,
    );
    expect(() =>
      aggregateRound(b, ex, [{ backbone: b, numSamples: 1, experts: [0, 0].map((e) => ({ expert: e, tensors: ex[0] ?? [], usage: 1 })) }]),
    ).toThrow(/twice/);
  });
});

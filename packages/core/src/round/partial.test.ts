import { describe, expect, it } from "vitest";
import { aggregateRound, type AggregateOptions, type ClientRoundUpdate } from "../aggregation/aggregate.ts";
import { createRng } from "../rng.ts";
import type { NamedTensor } from "../types.ts";
import { combinePartials, decodePartial, encodePartial, PartialAccumulator, streams } from "./partial.ts";
import type { ModelLayout } from "./layout.ts";

const E = 3;
const layout: ModelLayout = {
  backbone: [
    { name: "b/w", shape: [2, 3] },
    { name: "b/b", shape: [3] },
  ],
  experts: Array.from({ length: E }, (_, e) => [{ name: `e${e}/w`, shape: [4] }]),
};
const rng = createRng(7);
const rand = (m: { readonly name: string; readonly shape: readonly number[] }, scale = 1): NamedTensor => ({
  name: m.name,
  shape: [...m.shape],
  data: Float32Array.from({ length: m.shape.reduce((a, b) => a * b, 1) }, () => (rng.next() - 0.5) * scale),
});
const globalBackbone = layout.backbone.map((m) => rand(m));
const globalExperts = layout.experts.map((g) => g.map((m) => rand(m)));
const updates: ClientRoundUpdate[] = Array.from({ length: 7 }, (_, c) => {
  const held = [c % E, (c + 1) % E].sort((a, b) => a - b);
  return {
    backbone: layout.backbone.map((m) => rand(m, 3)),
    numSamples: 5 + c,
    // One client's expert has zero usage: it must count for nothing, as in aggregateRound.
    experts: held.map((e, k) => ({
      expert: e,
      tensors: (layout.experts[e] ?? []).map((m) => rand(m, 3)),
      usage: c === 2 && k === 0 ? 0 : 1 + k + c,
    })),
  };
});

function viaPartials(split: number[][], opts: AggregateOptions, mode: "mean" | "median") {
  const partials = split.map((idx) => {
    const acc = new PartialAccumulator(globalBackbone, globalExperts, opts);
    for (const i of idx) acc.add(updates[i] as ClientRoundUpdate);
    // Through the wire form, as an edge sends it to the leader.
    const { meta, frame } = encodePartial(acc.finish(), globalBackbone);
    const back = decodePartial(layout, JSON.parse(JSON.stringify(meta)), frame);
    if (!back.ok) throw new Error(back.error.message);
    return back.value;
  });
  return combinePartials(globalBackbone, globalExperts, partials, mode);
}

const flat = (r: { backbone: NamedTensor[]; experts: NamedTensor[][] }): number[] => [
  ...r.backbone.flatMap((t) => Array.from(t.data)),
  ...r.experts.flat().flatMap((t) => Array.from(t.data)),
];
const maxDiff = (a: number[], b: number[]): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

describe("partial aggregation", () => {
  for (const [label, opts] of [
    ["mean", {}],
    ["mean with fixed clipping", { clipNorm: 0.8 }],
  ] as const) {
    it(`${label}: any split over edges gives the one-process result (to float tolerance)`, () => {
      const one = flat(aggregateRound(globalBackbone, globalExperts, updates, opts));
      for (const split of [
        [[0, 1, 2, 3, 4, 5, 6]],
        [
          [0, 2, 4, 6],
          [1, 3, 5],
        ],
        [[6], [0, 1], [2, 3, 4, 5]],
      ]) {
        const d = maxDiff(flat(viaPartials(split, opts, "mean")), one);
        expect(d).toBeLessThan(1e-5);
      }
      expect(streams(opts)).toBe(true);
    });
  }

  it("an expert no edge trained keeps its global weights, bit for bit", () => {
    const only = updates.filter((u) => u.experts.every((x) => x.expert !== 2));
    const acc = new PartialAccumulator(globalBackbone, globalExperts);
    for (const u of only) acc.add(u);
    const out = combinePartials(globalBackbone, globalExperts, [acc.finish()], "mean");
    expect(Array.from(out.experts[2]![0]!.data)).toEqual(Array.from(globalExperts[2]![0]!.data));
  });

  it("robust rules: one edge equals the rule over its updates; across edges the median of their estimates", () => {
    const opts = { rule: "median" } as const;
    expect(streams(opts)).toBe(false);
    const one = flat(aggregateRound(globalBackbone, globalExperts, updates, opts));
    expect(maxDiff(flat(viaPartials([[0, 1, 2, 3, 4, 5, 6]], opts, "median")), one)).toBeLessThan(1e-6);
    const edges = [
      [0, 1],
      [2, 3, 4],
      [5, 6],
    ];
    const per = edges.map((idx) =>
      flat(
        aggregateRound(
          globalBackbone,
          globalExperts,
          idx.map((i) => updates[i]!),
          opts,
        ),
      ),
    );
    const got = flat(viaPartials(edges, opts, "median"));
    // Where all three edges have the group, the value is the middle of the three estimates.
    const b0 = [per[0]![0]!, per[1]![0]!, per[2]![0]!].sort((a, b) => a - b)[1]!;
    expect(got[0]).toBeCloseTo(b0, 6);
  });

  it("decodePartial rejects an unordered expert list, bad weights and a frame that does not match", () => {
    const acc = new PartialAccumulator(globalBackbone, globalExperts);
    acc.add(updates[0]!);
    const { meta, frame } = encodePartial(acc.finish(), globalBackbone);
    expect(decodePartial(layout, { ...meta, experts: [...meta.experts].reverse() }, frame).ok).toBe(false);
    expect(decodePartial(layout, { ...meta, backboneWeight: Number.NaN }, frame).ok).toBe(false);
    expect(decodePartial(layout, { ...meta, experts: [{ expert: 2, weight: 1 }] }, frame).ok).toBe(false);
    expect(() => acc.add({ ...updates[0]!, experts: [{ expert: 9, tensors: [], usage: 1 }] })).toThrow(RangeError);
  });
});

import { describe, expect, it } from "vitest";
import { FitnessMatrix, instantScore } from "./fitness.ts";
import type { ExpertFeedback } from "./types.ts";

const fb = (expert: number, usage: number, accuracy: number, loss: number): ExpertFeedback => ({ expert, usage, accuracy, loss });

describe("instantScore", () => {
  it("acc: accuracy clipped to [0, 1]", () => {
    expect(instantScore(fb(0, 5, 0.7, 1), { kind: "acc" })).toBe(0.7);
    expect(instantScore(fb(0, 5, 5, 1), { kind: "acc" })).toBe(1);
    expect(instantScore(fb(0, 5, -2, 1), { kind: "acc" })).toBe(0);
    expect(instantScore(fb(0, 5, Number.NaN, 1), { kind: "acc" })).toBe(0);
  });

  it("loss: exp(-alphaL * loss) with loss clipped to >= 0", () => {
    expect(instantScore(fb(0, 5, 0, 0.5), { kind: "loss", alphaL: 2 })).toBeCloseTo(Math.exp(-1), 15);
    expect(instantScore(fb(0, 5, 0, -3), { kind: "loss", alphaL: 2 })).toBe(1);
    expect(instantScore(fb(0, 5, 0, Number.POSITIVE_INFINITY), { kind: "loss", alphaL: 2 })).toBe(0);
    expect(instantScore(fb(0, 5, 0, Number.NaN), { kind: "loss", alphaL: 2 })).toBe(0);
    expect(() => instantScore(fb(0, 5, 0, 1), { kind: "loss", alphaL: 0 })).toThrow(RangeError);
  });
});

describe("FitnessMatrix", () => {
  it("defaults q0 to 1 and creates rows on demand", () => {
    const m = new FitnessMatrix(3);
    expect(m.q0).toBe(1);
    expect(m.has("a")).toBe(false);
    expect(m.get("a", 2)).toBe(1);
    expect(m.has("a")).toBe(false); // get does not create
    expect(Array.from(m.row("a"))).toEqual([1, 1, 1]);
    expect(m.has("a")).toBe(true);
    expect(Array.from(new FitnessMatrix(2, 0.5).row("x"))).toEqual([0.5, 0.5]);
    expect(() => m.get("a", 3)).toThrow(RangeError);
  });

  it("EMA matches hand computation over two rounds, only for assigned experts", () => {
    const m = new FitnessMatrix(4, 1);
    const opts = { beta: 0.3, fitness: { kind: "acc" } as const };
    // Expert 3 reports feedback but was not assigned: ignored.
    m.update("c1", [0, 2], [fb(0, 10, 0.5, 0), fb(2, 4, 0.9, 0), fb(3, 50, 0, 0)], opts);
    expect(m.get("c1", 0)).toBeCloseTo(0.7 * 1 + 0.3 * 0.5, 15); // 0.85
    expect(m.get("c1", 1)).toBe(1);
    expect(m.get("c1", 2)).toBeCloseTo(0.7 * 1 + 0.3 * 0.9, 15); // 0.97
    expect(m.get("c1", 3)).toBe(1);
    m.update("c1", [0], [fb(0, 1, 0.1, 0)], opts);
    expect(m.get("c1", 0)).toBeCloseTo(0.7 * 0.85 + 0.3 * 0.1, 15); // 0.625
    expect(m.get("c1", 2)).toBeCloseTo(0.97, 15);
  });

  it("loss-driven EMA", () => {
    const m = new FitnessMatrix(2, 0.5);
    m.update("c", [1], [fb(1, 3, 0, 2)], { beta: 0.5, fitness: { kind: "loss", alphaL: 0.5 } });
    expect(m.get("c", 1)).toBeCloseTo(0.25 + 0.5 * Math.exp(-1), 15);
    expect(m.get("c", 0)).toBe(0.5);
  });

  it("zero, missing or NaN usage keeps Q; clipping applies to out-of-range feedback", () => {
    const m = new FitnessMatrix(3, 0.4);
    const opts = { beta: 0.5, fitness: { kind: "acc" } as const };
    m.update("c", [0, 1, 2], [fb(0, 0, 0.9, 0), fb(2, Number.NaN, 0.9, 0)], opts);
    expect(Array.from(m.row("c"))).toEqual([0.4, 0.4, 0.4]);
    m.update("c", [1], [fb(1, 2, 5, 0)], opts); // accuracy 5 -> 1
    expect(m.get("c", 1)).toBeCloseTo(0.7, 15);
    // An expert listed twice is updated once.
    m.update("c", [2, 2], [fb(2, 2, 1, 0)], opts);
    expect(m.get("c", 2)).toBeCloseTo(0.7, 15);
  });

  it('zeroUsage "zero" scores an assigned expert without routed samples (zero, missing, NaN) as 0', () => {
    const m = new FitnessMatrix(4, 0.4);
    m.update("c", [0, 1, 2], [fb(0, 0, 0.9, 0), fb(2, Number.NaN, 0.9, 0)], { beta: 0.5, fitness: { kind: "acc" }, zeroUsage: "zero" });
    expect(Array.from(m.row("c"))).toEqual([0.2, 0.2, 0.2, 0.4]); // expert 3 was not assigned
  });

  it("validates beta and expert indices", () => {
    const m = new FitnessMatrix(2);
    expect(() => m.update("c", [0], [], { beta: 0, fitness: { kind: "acc" } })).toThrow(RangeError);
    expect(() => m.update("c", [0], [], { beta: 1.5, fitness: { kind: "acc" } })).toThrow(RangeError);
    expect(() => m.update("c", [2], [], { beta: 0.5, fitness: { kind: "acc" } })).toThrow(RangeError);
    expect(() => new FitnessMatrix(0)).toThrow(RangeError);
  });

  it("toDense is C x E row-major, q0 for unknown clients, without creating rows", () => {
    const m = new FitnessMatrix(2, 1);
    m.row("a")[1] = 0.25;
    m.row("b")[0] = 0.5;
    expect(Array.from(m.toDense(["b", "zz", "a"]))).toEqual([0.5, 1, 1, 1, 1, 0.25]);
    expect(m.has("zz")).toBe(false);
    expect(m.clientIds()).toEqual(["a", "b"]);
  });

  it("round-trips through JSON and rejects malformed data", () => {
    const m = new FitnessMatrix(3, 0.75);
    m.update("10", [0], [fb(0, 1, 0.2, 0)], { beta: 0.5, fitness: { kind: "acc" } });
    m.row("2");
    const back = FitnessMatrix.fromJSON(JSON.parse(JSON.stringify(m)));
    expect(back.toJSON()).toEqual(m.toJSON());
    expect(back.clientIds()).toEqual(["10", "2"]); // insertion order, even for numeric-looking ids
    expect(back.q0).toBe(0.75);
    expect(back.get("10", 0)).toBeCloseTo(0.475, 15);
    for (const bad of [
      null,
      3,
      { experts: 3, q0: 1, rows: [{ id: "a", q: [1, 1] }] },
      { experts: 3, q0: 1, rows: [{ id: "a", q: [1, 1, null] }] },
      { experts: 0, q0: 1, rows: [] },
      {
        experts: 1,
        q0: 1,
        rows: [
          { id: "a", q: [1] },
          { id: "a", q: [1] },
        ],
      },
    ]) {
      expect(() => FitnessMatrix.fromJSON(bad)).toThrow(TypeError);
    }
  });
});

describe("FitnessMatrix.decayUnassigned", () => {
  it("moves only the unassigned experts toward q0, by the given fraction", () => {
    const q = new FitnessMatrix(3, 1);
    const fb = (e: number, accuracy: number): ExpertFeedback => ({ expert: e, usage: 5, accuracy, loss: 1 - accuracy });
    q.update("a", [0, 1, 2], [fb(0, 0.2), fb(1, 0.4), fb(2, 0.6)], { beta: 1, fitness: { kind: "acc" } });
    q.decayUnassigned("a", [1], 0.25);
    expect(q.get("a", 0)).toBeCloseTo(0.2 + 0.25 * 0.8, 12);
    expect(q.get("a", 1)).toBeCloseTo(0.4, 12);
    expect(q.get("a", 2)).toBeCloseTo(0.6 + 0.25 * 0.4, 12);
    q.decayUnassigned("a", [], 0);
    expect(q.get("a", 0)).toBeCloseTo(0.4, 12);
    expect(() => q.decayUnassigned("a", [], 1.5)).toThrow(RangeError);
  });
});

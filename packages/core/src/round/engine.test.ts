import { describe, expect, it } from "vitest";
import { aggregateRound } from "../aggregation/aggregate.ts";
import { defineRule } from "../aggregation/rule.ts";
import { AGGREGATION_RULES, ruleRegistry } from "../aggregation/registry.ts";
import { STRATEGIES } from "../assignment/registry.ts";
import { defineStrategy, strategyRegistry } from "../assignment/strategy.ts";
import { toAssignment } from "../assignment/common.ts";
import { createRng } from "../rng.ts";
import type { NamedTensor } from "../types.ts";
import { admitUpdate } from "./admit.ts";
import {
  applyRound,
  forgetClients,
  heldBy,
  initialState,
  planRound,
  type ClientUpdate,
  type EngineConfig,
  type EngineState,
} from "./engine.ts";
import { clientManifest, clientTensors, splitClientTensors, type ModelLayout } from "./layout.ts";
import { encodeTensors } from "../wire.ts";
import { FitnessMatrix } from "../fitness.ts";

const t = (name: string, values: number[]): NamedTensor => ({ name, shape: [values.length], data: Float32Array.from(values) });
const layout: ModelLayout = {
  backbone: [{ name: "b", shape: [2] }],
  experts: [0, 1, 2, 3].map((e) => [{ name: `e${e}`, shape: [1] }]),
};
const start = (): EngineState => initialState({ backbone: [t("b", [0, 0])], experts: [0, 1, 2, 3].map((e) => [t(`e${e}`, [e])]) }, 1);
const config: EngineConfig = {
  strategy: "flex",
  fitness: { kind: "acc" },
  beta: 0.5,
  slack: 0,
  aggregation: { rule: "mean", trim: 0.2, clipNorm: 0, clipFactor: 0 },
};

/** Each client sends backbone + its experts shifted by `step`, with the usage and accuracy given. */
function updateOf(state: EngineState, id: string, held: readonly number[], step: number, acc = 0.5, samples = 10): ClientUpdate {
  return {
    clientId: id,
    numSamples: samples,
    backbone: [
      t(
        "b",
        Array.from(state.backbone[0]!.data, (v) => v + step),
      ),
    ],
    experts: held.map((e) => ({ expert: e, tensors: [t(`e${e}`, [state.experts[e]![0]!.data[0]! + step])], usage: 5 })),
    feedback: held.map((e) => ({ expert: e, usage: 5, accuracy: acc, loss: 1 - acc })),
    evalAccuracy: acc,
    evalLoss: 1 - acc,
    evalSamples: 4,
    trainLoss: 0.3,
  };
}

describe("round engine", () => {
  it("plans a balanced flex round in canonical client order", () => {
    const plan = planRound(
      start(),
      [
        { id: "c10", capacity: 2 },
        { id: "c2", capacity: 2 },
      ],
      config,
      createRng(1),
    );
    expect(plan.round).toBe(1);
    expect(plan.participants).toEqual(["c2", "c10"]);
    expect(plan.load).toEqual([1, 1, 1, 1]);
    expect(heldBy(plan, "c10")).toEqual(plan.experts[1]);
    expect(heldBy(plan, "c3")).toBeUndefined();
  });

  it("applies a round: samples-weighted backbone, usage-weighted experts, Q, deficit, record; input state untouched", () => {
    const s0 = start();
    const plan = planRound(
      s0,
      [
        { id: "a", capacity: 2 },
        { id: "b", capacity: 2 },
      ],
      config,
      createRng(1),
    );
    const ua = updateOf(s0, "a", heldBy(plan, "a")!, 1, 0.9, 30);
    const ub = updateOf(s0, "b", heldBy(plan, "b")!, -1, 0.1, 10);
    const { state, record } = applyRound(s0, plan, [ub, ua], config);
    // Backbone: (30 * 1 + 10 * -1) / 40 = 0.5.
    expect(Array.from(state.backbone[0]!.data)).toEqual([0.5, 0.5]);
    for (const e of heldBy(plan, "a")!) expect(state.experts[e]![0]!.data[0]).toBeCloseTo(e + 1);
    expect(state.fitness.get("a", heldBy(plan, "a")![0]!)).toBeCloseTo(0.95);
    expect(state.round).toBe(1);
    expect(record).toMatchObject({ round: 1, participants: 2, load: [1, 1, 1, 1], cv: 0, maxVio: 0, starved: 0, trainLoss: 0.3 });
    expect(record.accuracy).toBeCloseTo(0.5);
    expect(record.routed).toEqual([5, 5, 5, 5]);
    // Pure: the given state is unchanged.
    expect(Array.from(s0.backbone[0]!.data)).toEqual([0, 0]);
    expect(s0.fitness.has("a")).toBe(false);
    expect(s0.round).toBe(0);
  });

  it("does not depend on the order updates arrive in", () => {
    const s0 = start();
    const plan = planRound(
      s0,
      ["a", "b", "c"].map((id) => ({ id, capacity: 2 })),
      config,
      createRng(1),
    );
    const ups = ["a", "b", "c"].map((id, i) => updateOf(s0, id, heldBy(plan, id)!, 0.1 * (i + 1) + 1e-7 * i, 0.3 + 0.2 * i, 7 + i));
    const one = applyRound(s0, plan, ups, config);
    const two = applyRound(s0, plan, [ups[2]!, ups[0]!, ups[1]!], config);
    expect(encodeTensors([...two.state.backbone, ...two.state.experts.flat()])).toEqual(
      encodeTensors([...one.state.backbone, ...one.state.experts.flat()]),
    );
    expect(two.record).toEqual(one.record);
  });

  it("records null accuracy when nothing was evaluated, and refuses updates the plan does not explain", () => {
    const s0 = start();
    const plan = planRound(s0, [{ id: "a", capacity: 2 }], { ...config, strategy: "greedy" }, createRng(1));
    const u = { ...updateOf(s0, "a", heldBy(plan, "a")!, 1), evalSamples: 0 };
    expect(applyRound(s0, plan, [u], config).record.accuracy).toBeNull();
    expect(() => applyRound(s0, plan, [{ ...u, clientId: "z" }], config)).toThrow(/not a participant/);
    expect(() => applyRound(s0, plan, [u, u], config)).toThrow(/two updates/);
    expect(() => applyRound(s0, plan, [{ ...u, experts: u.experts.slice(1) }], config)).toThrow(/holds/);
  });

  it("gives a holds-all strategy every expert whatever the capacity", () => {
    const plan = planRound(start(), [{ id: "a", capacity: 1 }], { ...config, strategy: "full" }, createRng(1));
    expect(plan.experts).toEqual([[0, 1, 2, 3]]);
    expect(plan.capacities).toEqual([4]);
  });
});

describe("adaptive clipping", () => {
  it("bounds a step far larger than the others', even on an expert it holds alone", () => {
    const s0 = start();
    const cfg = { ...config, strategy: "roundrobin", aggregation: { ...config.aggregation, clipFactor: 2 } };
    const plan = planRound(
      s0,
      ["a", "b", "c", "d"].map((id) => ({ id, capacity: 1 })),
      cfg,
      createRng(1),
    );
    // Honest steps of 0.1; "d" steps 1000 on the backbone and on its (sole-held) expert.
    const ups = ["a", "b", "c", "d"].map((id) => updateOf(s0, id, heldBy(plan, id)!, id === "d" ? 1000 : 0.1));
    const plain = applyRound(s0, plan, ups, config).state;
    const clipped = applyRound(s0, plan, ups, cfg).state;
    const dExpert = heldBy(plan, "d")![0]!;
    expect(Math.abs(plain.experts[dExpert]![0]!.data[0]! - dExpert)).toBeGreaterThan(500);
    // Clipped to 2 x the lower median expert step (0.1).
    expect(Math.abs(clipped.experts[dExpert]![0]!.data[0]! - dExpert)).toBeLessThan(0.2 + 1e-6);
    expect(Math.max(...Array.from(clipped.backbone[0]!.data, Math.abs))).toBeLessThan(0.2);
    // Honest-sized steps are not touched.
    const honest = applyRound(s0, plan, ups.slice(0, 3), cfg).state;
    expect(Array.from(honest.backbone[0]!.data)).toEqual(Array.from(applyRound(s0, plan, ups.slice(0, 3), config).state.backbone[0]!.data));
  });
});

describe("streaming mean", () => {
  it("the mean folded update by update (as a live coordinator streams it) is aggregateRound's mean, any arrival order", () => {
    const s0 = start();
    const plan = planRound(
      s0,
      ["a", "b", "c", "d", "e"].map((id) => ({ id, capacity: 2 })),
      config,
      createRng(3),
    );
    const ups = ["a", "b", "c", "d", "e"].map((id, i) => updateOf(s0, id, heldBy(plan, id)!, 0.37 * (i + 1), 0.5, 7 + 3 * i));
    const streamed = applyRound(s0, plan, ups, config).state;
    const shuffled = applyRound(s0, plan, [...ups].reverse(), config).state;
    const reference = aggregateRound(s0.backbone, s0.experts, ups, {});
    const flat = (x: { backbone: readonly NamedTensor[]; experts: readonly (readonly NamedTensor[])[] }) =>
      [...x.backbone, ...x.experts.flat()].flatMap((t) => Array.from(t.data));
    // Updates are taken in plan order, so arrival order changes nothing at all.
    expect(flat(shuffled)).toEqual(flat(streamed));
    const ref = flat(reference);
    flat(streamed).forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
    // And the weights moved (the comparison is not the trivial one).
    expect(Math.abs(streamed.backbone[0]!.data[0]!)).toBeGreaterThan(0.3);
  });
});

describe("expert capture (self-reported feedback)", () => {
  /** Four clients, k = 1 of 4, 8 rounds: c1 always reports 1.0, the others 0.5. Longest run c1 keeps one expert. */
  function longestHold(maxHold: number): { longest: number; heldRounds: number; state: EngineState } {
    // q0 below the liar's claim, so its first expert beats every untried one.
    let state: EngineState = { ...start(), fitness: new FitnessMatrix(4, 0.5) };
    const cfg: EngineConfig = { ...config, maxHold };
    const ids = ["c1", "c2", "c3", "c4"];
    let longest = 0;
    let run = 0;
    let last = -1;
    let heldRounds = 0;
    let first = -1;
    for (let r = 0; r < 8; r++) {
      const plan = planRound(
        state,
        ids.map((id) => ({ id, capacity: 1 })),
        cfg,
        createRng(r),
      );
      const updates = ids.map((id) => updateOf(state, id, heldBy(plan, id) ?? [], 0, id === "c1" ? 1 : 0.5));
      const e = heldBy(plan, "c1")?.[0] ?? -1;
      if (r === 0) first = e;
      run = e === last ? run + 1 : 1;
      last = e;
      longest = Math.max(longest, run);
      if (e === first) heldRounds++;
      state = applyRound(state, plan, updates, cfg).state;
    }
    return { longest, heldRounds, state };
  }

  it("without a limit a client reporting 1.0 keeps its expert every round; with maxHold 3 it must leave it", () => {
    expect(longestHold(0)).toMatchObject({ longest: 8, heldRounds: 8 });
    const limited = longestHold(3);
    expect(limited.longest).toBe(3);
    expect(limited.heldRounds).toBeLessThanOrEqual(6);
    expect(limited.state.holding["c1"]?.some((n) => n > 0 && n <= 3)).toBe(true);
  });

  it("streaks count answered rounds only, and a forgotten client loses its Q row and streak", () => {
    const s0 = start();
    const ids = ["c1", "c2"];
    const plan = planRound(
      s0,
      ids.map((id) => ({ id, capacity: 2 })),
      config,
      createRng(1),
    );
    const { state } = applyRound(s0, plan, [updateOf(s0, "c1", heldBy(plan, "c1") ?? [], 0.1, 0.9)], config);
    expect(state.holding["c1"]?.filter((n) => n === 1)).toHaveLength(2);
    expect(state.holding["c2"]).toBeUndefined();
    const forgotten = forgetClients(state, ["c1"]);
    expect(forgotten.fitness.has("c1")).toBe(false);
    expect(forgotten.holding["c1"]).toBeUndefined();
    expect(state.fitness.has("c1")).toBe(true);
  });
});

describe("registries", () => {
  it("a new strategy is one definition plus one registry entry", () => {
    // "lowest": every client takes experts 0..k-1 (a deliberately bad strategy, easy to recognize).
    const lowest = defineStrategy({
      name: "lowest",
      summary: "the k lowest expert ids",
      solve: (p) => {
        const hold = new Uint8Array(p.clients * p.experts);
        for (let c = 0; c < p.clients; c++) for (let e = 0; e < (p.capacity[c] as number); e++) hold[c * p.experts + e] = 1;
        return toAssignment(Float64Array.from(p.fitness), p.clients, p.experts, hold);
      },
    });
    const strategies = strategyRegistry([...STRATEGIES, lowest]);
    expect(strategies.names).toContain("lowest");
    const plan = planRound(start(), [{ id: "a", capacity: 2 }], { ...config, strategy: "lowest" }, createRng(1), { strategies });
    expect(plan.experts).toEqual([[0, 1]]);
    expect(() => planRound(start(), [{ id: "a", capacity: 2 }], { ...config, strategy: "lowest" }, createRng(1))).toThrow(
      /unknown strategy/,
    );
  });

  it("a new aggregation rule is one definition plus one registry entry", () => {
    // "keep": ignore every update (the global value stays).
    const keep = defineRule({ name: "keep", summary: "keep the global value", combine: ({ g }) => g.slice() });
    const rules = ruleRegistry([...AGGREGATION_RULES, keep]);
    const s0 = start();
    const plan = planRound(s0, [{ id: "a", capacity: 2 }], config, createRng(1));
    const u = updateOf(s0, "a", heldBy(plan, "a")!, 3);
    const cfg = { ...config, aggregation: { ...config.aggregation, rule: "keep" } };
    expect(Array.from(applyRound(s0, plan, [u], cfg, { rules }).state.backbone[0]!.data)).toEqual([0, 0]);
    expect(Array.from(applyRound(s0, plan, [u], config).state.backbone[0]!.data)).toEqual([3, 3]);
    expect(() => applyRound(s0, plan, [u], cfg)).toThrow(/unknown rule 'keep'/);
  });
});

describe("layout and admission", () => {
  it("splits and joins a client frame the same way", () => {
    const s = start();
    const tensors = clientTensors(s.backbone, s.experts, [1, 3]);
    expect(tensors.map((x) => x.name)).toEqual(clientManifest(layout, [1, 3]).map((m) => m.name));
    const split = splitClientTensors(layout, [1, 3], tensors);
    expect(split.experts.map((x) => [x.expert, x.tensors[0]!.name])).toEqual([
      [1, "e1"],
      [3, "e3"],
    ]);
    expect(() => splitClientTensors(layout, [1], tensors)).toThrow(RangeError);
  });

  it("admits a well-formed frame and names what is wrong with a bad one", () => {
    const s0 = start();
    const plan = planRound(s0, [{ id: "a", capacity: 2 }], config, createRng(1));
    const held = heldBy(plan, "a")!;
    const u = updateOf(s0, "a", held, 1);
    const meta = {
      round: 1,
      numSamples: 10,
      feedback: u.feedback,
      evalAccuracy: 0.5,
      evalLoss: 0.5,
      evalSamples: 4,
      trainLoss: 0.3,
      trainMs: 1,
    };
    const frame = encodeTensors([...u.backbone, ...u.experts.flatMap((x) => x.tensors)]);
    const ok = admitUpdate(plan, layout, "a", meta, frame);
    expect(ok.ok && ok.value.experts.map((x) => [x.expert, x.usage])).toEqual(held.map((e) => [e, 5]));
    expect(admitUpdate(plan, layout, "b", meta, frame)).toMatchObject({ ok: false, error: { code: "NOT_PARTICIPANT" } });
    const other = [0, 1, 2, 3].find((e) => !held.includes(e))!;
    expect(admitUpdate(plan, layout, "a", { ...meta, feedback: [{ expert: other, usage: 1, accuracy: 1, loss: 0 }] }, frame)).toMatchObject(
      {
        ok: false,
        error: { code: "NOT_ASSIGNED" },
      },
    );
    expect(admitUpdate(plan, layout, "a", meta, encodeTensors(u.backbone))).toMatchObject({ ok: false });
    // Soft gate mass: the experts' masses sum to at most the samples.
    const withMass = (m: number) => ({ ...meta, feedback: u.feedback.map((f) => ({ ...f, mass: m })) });
    expect(admitUpdate(plan, layout, "a", withMass(5), frame).ok).toBe(true);
    expect(admitUpdate(plan, layout, "a", withMass(5.5), frame)).toMatchObject({
      ok: false,
      error: { code: "INVALID_PAYLOAD", message: expect.stringContaining("gate mass") as string },
    });
    // Claims beyond what the server dealt, and absurd magnitudes, are refused with a reason.
    expect(admitUpdate(plan, layout, "a", { ...meta, numSamples: 10_000_000 }, frame, { maxSamples: 60 })).toMatchObject({
      ok: false,
      error: { code: "OUT_OF_BOUNDS", message: expect.stringContaining("numSamples") as string },
    });
    expect(admitUpdate(plan, layout, "a", { ...meta, evalSamples: 99 }, frame, { maxEvalSamples: 10 })).toMatchObject({ ok: false });
    const huge = encodeTensors(
      [...u.backbone, ...u.experts.flatMap((x) => x.tensors)].map((x) => ({ ...x, data: x.data.map(() => 1e30) })),
    );
    expect(admitUpdate(plan, layout, "a", meta, huge)).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining("beyond") as string },
    });
  });
});

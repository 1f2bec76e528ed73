import { describe, expect, it } from "vitest";
import type { RoundStart } from "@flexmoe/core";
import { RoundQueue, type AbortFlag } from "./rounds.ts";

const start = (round: number): RoundStart => ({
  round,
  experts: [0],
  weights: new Uint8Array(0),
  training: { epochs: 1, batchSize: 32, learningRate: 0.005, feedback: "pre" },
  timeoutMs: 1000,
});

/** A run that finishes when the test says so (or when it sees its abort flag at release). */
function harness() {
  const runs: { round: number; signal: AbortFlag; finish(answer: boolean): void }[] = [];
  const idle: boolean[] = [];
  const q = new RoundQueue({
    run: (s, signal) =>
      new Promise<boolean>((resolve) => runs.push({ round: s.round, signal, finish: (a) => resolve(a && !signal.aborted) })),
    idle: (answered) => idle.push(answered),
  });
  return { q, runs, idle, tick: () => new Promise((r) => setTimeout(r, 0)) };
}

describe("RoundQueue", () => {
  it("a round that starts while one runs aborts it and runs next; only the newest of several waits", async () => {
    const { q, runs, idle, tick } = harness();
    q.started(start(1));
    expect(runs.map((r) => r.round)).toEqual([1]);
    q.started(start(2));
    q.started(start(3));
    expect(runs[0]!.signal.aborted).toBe(true);
    expect(q.busy).toBe(true);
    runs[0]!.finish(true); // it noticed the abort: not answered
    await tick();
    expect(runs.map((r) => r.round)).toEqual([1, 3]);
    expect(runs[1]!.signal.aborted).toBe(false);
    runs[1]!.finish(true);
    await tick();
    expect(idle).toEqual([true]);
    expect(q.busy).toBe(false);
  });

  it("reports an unanswered last round (the page must declare ready again) and runs the next one normally", async () => {
    const { q, runs, idle, tick } = harness();
    q.started(start(1));
    runs[0]!.finish(false);
    await tick();
    expect(idle).toEqual([false]);
    q.started(start(2));
    expect(runs.map((r) => r.round)).toEqual([1, 2]);
  });

  it("abort() stops the running round and drops a waiting one", async () => {
    const { q, runs, idle, tick } = harness();
    q.started(start(1));
    q.started(start(2));
    q.abort();
    runs[0]!.finish(true);
    await tick();
    expect(runs).toHaveLength(1);
    expect(idle).toEqual([false]);
  });
});

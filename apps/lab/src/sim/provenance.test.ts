import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runExperiment } from "../commands/experiment.ts";
import { gitProvenance, runArgs, runCommand } from "./provenance.ts";
import type { ResultRow, RunSpec } from "./types.ts";

const TINY = ["--dataset", "mnist", "--partition", "classes:4", "--clients", "3", "--experts", "4", "--rounds", "2"];
const TINY_DATA = ["--samples-per-client", "40", "--global-test", "20", "--workers", "1"];

const rowsOf = (dir: string): ResultRow[] => JSON.parse(readFileSync(path.join(dir, "results.json"), "utf8")) as ResultRow[];
/** Everything but the wall time is a function of the command and the commit. */
const numbers = ({ seconds: _s, ...rest }: ResultRow): Omit<ResultRow, "seconds"> => rest;

describe("experiment provenance", () => {
  it("records commit, config and a command that regenerates the row alone, bit for bit", async () => {
    const grid = mkdtempSync(path.join(tmpdir(), "flexmoe-prov-"));
    expect(await runExperiment([...TINY, ...TINY_DATA, "--strategy", "flex,random", "--seeds", "2", "--out", grid])).toBe(0);
    const rows = rowsOf(grid);
    expect(rows).toHaveLength(4);
    const prov = gitProvenance();
    for (const r of rows) {
      expect(r.commit).toBe(prov.commit);
      expect(r.dirty).toBe(prov.dirty);
      expect(r.config?.seed).toBe(r.seed);
      expect(r.command).toBe(runCommand(r.config!));
    }
    const row = rows.find((r) => r.strategy === "flex" && r.seed === 1)!;
    const argv = row.command!.replace(/^npx flexmoe experiment /, "").split(" ");
    const again = mkdtempSync(path.join(tmpdir(), "flexmoe-prov-"));
    expect(await runExperiment([...argv, "--workers", "1", "--out", again])).toBe(0);
    const [redo, ...extra] = rowsOf(again);
    expect(extra).toHaveLength(0);
    expect(numbers(redo!)).toEqual(numbers(row));
    // Not a vacuous equality: the run learned something and differs from the other seed.
    const other = rows.find((r) => r.strategy === "flex" && r.seed === 0)!;
    expect(redo!.accuracy).not.toEqual(other.accuracy);
  }, 120_000);

  it("names every knob explicitly and refuses what the command line cannot express", () => {
    const base: RunSpec = {
      data: { dataset: "fashion-mnist", clientSamples: 600, globalTest: 100, fashionDir: "/data/f" },
      partition: "dirichlet:0.8",
      strategy: "greedy",
      seed: 7,
      clients: 3,
      experts: 8,
      capacity: "1,2,4",
      rounds: 5,
      localEpochs: 2,
      batchSize: 16,
      learningRate: 0.01,
      fitness: "loss",
      alphaL: 2,
      beta: 0.3,
      q0: 0.5,
      slack: 0.1,
      testFraction: 0.25,
    };
    const row = runArgs(base);
    const flag = (k: string): string | undefined => row[row.indexOf(`--${k}`) + 1];
    expect(flag("samples-per-client")).toBe("200");
    expect(flag("capacity")).toBe("1,2,4");
    expect(flag("feedback")).toBe("pre");
    expect(flag("max-hold")).toBe("0");
    expect(flag("zero-usage")).toBe("keep");
    expect(flag("fashion-dir")).toBe("/data/f");
    const attacked = { ...base, attack: { fraction: 0.1, kind: "scale" as const, factor: 10 } };
    expect(() => runArgs(attacked)).toThrow(/attack/);
  });
});

import { describe, expect, it } from "vitest";
import { cellCommand, mainSetting, mustShowChecks, pairedTable, provenanceLine, renderReport } from "./report.ts";
import type { ResultRow, SimStrategy } from "./types.ts";

function row(strategy: SimStrategy, partition: string, seed: number, acc: number, cv: number, extra: Partial<ResultRow> = {}): ResultRow {
  const rounds = 3;
  return {
    dataset: "mnist",
    partition,
    strategy,
    seed,
    capacity: "2",
    fitness: "acc",
    feedback: "pre",
    clients: 2,
    experts: 2,
    rounds,
    localEpochs: 1,
    finalAccuracy: acc,
    finalLoss: 1 - acc,
    finalGlobalAccuracy: acc - 0.1,
    accuracy: [0.1, acc / 2, acc],
    loss: [2, 1, 0.5],
    trainLoss: [2, 1, 0.5],
    cvHolders: cv,
    cvPerRound: [cv, cv, cv],
    cvSamples: cv / 2,
    cvRoutedCumulativePerRound: [cv, cv / 2, cv / 2],
    cvRoutedPerRound: [cv, cv, cv],
    maxVioHolders: cv,
    maxVioSamples: cv,
    starvedHolders: 0,
    starvedSamples: 0,
    loadPerRound: [
      [1, 1],
      [1, 1],
      [1, 1],
    ],
    routedPerRound: [
      [10, 5],
      [10, 5],
      [10, 5],
    ],
    cumulativeRouted: [30, 15],
    lastAssignment: [
      [1, 0],
      [0, 1],
    ],
    capacities: [1, 1],
    bytesDownPerClient: 1e6,
    bytesUpPerClient: 1e6,
    bytesPerClient: 2e6,
    activeParams: 1000,
    seconds: 1,
    ...extra,
  };
}

const rows: ResultRow[] = [];
for (const partition of ["iid", "classes:4"])
  for (const seed of [0, 1]) {
    rows.push(row("flex", partition, seed, 0.9 + seed * 0.01, 0));
    rows.push(row("greedy", partition, seed, 0.895, 0.4));
    rows.push(row("random", partition, seed, 0.7, 0.2));
    rows.push(row("dense", partition, seed, 0.85, 0));
  }

describe("report", () => {
  it("evaluates the must-show comparisons on non-IID partitions only", () => {
    const checks = mustShowChecks(rows);
    expect(checks.map((c) => c.partition)).toEqual(["classes:4", "classes:4", "classes:4"]);
    expect(checks.every((c) => c.pass)).toBe(true);
    const bad = mustShowChecks([
      row("flex", "dirichlet:0.8", 0, 0.8, 0.5),
      row("greedy", "dirichlet:0.8", 0, 0.9, 0.3),
      row("random", "dirichlet:0.8", 0, 0.85, 0.2),
    ]);
    expect(bad.map((c) => c.pass)).toEqual([false, false, false]);
  });

  it("renders tables with mean +- 95% half-width, checks, sweeps and SVG plots", () => {
    const extra = [
      row("flex", "classes:4", 0, 0.88, 0, { capacity: "1,2,4" }),
      row("flex", "classes:4", 0, 0.86, 0, { fitness: "loss" }),
      row("flex", "classes:4", 0, 0.84, 0, { feedback: "post" }),
    ];
    const { markdown, files } = renderReport([...rows, ...extra], {
      commands: ["npx flexmoe experiment --quick"],
      setup: [["rounds", "3"]],
    });
    expect(mainSetting([...rows, ...extra])).toEqual({ capacity: "2", fitness: "acc", feedback: "pre" });
    expect(markdown).toContain("npx flexmoe experiment --quick");
    expect(markdown).toContain("| classes:4 | flex | 90.50 ± 6.35 |");
    expect(markdown).toContain("Must-show comparisons");
    expect(markdown).toContain("## Paired differences");
    // Two seeds: diffs 0.5 and 1.5 pt, t(0.975, 1) = 12.706 -> within noise.
    expect(markdown).toContain("| classes:4 | flex − greedy | 2 | +1.00 pt [-5.35, 7.35] | 2/2 | no |");
    expect(markdown).toContain("## Capacity sweep");
    expect(markdown).toContain("| 1,2,4 |");
    expect(markdown).toContain("## Fitness variants");
    expect(markdown).toContain("## Feedback modes");
    expect(markdown).toContain("| post | 84.00 / 0.000 / 0.000 (1) |");
    expect(markdown).not.toContain("**NO**");
    for (const kind of ["accuracy", "cv", "expert-load", "assignment"]) {
      const svg = files.get(`plots/mnist-classes-4-${kind}.svg`);
      expect(svg, kind).toBeDefined();
      expect(svg).toMatch(/^<svg[\s\S]*<\/svg>$/);
      expect(markdown).toContain(`plots/mnist-classes-4-${kind}.svg`);
    }
  });

  it("draws the fitness matrix Q of one run where rows carry it", () => {
    const q = [
      [0.9, 0.1],
      [0.2, 0.8],
    ];
    const { markdown, files } = renderReport([row("flex", "classes:4", 0, 0.9, 0, { finalQ: q }), row("greedy", "classes:4", 0, 0.8, 0.4)]);
    const svg = files.get("plots/mnist-classes-4-fitness.svg");
    // One panel (greedy's row has no Q), four cells, the darkest where Q is largest.
    expect(svg).toContain("flex (seed 0)");
    expect(svg).not.toContain("greedy (seed 0)");
    expect(svg?.match(/<rect x=/g)).toHaveLength(4);
    expect(svg).toContain('fill="rgb(8,48,107)"');
    expect(markdown).toContain("plots/mnist-classes-4-fitness.svg");
    expect(renderReport(rows).files.has("plots/mnist-classes-4-fitness.svg")).toBe(false);
  });

  it("prints the command that regenerates each row, seeds 0..K-1 as --seeds K", () => {
    const cmd = (seed: number, lr = "0.005"): string => `npx flexmoe experiment --dataset mnist --strategy flex --seed ${seed} --lr ${lr}`;
    const cell = [0, 1, 2].map((s) => row("flex", "iid", s, 0.9, 0, { command: cmd(s) }));
    expect(cellCommand(cell)).toBe("npx flexmoe experiment --seeds 3 --dataset mnist --strategy flex --lr 0.005");
    expect(cellCommand(cell.slice(1, 2))).toBe(cmd(1));
    // Seeds 1..2 are not what --seeds makes; commands that differ beyond the seed are not one cell.
    expect(cellCommand(cell.slice(1))).toBeUndefined();
    expect(cellCommand([cell[0]!, row("flex", "iid", 1, 0.9, 0, { command: cmd(1, "0.01") })])).toBeUndefined();
    expect(cellCommand([row("flex", "iid", 0, 0.9, 0)])).toBeUndefined();
    const { markdown } = renderReport(cell);
    expect(markdown).toContain("## Regenerating a row");
    expect(markdown).toContain("# mnist iid flex k=2 acc pre\nnpx flexmoe experiment --seeds 3 --dataset mnist");
    expect(renderReport(rows).markdown).not.toContain("## Regenerating a row");
  });

  it("pairs runs by seed and marks differences beyond seed noise", () => {
    const five: ResultRow[] = [];
    for (const seed of [0, 1, 2, 3, 4]) {
      const base = 0.8 + 0.02 * seed; // the split moves both strategies together
      five.push(row("flex", "classes:4", seed, base + 0.03 + (seed % 2 ? 0.005 : -0.005), 0));
      five.push(row("random", "classes:4", seed, base, 0.2));
      five.push(row("greedy", "classes:4", seed, base + (seed % 2 ? 0.04 : -0.04), 0.4));
    }
    five.push(row("greedy", "classes:4", 9, 0.1, 0.4)); // no flex run of seed 9: not paired
    const t = pairedTable(five, "mnist");
    const line = (b: string): string => t.find((l) => l.includes(`flex − ${b} |`)) ?? "";
    // Diffs 2.5, 3.5, 2.5, 3.5, 2.5 pt: mean 2.9, sd 0.548, t(0.975, 4) = 2.776.
    expect(line("random")).toBe("| classes:4 | flex − random | 5 | +2.90 pt [2.22, 3.58] | 5/5 | **yes: flex better** |");
    expect(line("greedy")).toMatch(/\| 5 \| .* \| 3\/5 \| no \|$/);
    const checks = mustShowChecks(five);
    expect(checks.find((c) => c.name.startsWith("random"))?.paired?.beyondNoise).toBe(true);
    expect(checks.find((c) => c.name.startsWith("flex accuracy"))?.paired?.n).toBe(5);
  });

  it("names the commit the rows ran at in the header, and says where rows were dirty or name none", () => {
    const at = (commit: string | undefined, dirty: boolean) => row("flex", "iid", 0, 0.8, 0, commit === undefined ? {} : { commit, dirty });
    const one = [at("0123456789abcdef", false), at("0123456789abcdef", false)];
    expect(provenanceLine(one)).toBe("All runs at commit `0123456789ab`.");
    expect(renderReport(one, { generatedAt: "now" }).markdown).toContain("All runs at commit `0123456789ab`.");
    expect(provenanceLine([...one, at("0123456789abcdef", true)])).toBe(
      "All runs at commit `0123456789ab` (1 of its 3 runs with uncommitted changes).",
    );
    expect(provenanceLine([at("aaaaaaaaaaaaaaaa", false), at("bbbbbbbbbbbbbbbb", false), at(undefined, false)])).toBe(
      "Runs at commits `aaaaaaaaaaaa`, `bbbbbbbbbbbb`. 1 run names no commit (from before rows recorded one).",
    );
  });

  it("handles an empty result set", () => {
    expect(renderReport([]).markdown).toContain("No results yet.");
  });
});

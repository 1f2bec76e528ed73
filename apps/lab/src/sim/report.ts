/**
 * Turns experiment rows (possibly merged from several invocations) into report.md and SVG plots.
 * Pure: returns the texts; the command writes them.
 */
import { interval, pairedDifference, type PairedDifference } from "./seed-stats.ts";
import { heatmaps, lineChart, type Series } from "./svg.ts";
import { SIM_STRATEGIES, type ResultRow } from "./types.ts";

export interface ReportMeta {
  title?: string;
  /** Markdown placed right under the title. */
  note?: string;
  /** Command lines that produced the rows. */
  commands?: readonly string[];
  /** Extra "name: value" lines for the setup section (defaults, machine, wall time). */
  setup?: readonly [string, string][];
  generatedAt?: string;
}

export interface Report {
  markdown: string;
  /** Relative path (e.g. "plots/x.svg") -> SVG text. */
  files: Map<string, string>;
}

export interface Check {
  dataset: string;
  partition: string;
  name: string;
  pass: boolean;
  detail: string;
  /** flex minus the baseline over paired seeds, where the check compares accuracies. */
  paired?: PairedDifference;
}

export const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

const uniq = <T>(xs: readonly T[]): T[] => [...new Set(xs)];
const pct = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(2) : "n/a");
const num = (x: number, d = 3): string => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const slug = (s: string): string =>
  s
    .replace(/[^a-z0-9]+/gi, "-")
    .replace(/^-|-$/g, "")
    .toLowerCase();

/** Mean ± the half-width of its 95% t-interval over seeds (the value alone for one seed). */
function pm(xs: readonly number[], fmt: (x: number) => string): string {
  if (xs.length === 0) return "—";
  const iv = interval(xs);
  return xs.length === 1 ? fmt(iv.mean) : `${fmt(iv.mean)} ± ${fmt(iv.half)}`;
}

/** Final accuracy per seed, for pairing runs of different strategies. */
const bySeed = (rows: readonly ResultRow[]): Map<number, number> => new Map(rows.map((r) => [r.seed, r.finalAccuracy]));

/** "+1.23 pt [0.40, 2.06]" for a paired accuracy difference. */
function fmtDiff(d: PairedDifference): string {
  const pt = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(2) : "n/a");
  const sign = d.mean > 0 ? "+" : "";
  return d.n < 2 ? `${sign}${pt(d.mean)} pt (1 seed)` : `${sign}${pt(d.mean)} pt [${pt(d.lo)}, ${pt(d.hi)}]`;
}

/** Mean per index over arrays of possibly different lengths; spread is the 95% half-width. */
function meanCurve(curves: readonly (readonly number[])[]): { values: number[]; spread: number[] } {
  const n = Math.max(0, ...curves.map((c) => c.length));
  const values: number[] = [];
  const spread: number[] = [];
  for (let i = 0; i < n; i++) {
    const xs = curves.map((c) => c[i]).filter((v): v is number => v !== undefined && Number.isFinite(v));
    const iv = interval(xs);
    values.push(iv.mean);
    spread.push(Number.isFinite(iv.half) ? iv.half : 0);
  }
  return { values, spread };
}

const strategyOrder = (s: string): number => {
  const i = (SIM_STRATEGIES as readonly string[]).indexOf(s);
  return i < 0 ? 99 : i;
};
const partitionOrder = (p: string): number => (p === "iid" ? 0 : p.startsWith("dirichlet") ? 1 : 2);
const byStrategy = (a: string, b: string): number => strategyOrder(a) - strategyOrder(b) || (a < b ? -1 : 1);
const byPartition = (a: string, b: string): number => partitionOrder(a) - partitionOrder(b) || (a < b ? -1 : 1);
const capOrder = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : 1);

/** The (capacity, fitness, feedback) setting with the most rows; "2"/"acc"/"pre" wins ties. */
export function mainSetting(rows: readonly ResultRow[]): { capacity: string; fitness: string; feedback: string } {
  const key = (r: Pick<ResultRow, "capacity" | "fitness" | "feedback">): string => `${r.capacity}|${r.fitness}|${r.feedback}`;
  const preferred = key({ capacity: "2", fitness: "acc", feedback: "pre" });
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(key(r), (counts.get(key(r)) ?? 0) + 1);
  let best = preferred;
  let bestN = -1;
  for (const [k, n] of counts) if (n > bestN || (n === bestN && k === preferred)) [best, bestN] = [k, n];
  const [capacity = "2", fitness = "acc", feedback = "pre"] = best.split("|");
  return { capacity, fitness, feedback };
}

/** Rows of one setting of the knobs that are not strategies (see {@link mainSetting}). */
const inSetting =
  (m: Partial<ReturnType<typeof mainSetting>>) =>
  (r: ResultRow): boolean =>
    (m.capacity === undefined || r.capacity === m.capacity) &&
    (m.fitness === undefined || r.fitness === m.fitness) &&
    (m.feedback === undefined || r.feedback === m.feedback);

/** The must-show comparisons on the non-IID partitions of the given rows (one setting). */
export function mustShowChecks(rows: readonly ResultRow[]): Check[] {
  const out: Check[] = [];
  for (const dataset of uniq(rows.map((r) => r.dataset)).sort()) {
    for (const partition of uniq(rows.filter((r) => r.dataset === dataset).map((r) => r.partition)).sort(byPartition)) {
      if (partition === "iid") continue;
      const of = (s: string): ResultRow[] => rows.filter((r) => r.dataset === dataset && r.partition === partition && r.strategy === s);
      const flex = of("flex");
      const greedy = of("greedy");
      const random = of("random");
      if (flex.length === 0) continue;
      const fa = mean(flex.map((r) => r.finalAccuracy));
      if (greedy.length > 0) {
        const fc = mean(flex.map((r) => r.cvHolders));
        const gc = mean(greedy.map((r) => r.cvHolders));
        const fs = mean(flex.map((r) => r.cvSamples));
        const gs = mean(greedy.map((r) => r.cvSamples));
        out.push({
          dataset,
          partition,
          name: "flex CV < greedy CV (holders per round)",
          pass: fc < gc,
          detail: `holders CV flex ${num(fc)} vs greedy ${num(gc)}; cumulative samples CV flex ${num(fs)} vs greedy ${num(gs)}`,
        });
        const ga = mean(greedy.map((r) => r.finalAccuracy));
        const paired = pairedDifference(bySeed(flex), bySeed(greedy));
        out.push({
          dataset,
          partition,
          name: "flex accuracy >= greedy - 1 point",
          pass: fa >= ga - 0.01,
          detail: `flex ${pct(fa)}% vs greedy ${pct(ga)}%; paired flex - greedy ${fmtDiff(paired)}`,
          paired,
        });
      }
      if (random.length > 0) {
        const ra = mean(random.map((r) => r.finalAccuracy));
        const paired = pairedDifference(bySeed(flex), bySeed(random));
        out.push({
          dataset,
          partition,
          name: "random accuracy < flex",
          pass: ra < fa,
          detail: `random ${pct(ra)}% vs flex ${pct(fa)}%; paired flex - random ${fmtDiff(paired)}`,
          paired,
        });
      }
    }
  }
  return out;
}

function mainTable(rows: readonly ResultRow[], dataset: string): string[] {
  const lines = [
    "| partition | strategy | final acc % | global-test acc % | acc % before last training | CV holders | CV samples (cum.) | MaxVio samples | starved (holders/round, samples) | MB per client | seeds |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  const ds = rows.filter((r) => r.dataset === dataset);
  for (const partition of uniq(ds.map((r) => r.partition)).sort(byPartition)) {
    for (const strategy of uniq(ds.filter((r) => r.partition === partition).map((r) => r.strategy)).sort(byStrategy)) {
      const g = ds.filter((r) => r.partition === partition && r.strategy === strategy);
      const col = (f: (r: ResultRow) => number, fmt: (x: number) => string): string => pm(g.map(f), fmt);
      lines.push(
        `| ${partition} | ${strategy} | ${col((r) => r.finalAccuracy, pct)} | ${col((r) => r.finalGlobalAccuracy, pct)} | ${col(
          (r) => r.accuracy[r.accuracy.length - 1] ?? NaN,
          pct,
        )} | ${col((r) => r.cvHolders, num)} | ${col((r) => r.cvSamples, num)} | ${col((r) => r.maxVioSamples, num)} | ${num(
          mean(g.map((r) => r.starvedHolders)),
          2,
        )}, ${num(mean(g.map((r) => r.starvedSamples)), 2)} | ${num(mean(g.map((r) => r.bytesPerClient)) / 1e6, 2)} | ${g.length} |`,
      );
    }
  }
  return lines;
}

/** flex minus every other strategy, paired by seed, per partition of one dataset. */
export function pairedTable(rows: readonly ResultRow[], dataset: string): string[] {
  const lines = [
    "| partition | flex − baseline | paired seeds | mean diff, 95% interval (pt) | flex better on | beyond seed noise? |",
    "|---|---|---|---|---|---|",
  ];
  const ds = rows.filter((r) => r.dataset === dataset);
  for (const partition of uniq(ds.map((r) => r.partition)).sort(byPartition)) {
    const of = (s: string): ResultRow[] => ds.filter((r) => r.partition === partition && r.strategy === s);
    const flex = of("flex");
    if (flex.length === 0) continue;
    for (const baseline of uniq(ds.filter((r) => r.partition === partition).map((r) => r.strategy)).sort(byStrategy)) {
      if (baseline === "flex") continue;
      const d = pairedDifference(bySeed(flex), bySeed(of(baseline)));
      if (d.n === 0) continue;
      const verdict = d.n < 2 ? "n/a (1 seed)" : d.beyondNoise ? (d.mean > 0 ? "**yes: flex better**" : "**yes: flex worse**") : "no";
      lines.push(`| ${partition} | flex − ${baseline} | ${d.n} | ${fmtDiff(d)} | ${d.wins}/${d.n} | ${verdict} |`);
    }
  }
  return lines.length > 2 ? lines : [];
}

function plotsFor(rows: readonly ResultRow[], dataset: string, partition: string, files: Map<string, string>): string[] {
  const g = rows.filter((r) => r.dataset === dataset && r.partition === partition);
  if (g.length === 0) return [];
  const strategies = uniq(g.map((r) => r.strategy)).sort(byStrategy);
  const base = `plots/${slug(dataset)}-${slug(partition)}`;
  const md: string[] = [];
  // A round with nothing measured (null) is a gap in the curve, not a zero.
  const curves = (f: (r: ResultRow) => readonly (number | null)[], scale = 1): Series[] =>
    strategies.map((s) => {
      const c = meanCurve(g.filter((r) => r.strategy === s).map((r) => f(r).map((v) => (v === null ? NaN : v * scale))));
      return { name: s, values: c.values, spread: c.spread };
    });

  files.set(
    `${base}-accuracy.svg`,
    lineChart({
      title: `${dataset}, ${partition}: personalized accuracy (before local training), mean ± 95% interval over seeds`,
      xLabel: "round",
      yLabel: "accuracy %",
      panels: [{ title: "", series: curves((r) => r.accuracy, 100) }],
      panelWidth: 640,
    }),
  );
  md.push(`![accuracy vs round](${base}-accuracy.svg)`);

  files.set(
    `${base}-cv.svg`,
    lineChart({
      title: `${dataset}, ${partition}: expert-load CV`,
      xLabel: "round",
      yLabel: "CV",
      panels: [
        { title: "holders per expert, per round", series: curves((r) => r.cvPerRound) },
        { title: "routed samples, cumulative", series: curves((r) => r.cvRoutedCumulativePerRound) },
      ],
      yMin: 0,
    }),
  );
  md.push(`![CV vs round](${base}-cv.svg)`);

  const pick = (s: string): ResultRow | undefined => g.filter((r) => r.strategy === s).sort((a, b) => a.seed - b.seed)[0];
  const fl = pick("flex");
  const gr = pick("greedy");
  if (fl && gr) {
    const loadPanel = (r: ResultRow) => {
      const E = r.cumulativeRouted.length;
      const series: Series[] = [];
      for (let e = 0; e < E; e++) {
        let acc = 0;
        series.push({ name: `expert ${e}`, values: r.routedPerRound.map((l) => (acc += l[e] ?? 0)) });
      }
      return { title: `${r.strategy} (seed ${r.seed})`, series };
    };
    files.set(
      `${base}-expert-load.svg`,
      lineChart({
        title: `${dataset}, ${partition}: cumulative samples routed per expert`,
        xLabel: "round",
        yLabel: "samples",
        panels: [loadPanel(fl), loadPanel(gr)],
        yMin: 0,
      }),
    );
    md.push(`![per-expert cumulative load, flex vs greedy](${base}-expert-load.svg)`);
  }

  const heat = strategies
    .filter((s) => s !== "dense")
    .map((s) => pick(s))
    .filter((r): r is ResultRow => r !== undefined)
    .map((r) => ({ title: `${r.strategy} (seed ${r.seed})`, matrix: r.lastAssignment }));
  if (heat.length > 0) {
    files.set(
      `${base}-assignment.svg`,
      heatmaps({
        title: `${dataset}, ${partition}: client x expert assignment, last round`,
        rowLabel: "client",
        colLabel: "expert",
        panels: heat,
      }),
    );
    md.push(`![assignment heat map, last round](${base}-assignment.svg)`);
  }

  // Q of one run per strategy that keeps one (dense has a single expert; rows from before finalQ have none).
  const qHeat = ["flex", "greedy"]
    .map((s) => pick(s))
    .filter((r): r is ResultRow & { finalQ: number[][] } => r?.finalQ !== undefined)
    .map((r) => ({ title: `${r.strategy} (seed ${r.seed})`, matrix: r.finalQ }));
  if (qHeat.length > 0) {
    files.set(
      `${base}-fitness.svg`,
      heatmaps({
        title: `${dataset}, ${partition}: fitness matrix Q (client x expert) after the last round`,
        rowLabel: "client",
        colLabel: "expert",
        panels: qHeat,
      }),
    );
    md.push(`![fitness matrix Q, last round](${base}-fitness.svg)`);
  }
  return md;
}

/**
 * The command that regenerates one cell (all its seeds): a row's own command with `--seed N`
 * replaced by `--seeds K` when the cell's seeds are exactly 0..K-1 (the only sets `--seeds` makes).
 * Undefined when the rows name no command or their commands differ in more than the seed.
 */
export function cellCommand(cell: readonly ResultRow[]): string | undefined {
  const commands = cell.map((r) => r.command);
  if (commands.length === 0 || commands.some((c) => c === undefined)) return undefined;
  const seedless = new Set(commands.map((c) => (c as string).replace(/ --seed \d+/, "")));
  if (seedless.size !== 1) return undefined;
  const seeds = cell.map((r) => r.seed).sort((a, b) => a - b);
  const base = [...seedless][0] as string;
  if (seeds.length === 1) return commands[0];
  return seeds.every((s, i) => s === i) ? base.replace(/^(npx flexmoe experiment)/, `$1 --seeds ${seeds.length}`) : undefined;
}

function commandsSection(rows: readonly ResultRow[]): string[] {
  const key = (r: ResultRow): string => [r.dataset, r.partition, r.strategy, `k=${r.capacity}`, r.fitness, r.feedback].join(" ");
  const cells = new Map<string, ResultRow[]>();
  for (const r of rows) cells.set(key(r), [...(cells.get(key(r)) ?? []), r]);
  const lines: string[] = [];
  for (const [k, cell] of [...cells.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const c = cellCommand(cell);
    if (c !== undefined) lines.push(`# ${k}`, c);
  }
  if (lines.length === 0) return [];
  return [
    "## Regenerating a row",
    "",
    "Each line regenerates one table row (all its seeds) with the same numbers at the commit named above; " +
      "every row of results.json also carries its own one-seed `command`.",
    "",
    "<details><summary>Commands, one per row</summary>",
    "",
    "```sh",
    ...lines,
    "```",
    "",
    "</details>",
    "",
  ];
}

function sweepTable(
  rows: readonly ResultRow[],
  key: (r: ResultRow) => string,
  keyName: string,
  order: (a: string, b: string) => number,
): string[] {
  const out: string[] = [];
  for (const dataset of uniq(rows.map((r) => r.dataset)).sort()) {
    for (const partition of uniq(rows.filter((r) => r.dataset === dataset).map((r) => r.partition)).sort(byPartition)) {
      const g = rows.filter((r) => r.dataset === dataset && r.partition === partition);
      const strategies = uniq(g.map((r) => r.strategy)).sort(byStrategy);
      out.push(`**${dataset}, ${partition}** — final accuracy % / CV holders / CV samples (seeds)`, "");
      out.push(`| ${keyName} | ${strategies.join(" | ")} |`, `|---|${strategies.map(() => "---").join("|")}|`);
      for (const k of uniq(g.map(key)).sort(order)) {
        const cells = strategies.map((s) => {
          const h = g.filter((r) => key(r) === k && r.strategy === s);
          if (h.length === 0) return "—";
          return `${pm(
            h.map((r) => r.finalAccuracy),
            pct,
          )} / ${num(mean(h.map((r) => r.cvHolders)))} / ${num(mean(h.map((r) => r.cvSamples)))} (${h.length})`;
        });
        out.push(`| ${k} | ${cells.join(" | ")} |`);
      }
      out.push("");
    }
  }
  return out;
}

/** Which commits the rows ran at, from their own provenance (rows from before it name none). */
export function provenanceLine(rows: readonly ResultRow[]): string {
  const commits = new Map<string, { runs: number; dirty: number }>();
  let unnamed = 0;
  for (const r of rows) {
    if (r.commit === undefined) {
      unnamed++;
      continue;
    }
    const c = commits.get(r.commit) ?? { runs: 0, dirty: 0 };
    commits.set(r.commit, { runs: c.runs + 1, dirty: c.dirty + (r.dirty ? 1 : 0) });
  }
  const named = [...commits.entries()].map(
    ([commit, c]) => `\`${commit.slice(0, 12)}\`${c.dirty > 0 ? ` (${c.dirty} of its ${c.runs} runs with uncommitted changes)` : ""}`,
  );
  const parts = [
    ...(named.length === 1 ? [`All runs at commit ${named[0]}.`] : named.length > 1 ? [`Runs at commits ${named.join(", ")}.`] : []),
    ...(unnamed > 0
      ? [`${unnamed} run${unnamed === 1 ? "" : "s"} ${unnamed === 1 ? "names" : "name"} no commit (from before rows recorded one).`]
      : []),
  ];
  return parts.join(" ");
}

export function renderReport(rows: readonly ResultRow[], meta: ReportMeta = {}): Report {
  const files = new Map<string, string>();
  const md: string[] = [`# ${meta.title ?? "FLEX-MoE Web: reproduction of the paper's comparisons"}`, ""];
  if (meta.note) md.push(meta.note.trim(), "");
  if (meta.generatedAt) md.push(`Generated ${meta.generatedAt} from ${rows.length} runs.`, "");
  const provenance = provenanceLine(rows);
  if (provenance) md.push(provenance, "");
  if (meta.commands && meta.commands.length > 0) {
    md.push("Produced by:", "", "```sh", ...meta.commands, "```", "");
  }
  if (meta.setup && meta.setup.length > 0) {
    md.push("## Setup", "", "| setting | value |", "|---|---|", ...meta.setup.map(([k, v]) => `| ${k} | ${v} |`), "");
  }
  if (rows.length === 0) {
    md.push("No results yet.");
    return { markdown: md.join("\n") + "\n", files };
  }
  const main = mainSetting(rows);
  const mainRows = rows.filter(inSetting(main));

  md.push(
    `## Main comparison (capacity k = ${main.capacity}, fitness ${main.fitness}, feedback ${main.feedback})`,
    "",
    "Accuracy is the personalized accuracy (each client's held-out split, sample-weighted over clients) after the last round, " +
      "mean ± the half-width of its 95% Student-t interval over seeds. *Global-test acc* is the mean over clients of each personalized model on a common test set. " +
      "*CV holders* is the mean over rounds of the CV of holders per expert; *CV samples* is the CV of the cumulative routed samples per expert " +
      "at the end. *Starved* counts experts with no holder (mean per round) and with no routed sample over the whole run. " +
      "MB per client: model bytes received + uploaded over the run (float32 wire frames).",
    "",
  );
  for (const dataset of uniq(mainRows.map((r) => r.dataset)).sort()) md.push(`### ${dataset}`, "", ...mainTable(mainRows, dataset), "");

  const paired = uniq(mainRows.map((r) => r.dataset))
    .sort()
    .flatMap((dataset) => {
      const t = pairedTable(mainRows, dataset);
      return t.length > 0 ? [`### ${dataset}`, "", ...t, ""] : [];
    });
  if (paired.length > 0) {
    md.push(
      "## Paired differences (final accuracy, flex minus each baseline)",
      "",
      "A seed fixes the data split, the initial weights and the clients' streams, so runs of one seed differ only in the " +
        "strategy. The difference of each pair is averaged over seeds with its 95% Student-t interval; it is beyond seed " +
        "noise when that interval excludes 0. Dense has its own initial weights (a different model), so its pairing only " +
        "shares the split.",
      "",
      ...paired,
    );
  }

  const checks = mustShowChecks(mainRows);
  if (checks.length > 0) {
    md.push(
      "## Must-show comparisons (non-IID partitions, means over seeds)",
      "",
      "| dataset | partition | check | holds on the means? | beyond seed noise? | numbers |",
      "|---|---|---|---|---|---|",
      ...checks.map(
        (c) =>
          `| ${c.dataset} | ${c.partition} | ${c.name} | ${c.pass ? "yes" : "**NO**"} | ${
            c.paired === undefined || c.paired.n < 2 ? "—" : c.paired.beyondNoise ? "yes" : "no"
          } | ${c.detail} |`,
      ),
      "",
    );
  }

  const caps = uniq(rows.map((r) => r.capacity));
  if (caps.length > 1) {
    md.push(
      `## Capacity sweep (fitness ${main.fitness}, feedback ${main.feedback})`,
      "",
      "Capacity `1,2,4` is a heterogeneous mix dealt cyclically over the clients.",
      "",
    );
    md.push(...sweepTable(rows.filter(inSetting({ fitness: main.fitness, feedback: main.feedback })), (r) => r.capacity, "k", capOrder));
  }
  const fits = uniq(rows.map((r) => r.fitness));
  if (fits.length > 1) {
    md.push(
      `## Fitness variants (capacity k = ${main.capacity}, feedback ${main.feedback})`,
      "",
      "acc: s = accuracy on the routed samples; loss: s = exp(-alpha_L * loss).",
      "",
    );
    md.push(
      ...sweepTable(
        rows.filter(inSetting({ capacity: main.capacity, feedback: main.feedback })),
        (r) => r.fitness,
        "fitness",
        (a, b) => (a < b ? -1 : 1),
      ),
    );
  }
  const feedbacks = uniq(rows.map((r) => r.feedback));
  if (feedbacks.length > 1) {
    md.push(
      `## Feedback modes (capacity k = ${main.capacity}, fitness ${main.fitness})`,
      "",
      "When each client measures the per-expert feedback (usage, accuracy, loss) it uploads: pre = the model it received, " +
        "before local training; during = the last local epoch's training batches; post = the trained model.",
      "",
    );
    const order = ["pre", "during", "post"];
    md.push(
      ...sweepTable(
        rows.filter(inSetting({ capacity: main.capacity, fitness: main.fitness })),
        (r) => r.feedback,
        "feedback",
        (a, b) => order.indexOf(a) - order.indexOf(b),
      ),
    );
  }

  md.push("## Plots (main setting)", "");
  for (const dataset of uniq(mainRows.map((r) => r.dataset)).sort()) {
    for (const partition of uniq(mainRows.filter((r) => r.dataset === dataset).map((r) => r.partition)).sort(byPartition)) {
      md.push(`### ${dataset}, ${partition}`, "", ...plotsFor(mainRows, dataset, partition, files), "");
    }
  }
  md.push(...commandsSection(rows));
  const secs = rows.reduce((s, r) => s + r.seconds, 0);
  md.push(`Total simulated run time: ${(secs / 60).toFixed(1)} min over ${rows.length} runs (sum over runs, not wall time).`, "");
  return { markdown: md.join("\n"), files };
}

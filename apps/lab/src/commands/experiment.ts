/**
 * `flexmoe experiment`: simulates the paper's comparisons in Node (same core and trainer as the
 * browser, WASM backend, dense backbone preset) and writes results.json, report.md and SVG plots.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { resolveConfig } from "@flexmoe/coordinator";
import { AGGREGATOR_NAMES, type FeedbackMode } from "@flexmoe/core";
import { PRESET_DEFAULTS } from "@flexmoe/model/spec";
import { intFlag, parseKnob, parseKnobList, UsageError, type KnobName, type KnobValue } from "../options.ts";
import { FASHION_MNIST_DIR } from "../data/fashion-mnist.ts";
import { loadSimData } from "../sim/data.ts";
import { renderReport } from "../sim/report.ts";
import { interval, pairedDifference } from "../sim/seed-stats.ts";
import { parseCapacity } from "../sim/capacity.ts";
import { gitProvenance, runCommand } from "../sim/provenance.ts";
import { DATASETS, SIM_STRATEGIES, type DatasetName, type ResultRow, type RunSpec, type SimStrategy } from "../sim/types.ts";

/** Defaults, chosen so the full grid fits in 60 min and --quick in 4 min on a 2-core machine (see docs/results/report.md). */
export const EXPERIMENT_DEFAULTS = {
  datasets: ["mnist", "fashion-mnist"] as DatasetName[],
  partitions: ["iid", "dirichlet:0.8", "classes:4"],
  strategies: [...SIM_STRATEGIES],
  clients: 20,
  experts: 8,
  capacity: "2",
  rounds: 16,
  localEpochs: 1,
  batchSize: 32,
  learningRate: 0.005,
  fitness: "acc" as const,
  /** The coordinator's default, as for clipping. */
  feedback: resolveConfig().training.feedback,
  alphaL: 1,
  beta: 0.5,
  q0: 1,
  slack: 0,
  seeds: 3,
  samplesPerClient: 200,
  globalTest: 1000,
  testFraction: 0.2,
  /** The coordinator's default, so simulations run what `flexmoe serve` runs. */
  clipFactor: resolveConfig().clipFactor,
  maxHold: resolveConfig().maxHold,
  zeroUsage: resolveConfig().zeroUsage,
  qDecay: resolveConfig().qDecay,
  balance: resolveConfig().training.balance,
  gateInit: resolveConfig().training.gateInit,
};

export const QUICK = {
  datasets: ["mnist"] as DatasetName[],
  partitions: ["classes:4"],
  strategies: ["flex", "greedy", "random", "roundrobin"] as SimStrategy[],
  seeds: 2,
};

const D = EXPERIMENT_DEFAULTS;

const FEEDBACK_WHEN: Record<FeedbackMode, string> = {
  pre: "pre: the received model, before local training",
  during: "during: the last local epoch's training batches",
  post: "post: the trained model, after local training",
};
const HELP = `usage: flexmoe experiment [options]
  --dataset <list>        mnist,fashion-mnist (default both; --quick: mnist)
  --partition <list>      iid,dirichlet:0.8,classes:4 (default all three; --quick: classes:4)
  --strategy <list>       ${SIM_STRATEGIES.join(",")} (default all; --quick: flex,greedy,random,roundrobin)
  --clients <n>           clients, all taking part every round (default ${D.clients})
  --experts <n>           experts E (default ${D.experts})
  --capacity <k|mix>      k per client, or a mix like 1,2,4 dealt cyclically; repeat the flag for a sweep (default ${D.capacity})
  --rounds <n>            (default ${D.rounds})
  --epochs <n>            local epochs per round (default ${D.localEpochs})
  --batch-size <n>        (default ${D.batchSize})
  --lr <x>                Adam learning rate (default ${D.learningRate})
  --fitness <list>        acc | loss | acc,loss (default ${D.fitness})
  --feedback <list>       when clients measure per-expert feedback: pre (received model), during (last
                          epoch's batches), post (trained model); a list compares them (default ${D.feedback}, as serve)
  --alpha-l <x>           loss fitness exp(-alpha_L loss) (default ${D.alphaL})
  --beta <x>              EMA rate of Q (default ${D.beta})
  --q0 <x>                initial Q (default ${D.q0})
  --slack <x>             load-bound slack delta (default ${D.slack})
  --seeds <n>             seeds 0..n-1 (default ${D.seeds}; --quick: 2)
  --seed <n>              only this seed (what a row's regenerating command uses)
  --samples-per-client <n> samples per client before the held-out split (default ${D.samplesPerClient})
  --global-test <n>       size of the common test set (default ${D.globalTest})
  --test-fraction <x>     held-out share of each client's shard (default ${D.testFraction})
  --preset <p>            dense | cnn: the model the clients train (default dense; cnn is what the page trains, slow in Node)
  --aggregator <a>        ${AGGREGATOR_NAMES.join(" | ")} (default mean)
  --trim <f>              trimmed mean's cut per end (default 0.2)
  --clip <norm>           clip each client's delta to this L2 norm, 0 = off (default 0)
  --clip-factor <x>       adaptive clipping: x times the round's lower-median delta norm, 0 = off (default ${D.clipFactor}, as serve)
  --max-hold <n>          rounds a client may hold one expert in a row, 0 = no limit (default ${D.maxHold}, as serve)
  --zero-usage <r>        keep | zero: Q of an assigned expert that got no routed sample (default ${D.zeroUsage}, as serve)
  --balance <x>           weight of a Switch-style balance term on each client's gate, 0 = off (default ${D.balance}, as serve)
  --gate-init <r>         keep | mean: gate columns of newly held experts (default ${D.gateInit}, as serve)
  --q-decay <x>           per round, unassigned experts' Q moves this fraction back to q0, 0 = off (default ${D.qDecay}, as serve)
  --workers <n>           parallel worker processes (default: CPU cores, at most 2)
  --fashion-dir <dir>     Fashion-MNIST IDX folder (default $FLEXMOE_FASHION_DIR or ${FASHION_MNIST_DIR})
  --out <dir>             output folder (default .flexmoe/experiments/<time>)
  --quick                 MNIST 4-class, flex/greedy/random/roundrobin, 2 seeds
  --report-only           do not simulate: rebuild report.md and plots from <out>/results.json
  --merge <dirs>          after a run: add these folders' rows to the report; with --report-only: build <out>
                          (results.json, report.md, plots) from these folders' rows only
  --title <text>          report title
  --note <file>           markdown file whose text goes under the report title (status, caveats)
`;

interface OutMeta {
  commands: string[];
  setup: [string, string][];
}

function list(v: string | undefined, fallback: readonly string[]): string[] {
  if (v === undefined) return [...fallback];
  return v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

const fmtTime = (s: number): string => {
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${s.toFixed(0)}s`;
};

function readRows(dir: string): { rows: ResultRow[]; meta: OutMeta | null } {
  const file = path.join(dir, "results.json");
  if (!existsSync(file)) throw new Error(`${file} not found`);
  const raw = JSON.parse(readFileSync(file, "utf8")) as (Omit<ResultRow, "feedback"> & Partial<Pick<ResultRow, "feedback">>)[];
  if (!Array.isArray(raw)) throw new Error(`${file}: expected an array of rows`);
  // Rows from before the feedback knob were measured after local training.
  const rows: ResultRow[] = raw.map((r) => ({ ...r, feedback: r.feedback ?? "post" }));
  const metaFile = path.join(dir, "meta.json");
  const meta = existsSync(metaFile) ? (JSON.parse(readFileSync(metaFile, "utf8")) as OutMeta) : null;
  return { rows, meta };
}

function writeReport(out: string, rows: ResultRow[], metas: OutMeta[], title: string | undefined, noteFile?: string): void {
  const commands = [...new Set(metas.flatMap((m) => m.commands))];
  const setup = metas[0]?.setup ?? [];
  const note = noteFile === undefined ? undefined : readFileSync(noteFile, "utf8");
  const report = renderReport(rows, {
    ...(title ? { title } : {}),
    ...(note ? { note } : {}),
    commands,
    setup,
    generatedAt: new Date().toISOString(),
  });
  for (const [rel, text] of report.files) {
    const file = path.join(out, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  writeFileSync(path.join(out, "report.md"), report.markdown);
}

export async function runExperiment(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dataset: { type: "string" },
        partition: { type: "string" },
        strategy: { type: "string" },
        clients: { type: "string" },
        experts: { type: "string" },
        capacity: { type: "string", multiple: true },
        rounds: { type: "string" },
        epochs: { type: "string" },
        "batch-size": { type: "string" },
        lr: { type: "string" },
        fitness: { type: "string" },
        feedback: { type: "string" },
        "alpha-l": { type: "string" },
        beta: { type: "string" },
        q0: { type: "string" },
        slack: { type: "string" },
        seeds: { type: "string" },
        seed: { type: "string" },
        "samples-per-client": { type: "string" },
        "global-test": { type: "string" },
        "test-fraction": { type: "string" },
        preset: { type: "string" },
        aggregator: { type: "string" },
        trim: { type: "string" },
        clip: { type: "string" },
        "clip-factor": { type: "string" },
        "max-hold": { type: "string" },
        "zero-usage": { type: "string" },
        "q-decay": { type: "string" },
        balance: { type: "string" },
        "gate-init": { type: "string" },
        workers: { type: "string" },
        "fashion-dir": { type: "string" },
        out: { type: "string" },
        quick: { type: "boolean", default: false },
        "report-only": { type: "boolean", default: false },
        merge: { type: "string" },
        title: { type: "string" },
        note: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`flexmoe experiment: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const out = path.resolve(values.out ?? path.join(".flexmoe", "experiments", new Date().toISOString().replace(/[:.]/g, "-")));
  const mergeDirs = list(values.merge, []).map((d) => path.resolve(d));

  try {
    if (values["report-only"]) {
      // With --merge, <out> receives the merged rows (its own results.json is replaced, so re-running never
      // double-counts); without, the report is rebuilt from <out>/results.json.
      const sources = mergeDirs.length > 0 ? mergeDirs : [out];
      const parts = sources.map(readRows);
      const rows = parts.flatMap((p) => p.rows);
      mkdirSync(out, { recursive: true });
      if (mergeDirs.length > 0) writeFileSync(path.join(out, "results.json"), JSON.stringify(rows));
      writeReport(
        out,
        rows,
        parts.flatMap((p) => (p.meta ? [p.meta] : [])),
        values.title,
        values.note,
      );
      console.log(`report of ${rows.length} rows written to ${path.join(out, "report.md")}`);
      return 0;
    }

    const quick = values.quick;
    const knob = <K extends KnobName>(k: K, fallback: KnobValue<K>): KnobValue<K> => {
      const raw = (values as Record<string, string | boolean | string[] | undefined>)[k];
      return typeof raw === "string" ? parseKnob(k, raw) : fallback;
    };
    const datasets = list(values.dataset, quick ? QUICK.datasets : D.datasets);
    for (const d of datasets)
      if (!(DATASETS as readonly string[]).includes(d)) throw new UsageError(`--dataset: unknown dataset '${d}' (${DATASETS.join(", ")})`);
    const partitions =
      values.partition === undefined ? (quick ? QUICK.partitions : D.partitions) : parseKnobList("partition", values.partition);
    const strategies = list(values.strategy, quick ? QUICK.strategies : D.strategies);
    for (const s of strategies)
      if (!(SIM_STRATEGIES as readonly string[]).includes(s))
        throw new UsageError(`--strategy: unknown strategy '${s}' (${SIM_STRATEGIES.join(", ")})`);
    const clients = intFlag("clients", values.clients, D.clients, 1, 10_000);
    const experts = knob("experts", D.experts);
    const capacities = values.capacity ?? [D.capacity];
    for (const c of capacities) {
      try {
        parseCapacity(c, clients, experts);
      } catch (e) {
        throw new UsageError(`--capacity: ${(e as Error).message}`);
      }
    }
    const fitnesses = values.fitness === undefined ? [D.fitness] : parseKnobList("fitness", values.fitness);
    const feedbacks = values.feedback === undefined ? [D.feedback] : parseKnobList("feedback", values.feedback);
    const seedCount = intFlag("seeds", values.seeds, quick ? QUICK.seeds : D.seeds, 1, 1000);
    if (values.seed !== undefined && values.seeds !== undefined) throw new UsageError("--seed and --seeds exclude each other");
    const seedList = values.seed !== undefined ? [parseKnob("seed", values.seed)] : Array.from({ length: seedCount }, (_, i) => i);
    const samplesPerClient = intFlag("samples-per-client", values["samples-per-client"], D.samplesPerClient, 2, 1_000_000);
    const globalTest = intFlag("global-test", values["global-test"], D.globalTest, 0, 100_000);
    const workers = intFlag("workers", values.workers, Math.max(1, Math.min(2, cpus().length)), 1, 64);
    const clip = knob("clip", 0);
    const common = {
      clients,
      experts,
      rounds: intFlag("rounds", values.rounds, D.rounds, 1, 100_000),
      localEpochs: knob("epochs", D.localEpochs),
      batchSize: knob("batch-size", D.batchSize),
      learningRate: knob("lr", D.learningRate),
      alphaL: knob("alpha-l", D.alphaL),
      beta: knob("beta", D.beta),
      q0: knob("q0", D.q0),
      slack: knob("slack", D.slack),
      testFraction: knob("test-fraction", D.testFraction),
      preset: knob("preset", "dense"),
      aggregation: {
        rule: knob("aggregator", "mean"),
        trim: knob("trim", 0.2),
        clipNorm: clip,
        clipFactor: knob("clip-factor", D.clipFactor),
      },
      maxHold: knob("max-hold", D.maxHold),
      zeroUsage: knob("zero-usage", D.zeroUsage),
      qDecay: knob("q-decay", D.qDecay),
      balance: knob("balance", D.balance),
      gateInit: knob("gate-init", D.gateInit),
    };

    const runs: RunSpec[] = [];
    for (const dataset of datasets as DatasetName[]) {
      const data = {
        dataset,
        clientSamples: samplesPerClient * clients,
        globalTest,
        ...(values["fashion-dir"] ? { fashionDir: values["fashion-dir"] } : {}),
      };
      // Fail fast (missing Fashion-MNIST files, too few samples) before any worker starts.
      loadSimData(data);
      for (const partition of partitions)
        for (const capacity of capacities)
          for (const fitness of fitnesses as ("acc" | "loss")[])
            for (const feedback of feedbacks)
              for (const seed of seedList)
                for (const strategy of strategies as SimStrategy[])
                  runs.push({ ...common, data, partition, strategy, seed, capacity, fitness, feedback });
    }

    mkdirSync(out, { recursive: true });
    const command = `npx flexmoe experiment ${argv.join(" ")}`.trim();
    const meta: OutMeta = {
      commands: [command],
      setup: [
        ["datasets", datasets.join(", ")],
        ["partitions", partitions.join(", ")],
        ["strategies", strategies.join(", ")],
        ["clients (all participate every round)", String(clients)],
        ["experts E", String(experts)],
        ["capacity k_c", capacities.join(" ; ")],
        ["rounds", String(common.rounds)],
        ["local epochs", String(common.localEpochs)],
        ["batch size", String(common.batchSize)],
        ["optimizer", `Adam, lr ${common.learningRate}, fresh each round`],
        ["fitness", `${fitnesses.join(", ")} (alpha_L ${common.alphaL}), EMA beta ${common.beta}, q0 ${common.q0}`],
        ["feedback measured", feedbacks.map((f) => FEEDBACK_WHEN[f]).join("; ")],
        ["load-bound slack", String(common.slack)],
        ["zero-usage rule", common.zeroUsage],
        ["Q decay to q0 (unassigned)", String(common.qDecay)],
        ["gate balance term", String(common.balance)],
        ["gate columns of new experts", common.gateInit],
        ["hold limit", common.maxHold > 0 ? `${common.maxHold} consecutive rounds per client and expert` : "none"],
        ["seeds", seedList.length === 1 ? String(seedList[0]) : `0..${seedList.length - 1}`],
        ["samples per client", `${samplesPerClient} (${Math.round(common.testFraction * 100)}% held out for the personalized accuracy)`],
        ["global test set", `${globalTest} samples`],
        [
          "model",
          common.preset === "dense"
            ? "dense preset: 784-128-64 backbone, 8 experts 64-32-10, E-wide per-client gate; TF.js WASM backend, single-threaded"
            : "cnn preset (what the page trains): conv 8-16-16 stem to 144 features, 8 experts 144-128-10, E-wide per-client gate; TF.js CPU backend in Node (WASM has no Conv2D gradient)",
        ],
        [
          "aggregation",
          `${common.aggregation.rule}${clip > 0 ? `, deltas clipped to L2 ${clip}` : ""}${
            common.aggregation.clipFactor > 0 ? `, adaptive clip ${common.aggregation.clipFactor} x lower-median delta norm` : ""
          }`,
        ],
        [
          "dense baseline",
          `same backbone, one head of width ${PRESET_DEFAULTS[common.preset].expertHidden} x mean k (about the active parameters of k experts), trivial 1-expert gate: FedAvg`,
        ],
        ["full baseline", "every client holds all E experts (capacity violated), upper reference"],
        ["workers", String(workers)],
      ],
    };
    writeFileSync(path.join(out, "meta.json"), JSON.stringify(meta, null, 2));

    console.log(`flexmoe experiment: ${runs.length} runs on ${workers} worker(s) -> ${out}`);
    const units = runs.map((r) => r.rounds * r.clients);
    const totalUnits = units.reduce((a, b) => a + b, 0);
    const doneUnits = new Array<number>(runs.length).fill(0);
    const rows: (ResultRow | undefined)[] = new Array<ResultRow | undefined>(runs.length);
    let finished = 0;
    const t0 = performance.now();
    const tty = process.stderr.isTTY === true;
    let lastLine = "";
    let lastPrint = 0;
    const draw = (label: string, force = false): void => {
      const now = performance.now();
      if (!force && now - lastPrint < (tty ? 200 : 30_000)) return;
      lastPrint = now;
      const done = doneUnits.reduce((a, b) => a + b, 0);
      const frac = totalUnits > 0 ? done / totalUnits : 1;
      const el = (now - t0) / 1000;
      const eta = frac > 0.01 ? el / frac - el : NaN;
      const width = 28;
      const bar = "#".repeat(Math.round(frac * width)).padEnd(width, "-");
      const line = `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${finished}/${runs.length} runs  ${fmtTime(el)} elapsed${
        Number.isFinite(eta) ? `, ~${fmtTime(eta)} left` : ""
      }  ${label}`;
      if (tty) {
        process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1).padEnd(lastLine.length)}`);
        lastLine = line;
      } else process.stderr.write(`${line}\n`);
    };
    const describe = (r: RunSpec): string =>
      `${r.data.dataset} ${r.partition} k=${r.capacity} ${r.fitness} ${r.feedback ?? D.feedback} ${r.strategy} s${r.seed}`;
    const completed = (): ResultRow[] => rows.filter((r): r is ResultRow => r !== undefined);

    // Loaded here so --report-only needs neither TensorFlow.js nor the solvers.
    const { runAll } = await import("../sim/pool.ts");
    const prov = gitProvenance();
    if (prov.dirty) console.error("flexmoe experiment: the working tree has uncommitted changes; rows are marked dirty");
    await runAll(runs, workers, {
      onProgress: (job, p) => {
        doneUnits[job] = (p.round - 1) * p.clients + p.client;
        const r = runs[job] as RunSpec;
        draw(`${describe(r)} round ${p.round}/${p.rounds}`);
      },
      onRow: (job, row) => {
        const run = runs[job] as RunSpec;
        rows[job] = { ...row, commit: prov.commit, dirty: prov.dirty, command: runCommand(run), config: run };
        finished++;
        doneUnits[job] = units[job] ?? 0;
        // Written after every run, so an interrupted grid still leaves its results.
        writeFileSync(path.join(out, "results.json"), JSON.stringify(completed()));
        draw(
          `done ${describe(runs[job] as RunSpec)}: acc ${(row.finalAccuracy * 100).toFixed(1)}% cv ${row.cvHolders.toFixed(3)} (${row.seconds.toFixed(0)}s)`,
          true,
        );
      },
    });
    if (tty) process.stderr.write("\n");
    const wall = (performance.now() - t0) / 1000;
    meta.setup.push(["wall time", `${fmtTime(wall)} for ${runs.length} runs`]);
    writeFileSync(path.join(out, "meta.json"), JSON.stringify(meta, null, 2));

    const merged = mergeDirs.map(readRows);
    const allRows = [...completed(), ...merged.flatMap((m) => m.rows)];
    writeReport(out, allRows, [meta, ...merged.flatMap((m) => (m.meta ? [m.meta] : []))], values.title, values.note);
    console.log(`\n${runs.length} runs in ${fmtTime(wall)}. Wrote ${path.join(out, "results.json")}, report.md and plots/.`);
    printSummary(completed());
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`flexmoe experiment: ${e.message}\n${HELP}`);
      return 2;
    }
    console.error(`flexmoe experiment: ${(e as Error).message}`);
    return 1;
  }
}

/** Per cell: mean final accuracy with its 95% interval over seeds, then flex minus each baseline, paired by seed. */
function printSummary(rows: readonly ResultRow[]): void {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const k = `${r.dataset} ${r.partition} k=${r.capacity} ${r.fitness} ${r.feedback}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const pt = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(2) : "n/a");
  for (const [k, g] of groups) {
    console.log(`\n${k}`);
    const strategies = [...new Set(g.map((r) => r.strategy))];
    const of = (s: string): ResultRow[] => g.filter((r) => r.strategy === s);
    for (const s of strategies) {
      const h = of(s);
      const acc = interval(h.map((r) => r.finalAccuracy));
      const cv = interval(h.map((r) => r.cvHolders));
      console.log(
        `  ${s.padEnd(11)} acc ${pt(acc.mean)}%${h.length > 1 ? ` ± ${pt(acc.half)}` : ""}  cvHolders ${cv.mean.toFixed(3)}  (${h.length} seed${
          h.length > 1 ? "s" : ""
        })`,
      );
    }
    const bySeed = (h: readonly ResultRow[]): Map<number, number> => new Map(h.map((r) => [r.seed, r.finalAccuracy]));
    for (const s of strategies) {
      if (s === "flex" || of("flex").length === 0) continue;
      const d = pairedDifference(bySeed(of("flex")), bySeed(of(s)));
      if (d.n < 2) continue;
      console.log(
        `  flex - ${s.padEnd(10)} ${d.mean > 0 ? "+" : ""}${pt(d.mean)} pt [${pt(d.lo)}, ${pt(d.hi)}] over ${d.n} paired seeds, flex better on ${d.wins}: ${
          d.beyondNoise ? "beyond seed noise" : "within seed noise"
        }`,
      );
    }
  }
}

/**
 * `flexmoe bench`: speed claims as ratios measured side by side in one run (absolute times are context).
 * Progress goes to stderr, the table (or with --json the JSON object) to stdout.
 */
import { writeFile } from "node:fs/promises";
import os from "node:os";
import { parseArgs } from "node:util";
import { benchAggregation, type AggregationResult } from "../bench/aggregation.ts";
import { benchBrowser, BROWSER_BACKENDS, type BrowserRow } from "../bench/browser.ts";
import { benchBundle, type BundleResult } from "../bench/bundle.ts";
import type { BenchContext } from "../bench/common.ts";
import { benchCluster, type ClusterResult } from "../bench/cluster.ts";
import { benchCoordinator, type CoordinatorResult } from "../bench/coordinator.ts";
import { benchProbe, type ProbeResult } from "../bench/probe.ts";
import { benchSim, type SimResult } from "../bench/sim.ts";
import { benchSolver, type SolverRow } from "../bench/solver.ts";
import { formatBytes, formatTable } from "../bench/stats.ts";
import { benchWire, type WireResult } from "../bench/wire.ts";

const SECTIONS = ["solver", "aggregation", "wire", "browser", "probe", "coordinator", "cluster", "bundle", "sim"] as const;
type Section = (typeof SECTIONS)[number];

const HELP = `usage: flexmoe bench [options]
  --quick               smaller instances and fewer repetitions (about 3 minutes)
  --json                print one JSON object on stdout instead of tables
  --only <list>         comma-separated subset of: ${SECTIONS.join(", ")}
  --backends <list>     browser backends (default ${BROWSER_BACKENDS.join(",")})
  --out <file>          also write the JSON object to this file
  -h, --help
`;

export interface BenchReport {
  quick: boolean;
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; cpuModel: string; memoryBytes: number; node: string; platform: string };
  solver?: SolverRow[];
  aggregation?: AggregationResult;
  wire?: WireResult["rows"];
  wireCodec?: WireResult["codec"];
  browser?: BrowserRow[];
  /** The built page's own backend choice (needs `npm run build`). */
  probe?: ProbeResult;
  coordinator?: CoordinatorResult;
  cluster?: ClusterResult;
  /** The simulator's training samples per second against the trainer's own. */
  sim?: SimResult;
  bundle?: BundleResult;
  errors: { section: Section; message: string }[];
}

export async function runBench(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        only: { type: "string" },
        backends: { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`flexmoe bench: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const only = values.only
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean) ?? [...SECTIONS];
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0) {
    console.error(`flexmoe bench: unknown section(s) ${unknown.join(", ")}\n${HELP}`);
    return 2;
  }
  const backends = values.backends
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean) ?? [...BROWSER_BACKENDS];
  const t0 = performance.now();
  const ctx: BenchContext = {
    quick: values.quick,
    progress: (msg) => console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`),
  };
  const cpus = os.cpus();
  const report: BenchReport = {
    quick: values.quick,
    startedAt: new Date().toISOString(),
    durationMs: 0,
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? "?",
      memoryBytes: os.totalmem(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    errors: [],
  };
  const run = async (section: Section, f: () => Promise<void> | void): Promise<void> => {
    if (!only.includes(section)) return;
    try {
      await f();
    } catch (e) {
      ctx.progress(`${section} failed: ${(e as Error).message}`);
      report.errors.push({ section, message: (e as Error).message });
    }
  };
  // The pure-JS kernels first: after the solver's 100,000 x 64 instances the heap is large and the same
  // aggregation loop ran at 0.31 instead of 0.51 of the copy rate (one run each, 2026-11-26).
  await run("aggregation", () => void (report.aggregation = benchAggregation(ctx)));
  await run("wire", () => {
    const w = benchWire(ctx);
    report.wire = w.rows;
    report.wireCodec = w.codec;
  });
  await run("solver", async () => void (report.solver = await benchSolver(ctx)));
  await run("browser", async () => void (report.browser = await benchBrowser(ctx, backends)));
  await run("probe", async () => void (report.probe = await benchProbe(ctx)));
  await run("coordinator", async () => void (report.coordinator = await benchCoordinator(ctx)));
  await run("cluster", async () => void (report.cluster = await benchCluster(ctx)));
  await run("bundle", async () => void (report.bundle = await benchBundle(ctx)));
  await run("sim", async () => void (report.sim = await benchSim(ctx)));
  report.durationMs = Math.round(performance.now() - t0);
  ctx.progress(`done in ${(report.durationMs / 1000).toFixed(1)} s`);

  const json = JSON.stringify(report, null, 2);
  if (values.out) await writeFile(values.out, `${json}\n`);
  console.log(values.json ? json : formatReport(report));
  return report.errors.length > 0 ? 1 : 0;
}

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? "-" : `${(x * 100).toFixed(1)}%`);
const rate = (x: number | null | undefined): string => (x === null || x === undefined ? "-" : `${formatBytes(x)}/s`);

/** Human-readable tables of a report. */
export function formatReport(r: BenchReport): string {
  const out: string[] = [
    `flexmoe bench${r.quick ? " --quick" : ""}: ${r.machine.cpus} x ${r.machine.cpuModel}, node ${r.machine.node}, ${(r.durationMs / 1000).toFixed(0)} s`,
  ];
  if (r.solver) {
    out.push(
      "\nAssignment solver (median ms; ratio = flex / greedy; gap vs HiGHS where run, else exchange-graph certificate)",
      formatTable(
        ["clients", "experts", "flex ms", "greedy ms", "flex/greedy", "HiGHS ms", "HiGHS/flex", "gap", "certified", "feasible"],
        r.solver.map((s) => [
          s.clients,
          s.experts,
          s.flexMs,
          s.greedyMs,
          s.ratio,
          s.highsMs,
          s.highsOverFlex,
          s.gap,
          s.certified,
          s.feasible,
        ]),
      ),
    );
  }
  if (r.aggregation) {
    const a = r.aggregation;
    out.push(
      `\nAggregation (${a.clients} clients, ${a.preset}, k=${a.capacity} of ${a.experts}, ${formatBytes(a.updateBytes)} of updates)`,
      formatTable(
        ["aggregate", "memory copy", "ratio", "input-outer reference ratio"],
        [[rate(a.bytesPerSec), rate(a.copyBytesPerSec), a.ratio, a.referenceRatio]],
      ),
    );
  }
  if (r.wire) {
    const target = r.wire.find((w) => w.experts === 8 && w.capacity === 2 && w.dtype === "float32");
    out.push(
      "\nWire per client per round, cnn preset (download = upload = backbone + k experts; the gate stays on the page;" +
        " full model = backbone + all E experts, float32)",
      formatTable(
        ["experts", "k", "dtype", "download", "upload", "full model", "download of full"],
        r.wire.map((w) => [
          w.experts,
          w.capacity,
          w.dtype,
          formatBytes(w.downloadBytes),
          formatBytes(w.uploadBytes),
          formatBytes(w.fullModelBytes),
          pct(w.downloadFraction),
        ]),
      ),
      ...(target
        ? [`k = 2 of 8, float32: a page downloads ${pct(target.downloadFraction)} of the full float32 model (target: at most 35%)`]
        : []),
    );
  }
  if (r.wireCodec) {
    out.push(
      formatTable(
        ["dtype", "encode ms/MB", "decode ms/MB"],
        r.wireCodec.map((c) => [c.dtype, c.encodeMsPerMB, c.decodeMsPerMB]),
      ),
    );
  }
  if (r.browser) {
    out.push(
      "\nBrowser training, headless Chromium (samples/s; ratio = MoE local round / dense model.fit)",
      formatTable(
        ["backend", "preset", "MoE", "dense", "ratio", "tensors r1", "tensors r3", "note"],
        r.browser.map((b) => [
          b.backend,
          b.preset,
          b.moeSamplesPerSec,
          b.denseSamplesPerSec,
          b.ratio,
          b.tensorsAfter1,
          b.tensorsAfter3,
          b.error ?? "",
        ]),
      ),
    );
  }
  if (r.probe) {
    out.push(
      `\nBackend choice of the volunteer's page (built page, fresh profile, SwiftShader WebGL and WebGPU): ${r.probe.backend} after ${r.probe.decidedMs} ms`,
      `  ${r.probe.reason}`,
    );
  }
  if (r.coordinator) {
    const c = r.coordinator;
    out.push(
      `\nCoordinator capacity (loopback; held through full rounds: ${c.clients} clients; +${c.addedRoundMsPer1000 ?? "-"} ms round latency per 1,000 clients; ${c.rssBytesPerExpert === null ? "" : `${formatBytes(c.rssBytesPerExpert)} per expert`})`,
      formatTable(
        [
          "clients",
          "experts",
          "aggregation",
          "ok",
          "rounds",
          "round ms",
          "close ms",
          "apply ms",
          "join ms",
          "idle RSS",
          "peak RSS",
          "RSS/client",
          "CPU ms/client/round",
          "note",
        ],
        c.levels.map((l) => [
          l.clients,
          l.experts,
          l.streamed ? "streamed mean" : "held (adaptive clip)",
          l.ok,
          l.rounds,
          l.roundMs,
          l.closeMs,
          l.applyMs,
          l.joinMs === null ? null : Math.round(l.joinMs),
          l.rssIdleBytes === null ? null : formatBytes(l.rssIdleBytes),
          l.peakRssBytes === null ? null : formatBytes(l.peakRssBytes),
          l.rssBytesPerClient === null ? null : formatBytes(l.rssBytesPerClient),
          l.cpuMsPerClientRound,
          l.error ?? "",
        ]),
      ),
    );
    out.push(
      `round close at ${c.closeGrowth.counts[1]} clients / at ${c.closeGrowth.counts[0]} (last update sent to round:closed seen): held ${c.closeGrowth.held ?? "-"}, streamed ${c.closeGrowth.streamed ?? "-"}; the coordinator's own close (apply ms): held ${c.applyGrowth.held ?? "-"}, streamed ${c.applyGrowth.streamed ?? "-"} (flat in clients = 1)`,
    );
    const prof = [...c.levels].reverse().find((l) => l.ok && l.profile !== null && !l.streamed);
    if (prof?.profile) {
      out.push(
        `\nWhere the coordinator's CPU went at ${prof.clients} clients (sampled self time over the rounds, ${Math.round(prof.profile.busyMs)} ms busy)`,
        formatTable(
          ["part", "ms", "share"],
          prof.profile.parts.map((p) => [p.part, p.ms, `${(100 * p.share).toFixed(1)}%`]),
        ),
        formatTable(
          ["function (self time)", "ms", "share"],
          prof.profile.top.map((p) => [p.part, p.ms, `${(100 * p.share).toFixed(1)}%`]),
        ),
      );
    }
  }
  if (r.cluster) {
    const c = r.cluster;
    out.push(
      `\nCluster (loopback, real redis-server; ${c.preset}, ${c.experts} experts; round latency 3 edges / 1 edge: ${c.latency3over1 ?? "-"}; ${c.note})`,
      formatTable(
        [
          "edges",
          "clients",
          "ok",
          "rounds",
          "round ms",
          "leader ingress",
          "client uploads",
          "ingress ratio",
          "RSS/client per edge",
          "note",
        ],
        c.levels.map((l) => [
          l.edges,
          l.clients,
          l.ok,
          l.rounds,
          l.roundMs,
          l.leaderIngressBytes === null ? null : formatBytes(l.leaderIngressBytes),
          l.clientUploadBytes === null ? null : formatBytes(l.clientUploadBytes),
          l.ingressRatio,
          l.rssBytesPerClientPerEdge.map((b) => (b === null ? "-" : formatBytes(b))).join(" / "),
          l.error ?? "",
        ]),
      ),
    );
  }
  if (r.bundle) {
    const b = r.bundle;
    const kb = (n: number): string => `${(n / 1000).toFixed(1)} kB`;
    out.push(
      `\nPage bundle (gzip -9; the page's JS before TF.js: ${kb(b.pageInitialGzipBytes)} of a ${kb(b.budgetBytes)} budget${b.withinBudget ? "" : ", OVER"})`,
      formatTable(
        ["entry", "initial JS gzip", "initial JS raw", "lazy JS gzip"],
        b.entries.map((e) => [e.name, kb(e.initialJs.gzipBytes), kb(e.initialJs.bytes), kb(e.lazyJs.gzipBytes)]),
      ),
      formatTable(
        ["file", "kind", "gzip", "raw", "initial for"],
        b.files.map((f) => [f.file, f.kind, kb(f.gzipBytes), kb(f.bytes), f.initialFor.join(", ") || "-"]),
      ),
    );
  }
  if (r.sim) {
    const m = r.sim;
    out.push(
      `\nSimulator (${m.preset} preset, WASM, ${m.clients} clients x ${m.rounds} rounds, ${m.epochs} local epoch; ratio = simulated / MoeTrainer.train alone)`,
      formatTable(["simulated samples/s", "trainer samples/s", "ratio"], [[m.simSamplesPerSec, m.trainerSamplesPerSec, m.ratio]]),
    );
  }
  for (const e of r.errors) out.push(`\n${e.section} FAILED: ${e.message}`);
  return out.join("\n");
}

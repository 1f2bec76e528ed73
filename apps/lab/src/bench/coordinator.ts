/**
 * Coordinator capacity bench, loopback only: a real `flexmoe serve` in its own process (so its memory is
 * its own), and a few worker processes each holding many protocol clients (./coordinator-worker.ts) that
 * join and answer full rounds with synthetic updates. Per client count: whether all rounds completed
 * with every client, the round latency (first round:started seen by any client to the first
 * round:closed), the coordinator's RSS (/proc/<pid>/status) idle, after joins and at peak, and its own
 * CPU time over the rounds (/proc/<pid>/stat) with where it went (V8's sampling profiler, --cpu-prof).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "./common.ts";
import { cpuBreakdown, parseProcStatCpuMs, type CpuBreakdown, type CpuProfile } from "./cpu-profile.ts";
import type { WorkerMessage } from "./coordinator-worker.ts";
import { median, parseProcStatus, sig, slope } from "./stats.ts";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../../../..");
export const BIN = path.join(ROOT, "apps/lab/bin/flexmoe.mjs");
export const CLIENTS_PER_WORKER = 500;

export interface CoordinatorLevel {
  clients: number;
  experts: number;
  /**
   * The mean without adaptive clipping (`--clip-factor 0`): updates are folded in as they arrive and
   * not held. Otherwise the default (adaptive clipping), which holds every update until the close.
   */
  streamed: boolean;
  /** All rounds closed with every client participating, within the time limit. */
  ok: boolean;
  error?: string;
  rounds: number;
  /** Median round latency, ms. */
  roundMs: number | null;
  roundMsAll: number[];
  /**
   * Median round-close time, ms: the last client's update emitted to the first round:closed seen (the last
   * upload in flight, its checks, aggregation, the engine's apply and the broadcast).
   */
  closeMs: number | null;
  closeMsAll: number[];
  /** Median of the coordinator's own close (aggregation and the engine's apply), from its log, ms. */
  applyMs: number | null;
  joinMs: number | null;
  rssIdleBytes: number | null;
  rssJoinedBytes: number | null;
  peakRssBytes: number | null;
  /** (peak RSS - idle RSS) / clients. */
  rssBytesPerClient: number | null;
  /** The coordinator's user + system CPU time from all joined to the last round closed, ms. */
  cpuMsRounds: number | null;
  /** cpuMsRounds / clients / rounds. */
  cpuMsPerClientRound: number | null;
  /** Where that CPU time went (sampled, same window). */
  profile: CpuBreakdown | null;
}

export interface CoordinatorResult {
  preset: "cnn";
  levels: CoordinatorLevel[];
  /** Largest client count that completed every round with every client. */
  clients: number;
  /** Median round latency at that count. */
  roundMs: number | null;
  /** Peak RSS per client at that count. */
  rssBytesPerClient: number | null;
  /** Least-squares slope of round latency vs clients, per 1,000 clients (ms). */
  addedRoundMsPer1000: number | null;
  /** Slope of peak RSS vs clients (bytes per client), over the 8-expert levels. */
  rssSlopeBytesPerClient: number | null;
  /** Peak-RSS difference per added expert between two expert counts at the same clients (full run only). */
  rssBytesPerExpert: number | null;
  /** The coordinator's CPU ms per client per round at the largest count that completed. */
  cpuMsPerClientRound: number | null;
  /**
   * Round-close time at the largest count over the smallest, held (default) and streamed (the mean
   * folded on arrival): flat in clients is 1.
   */
  closeGrowth: { held: number | null; streamed: number | null; counts: [number, number] };
  /** The same for the coordinator's own close (applyMs). */
  applyGrowth: { held: number | null; streamed: number | null };
}

let ticks: number | undefined;
/** Clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK; 100 on Linux when it cannot be asked). */
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

async function procCpuMs(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    return parseProcStatCpuMs(await readFile(`/proc/${pid}/stat`, "utf8"), clockTicks());
  } catch {
    return null;
  }
}

/** The same clock as V8's profile timestamps (CLOCK_MONOTONIC, microseconds). */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

export async function procMem(pid: number | undefined): Promise<{ hwmBytes: number | null; rssBytes: number | null }> {
  if (pid === undefined) return { hwmBytes: null, rssBytes: null };
  try {
    return parseProcStatus(await readFile(`/proc/${pid}/status`, "utf8"));
  } catch {
    return { hwmBytes: null, rssBytes: null };
  }
}

export function stopChild(p: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const kill = setTimeout(() => p.kill("SIGKILL"), 5_000);
    p.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    p.kill(signal);
  });
}

export async function startCoordinator(
  args: string[],
  dataDir: string,
  nodeArgs: string[] = [],
): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  const proc = spawn(
    process.execPath,
    // Every bench client comes from 127.0.0.1: lift the per-address limits a classroom default sets.
    [
      ...nodeArgs,
      BIN,
      "serve",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--data-dir",
      dataDir,
      "--log-level",
      "warn",
      "--max-conn-per-ip",
      "1000000",
      "--join-burst-per-ip",
      "1000000",
      "--join-rate-per-ip",
      "1000000",
      ...args,
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`coordinator did not start in 60 s:\n${out.slice(-2000)}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /http:\/\/localhost:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(deadline);
        resolve(`http://127.0.0.1:${m[1]}/`);
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    proc.once("exit", (code) => {
      clearTimeout(deadline);
      reject(new Error(`coordinator exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
  // Keep draining its output so a full pipe never blocks it.
  proc.stdout?.resume();
  proc.stderr?.resume();
  return { proc, url, output: () => out };
}

/** The one profile the coordinator wrote, reduced to the rounds' window; null when it wrote none. */
async function readProfile(dir: string, w: { from: number; to: number }): Promise<CpuBreakdown | null> {
  try {
    const files = (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile"));
    if (files.length === 0 || !(w.to > w.from)) return null;
    const p = JSON.parse(await readFile(path.join(dir, files[0] as string), "utf8")) as CpuProfile;
    const b = cpuBreakdown(p, w.from, w.to);
    const round = (x: CpuBreakdown["parts"]) => x.map((s) => ({ part: s.part, ms: sig(s.ms), share: sig(s.share, 3) }));
    return { busyMs: sig(b.busyMs), parts: round(b.parts), top: round(b.top) };
  } catch {
    return null;
  }
}

async function runLevel(
  ctx: BenchContext,
  clients: number,
  experts: number,
  rounds: number,
  limitMs: number,
  streamed = false,
): Promise<CoordinatorLevel> {
  const level: CoordinatorLevel = {
    clients,
    experts,
    streamed,
    ok: false,
    rounds: 0,
    roundMs: null,
    roundMsAll: [],
    closeMs: null,
    closeMsAll: [],
    applyMs: null,
    joinMs: null,
    rssIdleBytes: null,
    rssJoinedBytes: null,
    peakRssBytes: null,
    rssBytesPerClient: null,
    cpuMsRounds: null,
    cpuMsPerClientRound: null,
    profile: null,
  };
  const dataDir = await mkdtemp(path.join(tmpdir(), "flexmoe-bench-coord-"));
  // The rounds' window on the profile's clock; NaN (no samples) when the rounds never ran.
  const profWindow = { from: NaN, to: NaN };
  const workers: ChildProcess[] = [];
  let coord: ChildProcess | undefined;
  let output: () => string = () => "";
  try {
    const started = await startCoordinator(
      [
        "--preset",
        "cnn",
        "--experts",
        String(experts),
        "--min-clients",
        String(clients),
        "--rounds",
        String(rounds),
        "--gather-ms",
        "1000",
        "--round-timeout",
        String(Math.ceil(limitMs / 1000)),
        "--shards",
        "16",
        "--max-samples",
        "200",
        ...(streamed ? ["--clip-factor", "0"] : []),
        // Info level for the "round closed" lines (their applyMs); joins log a line each, drained.
        "--log-level",
        "info",
      ],
      dataDir,
      // A 1 ms sampling profile, written when the process exits (SIGTERM: graceful shutdown).
      ["--cpu-prof", "--cpu-prof-dir", path.join(dataDir, "prof"), "--cpu-prof-interval", "1000"],
    );
    coord = started.proc;
    output = started.output;
    const pid = coord.pid;
    await new Promise((r) => setTimeout(r, 500));
    level.rssIdleBytes = (await procMem(pid)).rssBytes;

    const nWorkers = Math.max(1, Math.ceil(clients / CLIENTS_PER_WORKER));
    const startT = new Map<number, number>();
    const closeT = new Map<number, { t: number; participants: number }>();
    // Per round: how many workers reported it closed, and the latest update any of them emitted.
    const sentT = new Map<number, { reports: number; last: number }>();
    const errors: string[] = [];
    let joined = 0;
    let joinedAll: () => void = () => undefined;
    const allJoined = new Promise<void>((r) => (joinedAll = r));
    let roundsDone: () => void = () => undefined;
    const allRounds = new Promise<void>((r) => (roundsDone = r));
    for (let w = 0; w < nWorkers; w++) {
      const first = Math.floor((w * clients) / nWorkers);
      const count = Math.floor(((w + 1) * clients) / nWorkers) - first;
      const p = spawn(
        process.execPath,
        ["--import", "tsx", path.join(HERE, "coordinator-worker.ts"), started.url, String(count), String(first)],
        {
          cwd: ROOT,
          stdio: ["ignore", "ignore", "pipe", "ipc"],
        },
      );
      p.stderr?.resume();
      workers.push(p);
      p.on("message", (raw) => {
        const m = raw as WorkerMessage;
        if (m.type === "joined") {
          joined += m.count;
          level.joinMs = Math.max(level.joinMs ?? 0, m.ms);
          if (joined === clients) joinedAll();
        } else if (m.type === "started") {
          startT.set(m.round, Math.min(startT.get(m.round) ?? Infinity, m.t));
        } else if (m.type === "closed") {
          const prev = closeT.get(m.round);
          if (!prev || m.t < prev.t) closeT.set(m.round, { t: m.t, participants: m.participants });
          const sent = sentT.get(m.round) ?? { reports: 0, last: -Infinity };
          sentT.set(m.round, { reports: sent.reports + 1, last: Math.max(sent.last, m.lastSent ?? -Infinity) });
          if (closeT.size >= rounds) roundsDone();
        } else if (errors.length < 5) {
          errors.push(m.message);
        }
      });
    }
    let cpu0: number | null = null;
    const deadline = (): Promise<"timeout"> => new Promise((r) => setTimeout(() => r("timeout"), limitMs).unref());
    const stopPoll = setInterval(() => {
      void procMem(pid).then((m) => {
        if (m.hwmBytes !== null) level.peakRssBytes = Math.max(level.peakRssBytes ?? 0, m.hwmBytes);
      });
    }, 250);
    try {
      if ((await Promise.race([allJoined, deadline()])) === "timeout")
        throw new Error(`only ${joined} of ${clients} clients joined in ${limitMs / 1000} s (${errors.join("; ")})`);
      level.rssJoinedBytes = (await procMem(pid)).rssBytes;
      profWindow.from = monoUs();
      cpu0 = await procCpuMs(pid);
      ctx.progress(`coordinator: ${clients} clients joined in ${Math.round(level.joinMs ?? 0)} ms; running ${rounds} rounds`);
      if ((await Promise.race([allRounds, deadline()])) === "timeout")
        throw new Error(`${closeT.size} of ${rounds} rounds closed within ${limitMs / 1000} s (${errors.join("; ")})`);
      profWindow.to = monoUs();
      const cpu1 = await procCpuMs(pid);
      // The other workers' reports of the last round are a moment behind the first: up to 2 s for them.
      const until = performance.now() + 2_000;
      while ((sentT.get(rounds)?.reports ?? 0) < nWorkers && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
      if (cpu0 !== null && cpu1 !== null) {
        level.cpuMsRounds = sig(cpu1 - cpu0);
        level.cpuMsPerClientRound = sig((cpu1 - cpu0) / clients / rounds);
      }
    } finally {
      clearInterval(stopPoll);
      const m = await procMem(pid);
      if (m.hwmBytes !== null) level.peakRssBytes = Math.max(level.peakRssBytes ?? 0, m.hwmBytes);
      for (const [round, c] of [...closeT.entries()].sort((a, b) => a[0] - b[0])) {
        const s = startT.get(round);
        if (s !== undefined) level.roundMsAll.push(sig(c.t - s));
        // Only where every worker reported: otherwise a later-arriving update could be missing.
        const sent = sentT.get(round);
        if (sent && sent.reports === nWorkers && Number.isFinite(sent.last)) level.closeMsAll.push(sig(Math.max(0, c.t - sent.last)));
      }
      level.rounds = closeT.size;
    }
    const full = [...closeT.values()].every((c) => c.participants === clients);
    level.ok = full && errors.length === 0;
    if (!full) level.error = `rounds closed with participants ${[...closeT.values()].map((c) => c.participants).join(",")} of ${clients}`;
    else if (errors.length > 0) level.error = errors.join("; ");
  } catch (e) {
    level.error = (e as Error).message.slice(0, 500);
  } finally {
    for (const w of workers) if (w.connected) w.send("stop");
    await Promise.all(workers.map((w) => stopChild(w)));
    if (coord) await stopChild(coord);
    level.profile = await readProfile(path.join(dataDir, "prof"), profWindow);
    await rm(dataDir, { recursive: true, force: true });
  }
  const applies = output()
    .split("\n")
    .filter((l) => l.includes('"msg":"round closed"'))
    .map((l) => (JSON.parse(l) as { applyMs?: number }).applyMs)
    .filter((x): x is number => typeof x === "number");
  level.applyMs = applies.length > 0 ? sig(median(applies)) : null;
  level.roundMs = level.roundMsAll.length > 0 ? sig(median(level.roundMsAll)) : null;
  level.closeMs = level.closeMsAll.length > 0 ? sig(median(level.closeMsAll)) : null;
  if (level.peakRssBytes !== null && level.rssIdleBytes !== null)
    level.rssBytesPerClient = sig((level.peakRssBytes - level.rssIdleBytes) / clients);
  return level;
}

export async function benchCoordinator(ctx: BenchContext): Promise<CoordinatorResult> {
  const counts = ctx.quick ? [200, 1000] : [200, 1000, 2000];
  const rounds = ctx.quick ? 2 : 3;
  // Separately for joining and for the rounds.
  const limitMs = ctx.quick ? 45_000 : 150_000;
  const levels: CoordinatorLevel[] = [];
  for (const n of counts) {
    ctx.progress(`coordinator: ${n} clients, ${rounds} rounds (limit ${limitMs / 1000} s)`);
    const level = await runLevel(ctx, n, 8, rounds, limitMs);
    levels.push(level);
    if (!level.ok) {
      ctx.progress(`coordinator: ${n} clients failed: ${level.error ?? "?"}`);
      break;
    }
  }
  for (const n of counts) {
    ctx.progress(`coordinator: ${n} clients, ${rounds} rounds, the streamed mean (--clip-factor 0)`);
    const level = await runLevel(ctx, n, 8, rounds, limitMs, true);
    levels.push(level);
    if (!level.ok) break;
  }
  const growth = (streamed: boolean, key: "closeMs" | "applyMs" = "closeMs"): number | null => {
    const at = (n: number) => levels.find((l) => l.ok && l.experts === 8 && l.streamed === streamed && l.clients === n)?.[key] ?? null;
    const lo = at(counts[0]!);
    const hi = at(counts[counts.length - 1]!);
    return lo && hi ? sig(hi / lo, 3) : null;
  };
  let rssBytesPerExpert: number | null = null;
  if (!ctx.quick) {
    const base = levels.find((l) => l.clients === 200 && l.ok && !l.streamed);
    ctx.progress("coordinator: 200 clients with 64 experts (memory per expert)");
    const wide = await runLevel(ctx, 200, 64, rounds, limitMs);
    levels.push(wide);
    if (base?.peakRssBytes && wide.ok && wide.peakRssBytes) rssBytesPerExpert = sig((wide.peakRssBytes - base.peakRssBytes) / (64 - 8));
  }
  const ok8 = levels.filter((l) => l.ok && l.experts === 8 && !l.streamed);
  const best = ok8[ok8.length - 1];
  const pts = ok8.filter((l) => l.roundMs !== null).map((l) => ({ x: l.clients, y: l.roundMs as number }));
  const mem = ok8.filter((l) => l.peakRssBytes !== null).map((l) => ({ x: l.clients, y: l.peakRssBytes as number }));
  const s = slope(pts);
  const sm = slope(mem);
  return {
    preset: "cnn",
    levels,
    clients: best?.clients ?? 0,
    roundMs: best?.roundMs ?? null,
    rssBytesPerClient: best?.rssBytesPerClient ?? null,
    addedRoundMsPer1000: Number.isFinite(s) ? sig(s * 1000) : null,
    rssSlopeBytesPerClient: Number.isFinite(sm) ? sig(sm) : null,
    rssBytesPerExpert,
    cpuMsPerClientRound: best?.cpuMsPerClientRound ?? null,
    closeGrowth: { held: growth(false), streamed: growth(true), counts: [counts[0]!, counts[counts.length - 1]!] },
    applyGrowth: { held: growth(false, "applyMs"), streamed: growth(true, "applyMs") },
  };
}

/**
 * Where a process's CPU time goes: V8's sampling profile (`node --cpu-prof`) reduced to self time per
 * part of the stack (Socket.IO, validation, wire codec, aggregation, ...) inside a time window, plus the
 * process's own CPU time from /proc/<pid>/stat. Pure: the caller reads the files.
 */

/** The parts of a `.cpuprofile` that are read (Chrome DevTools protocol, Profiler.Profile). */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  /** Microseconds on the same monotonic clock as `process.hrtime` (CLOCK_MONOTONIC on Linux). */
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface CpuShare {
  part: string;
  ms: number;
  share: number;
}

export interface CpuBreakdown {
  /** Sampled busy time in the window (idle samples excluded), ms. */
  busyMs: number;
  parts: CpuShare[];
  /** The functions with the most self time, "name (file:line)". */
  top: CpuShare[];
}

/** First match wins: the url (or function name) of a frame -> the part of the stack it belongs to. */
const PARTS: readonly [string, (url: string, fn: string) => boolean][] = [
  ["garbage collection", (_u, fn) => fn === "(garbage collector)"],
  ["socket.io / engine.io / ws", (u) => /node_modules\/(socket\.io|engine\.io|ws|socket\.io-parser|socket\.io-adapter)\//.test(u)],
  ["validation (zod)", (u) => u.includes("node_modules/zod/")],
  ["logging (pino)", (u) => /node_modules\/(pino|sonic-boom|thread-stream)/.test(u)],
  ["wire codec (core/wire)", (u) => u.includes("packages/core/src/wire")],
  ["aggregation (core)", (u) => u.includes("packages/core/src/aggregation/")],
  ["assignment (core)", (u) => u.includes("packages/core/src/assignment/")],
  ["round engine, fitness, metrics (core)", (u) => u.includes("packages/core/src/")],
  ["coordinator", (u) => u.includes("apps/coordinator/src/")],
  ["tsx / esbuild (module loading)", (u) => /node_modules\/(tsx|esbuild)\//.test(u)],
  ["Node internals (net, streams, buffers, timers)", (u) => u.startsWith("node:")],
  ["native / VM (program)", (u, fn) => u === "" && fn === "(program)"],
];

const partOf = (url: string, fn: string): string => PARTS.find(([, m]) => m(url, fn))?.[0] ?? "other";

/** Self time per part and the top functions, over the samples whose time lies in [fromUs, toUs]. */
export function cpuBreakdown(p: CpuProfile, fromUs = -Infinity, toUs = Infinity, topN = 8): CpuBreakdown {
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const parts = new Map<string, number>();
  const fns = new Map<string, number>();
  let t = p.startTime;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) continue;
    // Each sample stands for the interval since the previous one.
    const next = p.timeDeltas[i + 1];
    const us = next !== undefined && next > 0 ? next : dt;
    const cf = byId.get(p.samples[i] as number);
    if (!cf || cf.functionName === "(idle)") continue;
    busy += us;
    const part = partOf(cf.url, cf.functionName);
    parts.set(part, (parts.get(part) ?? 0) + us);
    const file = cf.url.replace(/^.*\/(node_modules\/|packages\/|apps\/)/, "$1");
    const key = cf.url ? `${cf.functionName || "(anonymous)"} (${file}:${cf.lineNumber + 1})` : cf.functionName;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const share = (m: Map<string, number>): CpuShare[] =>
    [...m].sort((a, b) => b[1] - a[1]).map(([part, us]) => ({ part, ms: us / 1000, share: busy > 0 ? us / busy : 0 }));
  return { busyMs: busy / 1000, parts: share(parts), top: share(fns).slice(0, topN) };
}

/**
 * User + system CPU time of a process in ms from the text of /proc/<pid>/stat (fields 14 and 15, in
 * clock ticks); null when the text cannot be parsed.
 */
export function parseProcStatCpuMs(text: string, ticksPerSecond: number): number | null {
  // The command name (field 2) may hold spaces and parentheses: fields after it start past the last ")".
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || rest.length < 13) return null;
  return ((utime + stime) * 1000) / ticksPerSecond;
}

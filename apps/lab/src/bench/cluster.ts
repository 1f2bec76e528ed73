/**
 * Cluster bench, loopback only: a real redis-server, `flexmoe leader` and 1, 2 or 3 `flexmoe edge`
 * processes, and worker processes of protocol clients (./coordinator-worker.ts) spread evenly over
 * the edges, answering full rounds. Per level: whether every round closed with every client, the
 * median round latency, the leader's ingress per round (partials it read, from its own log) against
 * the bytes the clients uploaded (what a one-process coordinator receives), and each edge's peak RSS
 * per client it held. Everything shares this machine's cores, so latencies are upper bounds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { startRedis, type RedisServer } from "@flexmoe/testkit";
import type { BenchContext } from "./common.ts";
import { BIN, CLIENTS_PER_WORKER, HERE, procMem, ROOT, stopChild } from "./coordinator.ts";
import type { WorkerMessage } from "./coordinator-worker.ts";
import { median, sig } from "./stats.ts";

export interface ClusterLevel {
  edges: number;
  clients: number;
  ok: boolean;
  error?: string;
  rounds: number;
  roundMs: number | null;
  /** Median over rounds of the bytes the leader read (partial blobs and their messages). */
  leaderIngressBytes: number | null;
  /** Median over rounds of the bytes all clients uploaded: a one-process coordinator's ingress. */
  clientUploadBytes: number | null;
  /** leaderIngressBytes / clientUploadBytes. */
  ingressRatio: number | null;
  /** Per edge: (peak RSS - idle RSS) / clients it held. */
  rssBytesPerClientPerEdge: (number | null)[];
}

export interface ClusterResult {
  preset: "cnn";
  experts: number;
  levels: ClusterLevel[];
  /** Round latency with 3 edges / with 1 edge at the largest count both completed. */
  latency3over1: number | null;
  note: string;
}

interface Proc {
  proc: ChildProcess;
  out: () => string;
}

function spawnCli(args: string[], readyWhen: RegExp, limitMs = 60_000): Promise<Proc> {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`${args[0]} not ready in ${limitMs / 1000} s:\n${out.slice(-1500)}`)), limitMs);
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (readyWhen.test(out)) {
        clearTimeout(deadline);
        resolve({ proc, out: () => out });
      }
    });
    proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    proc.once("exit", (code) => {
      clearTimeout(deadline);
      reject(new Error(`${args[0]} exited ${code}:\n${out.slice(-1500)}`));
    });
  });
}

async function runLevel(
  ctx: BenchContext,
  redis: RedisServer,
  edges: number,
  clients: number,
  rounds: number,
  limitMs: number,
  n: number,
): Promise<ClusterLevel> {
  const level: ClusterLevel = {
    edges,
    clients,
    ok: false,
    rounds: 0,
    roundMs: null,
    leaderIngressBytes: null,
    clientUploadBytes: null,
    ingressRatio: null,
    rssBytesPerClientPerEdge: [],
  };
  const prefix = `bench${n}`;
  const common = ["--redis", redis.url, "--prefix", prefix, "--log-level", "info"];
  const procs: Proc[] = [];
  const workers: ChildProcess[] = [];
  try {
    const leader = await spawnCli(
      [
        "leader",
        ...common,
        ...["--preset", "cnn", "--experts", "8", "--min-clients", String(clients), "--rounds", String(rounds)],
        ...["--gather-ms", "1000", "--round-timeout", String(Math.ceil(limitMs / 1000)), "--shards", "16", "--max-samples", "200"],
      ],
      /leader ready/,
    );
    procs.push(leader);
    const urls: string[] = [];
    const edgeProcs: Proc[] = [];
    for (let e = 0; e < edges; e++) {
      const p = await spawnCli(
        [
          "edge",
          ...common,
          ...["--port", "0", "--host", "127.0.0.1", "--id", `e${e + 1}`],
          // Every bench client comes from 127.0.0.1: lift the per-address limits.
          ...["--max-conn-per-ip", "1000000", "--join-burst-per-ip", "1000000", "--join-rate-per-ip", "1000000"],
        ],
        /edge \S+: http/,
      );
      procs.push(p);
      edgeProcs.push(p);
      urls.push(/edge \S+: (http:\/\/\S+)/.exec(p.out())![1]!);
    }
    await new Promise((r) => setTimeout(r, 500));
    const idle = await Promise.all(edgeProcs.map((p) => procMem(p.proc.pid)));
    const peak: number[] = edgeProcs.map(() => 0);
    const poll = setInterval(() => {
      edgeProcs.forEach((p, i) => void procMem(p.proc.pid).then((m) => (peak[i] = Math.max(peak[i]!, m.hwmBytes ?? 0))));
    }, 250);
    const held: number[] = urls.map(() => 0);
    const startT = new Map<number, number>();
    const closeT = new Map<number, { t: number; participants: number }>();
    const uploaded = new Map<number, number>();
    const errors: string[] = [];
    let joined = 0;
    let allJoined: () => void = () => undefined;
    const joinedP = new Promise<void>((r) => (allJoined = r));
    let allClosed: () => void = () => undefined;
    const closedP = new Promise<void>((r) => (allClosed = r));
    const closedReports = new Map<number, number>();
    // Workers per edge, so each edge holds clients / edges.
    const perEdge = Array.from({ length: edges }, (_, e) => Math.floor(((e + 1) * clients) / edges) - Math.floor((e * clients) / edges));
    let first = 0;
    perEdge.forEach((count, e) => {
      held[e] = count;
      const nw = Math.max(1, Math.ceil(count / CLIENTS_PER_WORKER));
      for (let w = 0; w < nw; w++) {
        const c = Math.floor(((w + 1) * count) / nw) - Math.floor((w * count) / nw);
        const p = spawn(
          process.execPath,
          ["--import", "tsx", path.join(HERE, "coordinator-worker.ts"), urls[e]!, String(c), String(first)],
          {
            cwd: ROOT,
            stdio: ["ignore", "ignore", "pipe", "ipc"],
          },
        );
        first += c;
        p.stderr?.resume();
        workers.push(p);
        p.on("message", (raw) => {
          const m = raw as WorkerMessage;
          if (m.type === "joined") {
            joined += m.count;
            if (joined === clients) allJoined();
          } else if (m.type === "started") startT.set(m.round, Math.min(startT.get(m.round) ?? Infinity, m.t));
          else if (m.type === "closed") {
            const prev = closeT.get(m.round);
            if (!prev || m.t < prev.t) closeT.set(m.round, { t: m.t, participants: m.participants });
            uploaded.set(m.round, (uploaded.get(m.round) ?? 0) + m.sentBytes);
            closedReports.set(m.round, (closedReports.get(m.round) ?? 0) + 1);
            if (closeT.size >= rounds && closedReports.get(rounds) === workers.length) allClosed();
          } else if (errors.length < 5) errors.push(m.message);
        });
      }
    });
    const deadline = (): Promise<"timeout"> => new Promise((r) => setTimeout(() => r("timeout"), limitMs).unref());
    try {
      if ((await Promise.race([joinedP, deadline()])) === "timeout")
        throw new Error(`only ${joined} of ${clients} joined (${errors.join("; ")})`);
      ctx.progress(`cluster: ${edges} edge(s), ${clients} clients joined; ${rounds} rounds`);
      if ((await Promise.race([closedP, deadline()])) === "timeout")
        throw new Error(`${closeT.size} of ${rounds} rounds closed (${errors.join("; ")})`);
    } finally {
      clearInterval(poll);
    }
    const lat = [...closeT.entries()].flatMap(([r, c]) => (startT.has(r) ? [c.t - startT.get(r)!] : []));
    level.rounds = closeT.size;
    level.roundMs = lat.length > 0 ? sig(median(lat)) : null;
    const ingress = leader
      .out()
      .split("\n")
      .filter((l) => l.includes('"msg":"round closed"'))
      .map((l) => (JSON.parse(l) as { ingressBytes: number }).ingressBytes);
    level.leaderIngressBytes = ingress.length > 0 ? sig(median(ingress)) : null;
    const up = [...uploaded.values()];
    level.clientUploadBytes = up.length > 0 ? sig(median(up)) : null;
    if (level.leaderIngressBytes !== null && level.clientUploadBytes)
      level.ingressRatio = sig(level.leaderIngressBytes / level.clientUploadBytes, 3);
    level.rssBytesPerClientPerEdge = idle.map((m, i) =>
      m.rssBytes !== null && peak[i]! > 0 ? sig((peak[i]! - m.rssBytes) / held[i]!) : null,
    );
    const full = [...closeT.values()].every((c) => c.participants === clients);
    level.ok = full && errors.length === 0;
    if (!full) level.error = `rounds closed with participants ${[...closeT.values()].map((c) => c.participants).join(",")} of ${clients}`;
    else if (errors.length > 0) level.error = errors.join("; ");
  } catch (e) {
    level.error = (e as Error).message.slice(0, 500);
  } finally {
    for (const w of workers) if (w.connected) w.send("stop");
    await Promise.all(workers.map((w) => stopChild(w)));
    for (const p of procs.reverse()) await stopChild(p.proc);
  }
  return level;
}

export async function benchCluster(ctx: BenchContext): Promise<ClusterResult> {
  const counts = ctx.quick ? [300] : [500, 1500];
  const rounds = ctx.quick ? 2 : 3;
  const limitMs = ctx.quick ? 60_000 : 150_000;
  const redis = await startRedis();
  const levels: ClusterLevel[] = [];
  let n = 0;
  try {
    for (const clients of counts) {
      for (const edges of [1, 2, 3]) {
        ctx.progress(`cluster: ${edges} edge(s), ${clients} clients, ${rounds} rounds (limit ${limitMs / 1000} s)`);
        const l = await runLevel(ctx, redis, edges, clients, rounds, limitMs, n++);
        levels.push(l);
        if (!l.ok) ctx.progress(`cluster: ${edges} edge(s), ${clients} clients failed: ${l.error ?? "?"}`);
      }
    }
  } finally {
    await redis.stop();
  }
  const both = [...counts].reverse().find((c) => [1, 3].every((e) => levels.some((l) => l.clients === c && l.edges === e && l.ok)));
  const at = (e: number) => levels.find((l) => l.clients === both && l.edges === e)?.roundMs ?? null;
  const r1 = at(1);
  const r3 = at(3);
  return {
    preset: "cnn",
    experts: 8,
    levels,
    latency3over1: r1 && r3 ? sig(r3 / r1, 3) : null,
    note: "leader, edges, Redis and the client workers share this machine's cores: more edges add processes, not cores",
  };
}

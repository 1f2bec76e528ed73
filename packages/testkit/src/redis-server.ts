/**
 * A real redis-server (Debian's, installed by scripts/ensure-system.mjs) on a loopback port, with its
 * own directory, for the cluster tests: start, restart (same port and data: the append-only file
 * keeps what was written), stop.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./net.ts";

export interface RedisServer {
  port: number;
  url: string;
  /** SIGTERM (Redis saves and exits), then the same server again on the same port and directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

function launch(port: number, dir: string): ChildProcess {
  const p = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
    { stdio: "ignore" },
  );
  running.add(p);
  p.once("exit", () => running.delete(p));
  return p;
}

async function untilListening(port: number, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`redis-server not listening on ${port} within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exited = (p: ChildProcess): Promise<void> =>
  p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once("exit", () => r()));

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "flexmoe-redis-"));
  let proc = launch(port, dir);
  await untilListening(port, 10_000);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      proc.kill("SIGTERM");
      await exited(proc);
      proc = launch(port, dir);
      await untilListening(port, 10_000);
    },
    async stop() {
      proc.kill("SIGTERM");
      await exited(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Kills every redis-server this module started (a test's afterAll safety net). */
export function killRedisServers(): void {
  for (const p of running) p.kill("SIGKILL");
}

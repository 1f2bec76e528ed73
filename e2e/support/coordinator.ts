/**
 * Start the real coordinator (`flexmoe serve`) as a child process on a free port and stop it.
 * The URL is read from its own start-up output, so tests exercise what `npm start` prints.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface RunningCoordinator {
  url: string;
  proc: ChildProcess;
  /** Where the run is persisted: a fresh temp dir unless the args name one. */
  dataDir: string;
  output: () => string;
  /** The admin token printed at start-up (`Admin token: ...`). */
  adminToken: () => string;
  status: () => Promise<Status>;
  /** POST /api/admin with the printed token (docs/protocol.md, Admin); resolves to the JSON answer. */
  admin: (command: Record<string, unknown>) => Promise<{ ok: boolean }>;
  stop: () => Promise<void>;
}

export interface Status {
  round: number;
  phase: string;
  experts: number;
  clients: { id: string; backend: string; capacity: number; experts: number[]; online: boolean }[];
  history: {
    round: number;
    participants: number;
    durationMs: number;
    accuracy: number | null;
    loss: number | null;
    load: number[];
    cv: number;
  }[];
}

export async function startCoordinator(args: string[], timeoutMs = 60_000): Promise<RunningCoordinator> {
  // Each test run is its own federation unless it asks to resume one (a later --port/--data-dir wins).
  const at = args.indexOf("--data-dir");
  const dataDir = at >= 0 ? args[at + 1]! : mkdtempSync(path.join(tmpdir(), "flexmoe-e2e-"));
  const proc = spawn(
    process.execPath,
    [path.join(ROOT, "apps/lab/bin/flexmoe.mjs"), "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir, ...args],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`coordinator did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      const m = /(https?:\/\/localhost:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(deadline);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on("data", check);
    proc.once("exit", (code) => {
      clearTimeout(deadline);
      reject(new Error(`coordinator exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    proc,
    dataDir,
    output: () => out,
    adminToken: () => /Admin token: (\S+)/.exec(out)?.[1] ?? "",
    status: async () => (await (await fetch(`${url}api/status`)).json()) as Status,
    admin: async (command) => {
      const token = /Admin token: (\S+)/.exec(out)?.[1] ?? "";
      const res = await fetch(`${url}api/admin`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(command),
      });
      return (await res.json()) as { ok: boolean };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const kill = setTimeout(() => proc.kill("SIGKILL"), 5_000);
        proc.once("exit", () => {
          clearTimeout(kill);
          resolve();
        });
        proc.kill("SIGTERM");
      }),
  };
}

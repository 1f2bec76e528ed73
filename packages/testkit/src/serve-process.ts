/**
 * A real `flexmoe serve` child process for tests that need one (kill -9, restarts, the data-dir lock):
 * its combined output, its exit, and a wait for "coordinator ready" with a deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const BIN = path.join(ROOT, "apps/lab/bin/flexmoe.mjs");

export interface ServeProcess {
  proc: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Resolves once it logged "coordinator ready"; rejects if it exits first or after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void>;
}

/** Every process started here, so a test's afterAll can kill the ones still running. */
const started: ChildProcess[] = [];

export function spawnServe(args: readonly string[]): ServeProcess {
  return spawnFlexmoe("serve", args, /coordinator ready/);
}

/** Any `flexmoe <command>` as a child process, ready once its output matches `readyWhen`. */
export function spawnFlexmoe(command: string, args: readonly string[], readyWhen: RegExp): ServeProcess {
  const proc = spawn(process.execPath, [BIN, command, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  started.push(proc);
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const ready = (timeoutMs = 30_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (readyWhen.test(out)) done(() => resolve());
        else if (proc.exitCode !== null) done(() => reject(new Error(`flexmoe ${command} exited ${proc.exitCode}:\n${out}`)));
      };
      const deadline = setTimeout(
        () => done(() => reject(new Error(`flexmoe ${command} not ready within ${timeoutMs} ms:\n${out}`))),
        timeoutMs,
      );
      const done = (settle: () => void): void => {
        clearTimeout(deadline);
        proc.stdout!.off("data", check);
        proc.off("exit", check);
        settle();
      };
      proc.stdout!.on("data", check);
      proc.once("exit", check);
      check();
    });
  return { proc, output: () => out, exited, ready };
}

/** SIGKILLs every serve process started by this module that is still running. */
export function killServeProcesses(): void {
  for (const p of started.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}

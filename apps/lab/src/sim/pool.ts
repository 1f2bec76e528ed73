/**
 * Runs a list of simulations, in this process (workers = 1) or spread over child processes, each
 * with its own single-threaded WASM backend. Rows arrive in completion order.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { initNodeBackend } from "../tf-node.ts";
import { loadSimData } from "./data.ts";
import { runBackend, simulateRun } from "./simulate.ts";
import type { ResultRow, RunProgress, RunSpec } from "./types.ts";

export type ParentMessage = { type: "run"; job: number; run: RunSpec } | { type: "exit" };
export type WorkerMessage =
  | { type: "progress"; job: number; progress: RunProgress }
  | { type: "row"; job: number; row: ResultRow }
  | { type: "error"; job: number; message: string };

export interface PoolCallbacks {
  onStart?: (job: number) => void;
  onProgress?: (job: number, p: RunProgress) => void;
  onRow?: (job: number, row: ResultRow) => void;
}

export async function runAll(runs: readonly RunSpec[], workers: number, cb: PoolCallbacks = {}): Promise<ResultRow[]> {
  const rows: ResultRow[] = new Array<ResultRow>(runs.length);
  if (workers <= 1 || runs.length <= 1) {
    for (let job = 0; job < runs.length; job++) {
      const run = runs[job] as RunSpec;
      await initNodeBackend(runBackend(run));
      cb.onStart?.(job);
      const row = await simulateRun(run, loadSimData(run.data), (p) => cb.onProgress?.(job, p));
      rows[job] = row;
      cb.onRow?.(job, row);
    }
    return rows;
  }

  const entry = fileURLToPath(new URL("./worker-entry.mjs", import.meta.url));
  let next = 0;
  const children: ChildProcess[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let done = 0;
      let failed = false;
      const busy = new Set<ChildProcess>();
      const feed = (child: ChildProcess): void => {
        busy.delete(child);
        if (failed) return;
        if (next >= runs.length) {
          child.send({ type: "exit" } satisfies ParentMessage);
          return;
        }
        busy.add(child);
        const job = next++;
        cb.onStart?.(job);
        child.send({ type: "run", job, run: runs[job] as RunSpec } satisfies ParentMessage);
      };
      for (let w = 0; w < Math.min(workers, runs.length); w++) {
        const child = fork(entry, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
        children.push(child);
        child.on("message", (m: WorkerMessage) => {
          if (m.type === "progress") cb.onProgress?.(m.job, m.progress);
          else if (m.type === "row") {
            rows[m.job] = m.row;
            cb.onRow?.(m.job, m.row);
            if (++done === runs.length) resolve();
            else feed(child);
          } else {
            failed = true;
            reject(new Error(`run ${m.job} failed in a worker: ${m.message}`));
          }
        });
        child.on("exit", (code) => {
          if (busy.has(child) && !failed) {
            failed = true;
            reject(new Error(`experiment worker exited with code ${code} before finishing`));
          }
        });
        feed(child);
      }
    });
  } finally {
    // Every row is in (or a run failed): nothing left worth waiting for.
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill();
  }
  return rows;
}

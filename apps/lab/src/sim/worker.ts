/**
 * Experiment worker process: receives runs over IPC, simulates them on its own single-threaded
 * WASM backend (CPU for the cnn preset), and answers with progress and result rows. Started by pool.ts.
 */
import { initNodeBackend } from "../tf-node.ts";
import { loadSimData } from "./data.ts";
import type { ParentMessage, WorkerMessage } from "./pool.ts";
import { runBackend, simulateRun } from "./simulate.ts";

const send = (m: WorkerMessage): void => {
  process.send?.(m);
};

let queue: Promise<void> = initNodeBackend("wasm").then(() => undefined);

process.on("message", (m: ParentMessage) => {
  if (m.type === "exit") {
    void queue.finally(() => process.disconnect());
    return;
  }
  queue = queue.then(async () => {
    try {
      await initNodeBackend(runBackend(m.run));
      const row = await simulateRun(m.run, loadSimData(m.run.data), (p) => send({ type: "progress", job: m.job, progress: p }));
      send({ type: "row", job: m.job, row });
    } catch (e) {
      send({ type: "error", job: m.job, message: (e as Error).stack ?? String(e) });
    }
  });
});

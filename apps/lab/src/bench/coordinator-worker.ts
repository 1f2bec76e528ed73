/**
 * Child process of the coordinator-capacity bench: holds `count` protocol clients (SyntheticClient for
 * join/ready over a real socket.io-client socket) that answer every round by echoing the frame they were
 * sent (a valid upload of the same tensors), so the clients cost almost no CPU and the round time is the
 * coordinator's. Reports to the parent over IPC. Usage: node --import tsx coordinator-worker.ts URL COUNT FIRST
 */
import { toBytes, type RoundStart } from "@flexmoe/core";
import { SyntheticClient } from "@flexmoe/testkit";

export type WorkerMessage =
  | { type: "joined"; count: number; ms: number }
  | { type: "started"; round: number; t: number }
  /** lastSent: when this worker's last client of the round emitted its update (null: none did). */
  | { type: "closed"; round: number; t: number; participants: number; lastSent: number | null; sentBytes: number }
  | { type: "rejected"; round: number; message: string }
  | { type: "error"; message: string };

const send = (m: WorkerMessage): void => void process.send?.(m);
const now = (): number => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const [url, countArg, firstArg] = process.argv.slice(2);
  const count = Number(countArg);
  const first = Number(firstArg ?? 0);
  if (!url || !(count > 0)) throw new Error("usage: coordinator-worker URL COUNT FIRST");
  const started = new Set<number>();
  const closed = new Set<number>();
  const lastSent = new Map<number, number>();
  const sentBytes = new Map<number, number>();
  const clients: SyntheticClient[] = [];
  const t0 = performance.now();
  const BATCH = 50;
  for (let i = 0; i < count; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => {
      const c = new SyntheticClient({ url, capacity: 1 + ((first + i + j) % 4), autoSubmit: false });
      c.socket.on("round:started", (s: RoundStart) => {
        if (!started.has(s.round)) {
          started.add(s.round);
          send({ type: "started", round: s.round, t: now() });
        }
        const per = Math.floor(100 / Math.max(1, s.experts.length));
        lastSent.set(s.round, now());
        sentBytes.set(s.round, (sentBytes.get(s.round) ?? 0) + toBytes(s.weights).byteLength);
        void c
          .request(
            "update:submit",
            {
              meta: {
                round: s.round,
                numSamples: 100,
                feedback: s.experts.map((e) => ({ expert: e, usage: per, accuracy: 0.5, loss: 0.5 })),
                evalAccuracy: 0.5,
                evalLoss: 0.5,
                evalSamples: 20,
                trainLoss: 1,
                trainMs: 1,
              },
              weights: toBytes(s.weights),
            },
            120_000,
          )
          .then(
            (res) => {
              if (!res.ok) send({ type: "rejected", round: s.round, message: `${res.error.code}: ${res.error.message}` });
            },
            (e: unknown) => send({ type: "rejected", round: s.round, message: (e as Error).message }),
          );
      });
      c.socket.on("round:closed", (s) => {
        if (!closed.has(s.round)) {
          closed.add(s.round);
          send({
            type: "closed",
            round: s.round,
            t: now(),
            participants: s.participants,
            lastSent: lastSent.get(s.round) ?? null,
            sentBytes: sentBytes.get(s.round) ?? 0,
          });
        }
      });
      clients.push(c);
      return c.join();
    });
    await Promise.all(batch);
  }
  send({ type: "joined", count, ms: performance.now() - t0 });
  process.on("message", (m) => {
    if (m === "stop") {
      for (const c of clients) c.close();
      setTimeout(() => process.exit(0), 200);
    }
  });
  process.on("disconnect", () => process.exit(0));
}

main().catch((e: unknown) => {
  send({ type: "error", message: (e as Error).message });
  setTimeout(() => process.exit(1), 100);
});

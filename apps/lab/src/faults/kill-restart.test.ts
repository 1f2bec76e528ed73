/**
 * Fault injection: the real `flexmoe serve` process is SIGKILLed mid-round and restarted on the same
 * port with the same --data-dir. Reconnecting synthetic clients must carry on under the same
 * identities, every round any client saw close before the kill must still be there, and rounds
 * must advance past the kill point.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it, vi } from "vitest";
import type { statusOf } from "@flexmoe/coordinator";
import { freePort, killServeProcesses, spawnServe, SyntheticClient } from "@flexmoe/testkit";

type Status = ReturnType<typeof statusOf>;

const clients: SyntheticClient[] = [];
const dataDir = mkdtempSync(path.join(tmpdir(), "flexmoe-kill-"));
afterAll(() => {
  for (const c of clients) c.close();
  killServeProcesses();
  rmSync(dataDir, { recursive: true, force: true });
});

async function serve(args: string[]) {
  const p = spawnServe(args);
  await p.ready();
  return p;
}

it("survives SIGKILL mid-round: restart resumes from the last completed round and clients carry on", async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Log level info: the resume line is checked below.
  const args = [
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    "--data-dir",
    dataDir,
    "--preset",
    "dense",
    "--experts",
    "4",
    "--shards",
    "4",
    "--min-clients",
    "3",
    "--gather-ms",
    "50",
    "--round-timeout",
    "20",
    "--max-samples",
    "60",
  ];
  const status = async (): Promise<Status> => (await (await fetch(`${url}/api/status`)).json()) as Status;

  const first = await serve(args);
  for (let i = 0; i < 3; i++) clients.push(new SyntheticClient({ url, capacity: 2, delayMs: 120, reconnect: true }));
  const infos = await Promise.all(clients.map((c) => c.join()));
  const ids = infos.map((i) => i.clientId);

  // Kill while a round is in flight, after at least three have completed.
  await vi.waitFor(
    async () => {
      const s = await status();
      expect(s.round).toBeGreaterThanOrEqual(3);
      expect(s.currentRound).not.toBeNull();
    },
    { timeout: 30_000, interval: 20 },
  );
  const beforeKill = await status();
  first.proc.kill("SIGKILL");
  await new Promise((r) => first.proc.once("exit", r));
  // Every round a client saw close was persisted before the broadcast.
  const seenClosed = Math.max(...clients.flatMap((c) => c.closed.map((s) => s.round)));
  const startsBefore = clients.map((c) => c.rounds.length);

  const second = await serve(args);
  const resumed = await status();
  expect(second.output()).toMatch(new RegExp(`resuming run ${beforeKill.runId} after round ${resumed.round}`));
  expect(resumed.runId).toBe(beforeKill.runId);
  expect(resumed.round).toBeGreaterThanOrEqual(seenClosed);
  expect(resumed.round).toBeGreaterThanOrEqual(beforeKill.round);
  // History up to the kill point is intact, record for record.
  expect(resumed.history.slice(0, beforeKill.history.length)).toEqual(beforeKill.history);
  expect(resumed.history.map((h) => h.round)).toEqual(Array.from({ length: resumed.round }, (_, i) => i + 1));

  // The clients reconnect on their own, rejoin with their tokens, and training continues.
  await vi.waitFor(
    async () => {
      const s = await status();
      expect(s.round).toBeGreaterThanOrEqual(resumed.round + 2);
    },
    { timeout: 30_000, interval: 50 },
  );
  const after = await status();
  expect(after.clients.map((c) => c.id).sort()).toEqual([...ids].sort());
  expect(after.history.slice(0, beforeKill.history.length)).toEqual(beforeKill.history);
  for (const [i, c] of clients.entries()) {
    expect(c.rejoinErrors).toEqual([]);
    expect(c.rejoins).toBeGreaterThanOrEqual(1);
    expect(c.rounds.length).toBeGreaterThan(startsBefore[i]!);
    expect(c.info!.clientId).toBe(ids[i]);
  }
  // The round that was in flight at the kill was redone under its own number, not skipped.
  expect(after.history[resumed.round]!.round).toBe(resumed.round + 1);
  for (const c of clients) c.close();
  second.proc.kill("SIGTERM");
  await new Promise((r) => second.proc.once("exit", r));
});

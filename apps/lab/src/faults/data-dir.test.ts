/**
 * The data dir against real `flexmoe serve` processes: a second coordinator on the same --data-dir
 * exits 2 naming the lock file; a flipped bit in the last checkpoint is caught by its checksum and the
 * run resumes from the previous one (with a warning); a SIGKILLed coordinator's stale lock is taken over.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it, vi } from "vitest";
import type { statusOf } from "@flexmoe/coordinator";
import { freePort, killServeProcesses, spawnServe, SyntheticClient } from "@flexmoe/testkit";

type Status = ReturnType<typeof statusOf>;

const clients: SyntheticClient[] = [];
const dataDir = mkdtempSync(path.join(tmpdir(), "flexmoe-datadir-"));
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

it("one coordinator per data dir; a damaged checkpoint falls back to the previous one; a stale lock is taken over", async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const base = ["--host", "127.0.0.1", "--data-dir", dataDir, "--preset", "dense", "--experts", "4", "--shards", "4"];
  const args = [...base, "--port", String(port), "--min-clients", "2", "--gather-ms", "20", "--max-samples", "40"];
  const status = async (): Promise<Status> => (await (await fetch(`${url}/api/status`)).json()) as Status;

  const first = await serve(args);
  const lockFile = path.join(dataDir, "run.lock");
  expect(JSON.parse(readFileSync(lockFile, "utf8"))).toMatchObject({ pid: first.proc.pid });

  // A second coordinator on the same dir (another port) refuses to start and names the file and owner.
  const second = spawnServe([...base, "--port", "0"]);
  expect(await second.exited).toBe(2);
  expect(second.output()).toContain(`${lockFile}: the data dir is in use by pid ${first.proc.pid}`);

  // Two rounds complete, then the first coordinator stops cleanly and releases the lock.
  for (let i = 0; i < 2; i++) clients.push(new SyntheticClient({ url, capacity: 2, delayMs: 100 }));
  await Promise.all(clients.map((c) => c.join()));
  await vi.waitFor(async () => expect((await status()).round).toBeGreaterThanOrEqual(2), { timeout: 30_000, interval: 20 });
  first.proc.kill("SIGTERM");
  expect(await first.exited).toBe(0);
  expect(existsSync(lockFile)).toBe(false);
  for (const c of clients.splice(0)) c.close();
  const last = readFileSync(path.join(dataDir, "checkpoint.fms"));
  const lastRound = (JSON.parse(last.subarray(8, 8 + last.readUInt32LE(4)).toString()) as { round: number }).round;

  // One flipped bit inside the stored weights.
  last[last.length - 100]! ^= 0x01;
  writeFileSync(path.join(dataDir, "checkpoint.fms"), last);
  const third = await serve(args);
  expect(third.output()).toMatch(/store recovered: .*checkpoint\.fms: checkpoint: checksum mismatch/);
  expect(third.output()).toContain(`resuming run`);
  expect(third.output()).toContain(`after round ${lastRound - 1}`);
  expect((await status()).round).toBe(lastRound - 1);
  expect(existsSync(path.join(dataDir, "checkpoint.corrupt.fms"))).toBe(true);

  // SIGKILL leaves the lock behind; its pid is dead, so the next start takes it over.
  third.proc.kill("SIGKILL");
  await third.exited;
  expect(existsSync(lockFile)).toBe(true);
  const fourth = await serve(args);
  expect(JSON.parse(readFileSync(lockFile, "utf8"))).toMatchObject({ pid: fourth.proc.pid });
  expect((await status()).round).toBe(lastRound - 1);
  fourth.proc.kill("SIGTERM");
  expect(await fourth.exited).toBe(0);
});

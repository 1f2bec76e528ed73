/**
 * Where a run's checkpoints live. `FileRunStore` keeps them in `--data-dir`; `MemoryRunStore` is
 * the in-process stand-in for tests. Both pass store.contract.test.ts.
 *
 * Files in the data dir:
 *   checkpoint.fms       the last completed round (checkpoint.ts; SHA-256 checked); replaced atomically
 *   checkpoint.prev.fms  the one before it, kept as the fallback when the last one fails its checks
 *   clients.jsonl        one line per client registered since the previous checkpoint (appended and
 *                        fsynced at registration, so a token issued after the last checkpoint survives;
 *                        compacted at every checkpoint, which holds the whole registry)
 *   run.lock             pid, host and start time of the coordinator using the dir (O_EXCL)
 *   checkpoint.corrupt.fms  a checkpoint that failed its checks, moved aside for inspection
 *   clients.json         (read only) the registry as versions before clients.jsonl wrote it
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { err, ok, type Result } from "@flexmoe/core";
import type { PersistedClient } from "../federation.ts";
import { decodeCheckpoint, encodeCheckpoint, parsePersistedClient, type Checkpoint, type StoreError } from "./checkpoint.ts";

export interface RunStore {
  /** The last good checkpoint (clients merged with the registry log), null for an empty store. */
  load(): Result<Checkpoint | null, StoreError>;
  /** Replace the checkpoint; when this returns, it survives a crash. @throws on I/O errors. */
  save(cp: Checkpoint): void;
  /**
   * Record a client that registered or whose token changed; when this returns, it survives a crash.
   * @throws on I/O errors.
   */
  putClient(client: PersistedClient): void;
}

/**
 * The registry log over a checkpoint: for a client the checkpoint lists, the log's last entry brings
 * its credential (a token rotated after the checkpoint); the rest of the record is the checkpoint's,
 * which is newer. Ids the checkpoint does not list (joined after it) are appended in log order.
 */
function mergeClients(cp: Checkpoint, registry: readonly PersistedClient[]): Checkpoint {
  if (registry.length === 0) return cp;
  const latest = new Map<string, PersistedClient>();
  for (const c of registry) latest.set(c.id, c);
  const clients = cp.meta.clients.map((c) => {
    const l = latest.get(c.id);
    return l ? { ...c, token: l.token, prevToken: l.prevToken ?? null } : c;
  });
  const listed = new Set(cp.meta.clients.map((c) => c.id));
  for (const [id, c] of latest) if (!listed.has(id)) clients.push(c);
  return { ...cp, meta: { ...cp.meta, clients } };
}

/** What identifies a client's entry in the log: id, shard and credential. */
const credentialOf = (c: PersistedClient): string => JSON.stringify([c.id, c.shard, c.token, c.prevToken ?? null]);

/** Log entries worth keeping after checkpoint `cp`: clients the previous checkpoint lacks or knows by another token. */
function changedSince(cp: Checkpoint, previous: ReadonlyMap<string, string>): PersistedClient[] {
  return cp.meta.clients.filter((c) => previous.get(c.id) !== credentialOf(c));
}

const byId = (cp: Checkpoint): Map<string, string> => new Map(cp.meta.clients.map((c) => [c.id, credentialOf(c)]));

export class MemoryRunStore implements RunStore {
  private bytes: Uint8Array | null = null;
  private registry: PersistedClient[] = [];
  private previous = new Map<string, string>();
  load(): Result<Checkpoint | null, StoreError> {
    if (!this.bytes) return ok(null);
    const cp = decodeCheckpoint(this.bytes);
    return cp.ok ? ok(mergeClients(cp.value, this.registry)) : cp;
  }
  save(cp: Checkpoint): void {
    this.bytes = encodeCheckpoint(cp);
    this.registry = changedSince(cp, this.previous);
    this.previous = byId(cp);
  }
  putClient(client: PersistedClient): void {
    this.registry.push(structuredClone(client));
  }
}

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

export class FileRunStore implements RunStore {
  readonly checkpointPath: string;
  readonly previousPath: string;
  readonly corruptPath: string;
  readonly clientsPath: string;
  readonly legacyClientsPath: string;
  readonly lockPath: string;
  /** Client ids in the checkpoint that the next save turns into the previous one. */
  private previous = new Map<string, string>();
  private locked = false;

  constructor(readonly dir: string) {
    this.checkpointPath = path.join(dir, "checkpoint.fms");
    this.previousPath = path.join(dir, "checkpoint.prev.fms");
    this.corruptPath = path.join(dir, "checkpoint.corrupt.fms");
    this.clientsPath = path.join(dir, "clients.jsonl");
    this.legacyClientsPath = path.join(dir, "clients.json");
    this.lockPath = path.join(dir, "run.lock");
  }

  /**
   * Claim the dir for this process. A lock whose process is gone (same host, pid not alive) is
   * taken over; a live one is LOCKED, naming the file and its owner.
   */
  lock(): Result<void, StoreError> {
    mkdirSync(this.dir, { recursive: true });
    const mine: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.lockPath, "wx", 0o600);
        try {
          writeSync(fd, JSON.stringify(mine));
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        this.locked = true;
        return ok(undefined);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST")
          return err({ code: "IO", message: `${this.lockPath}: ${(e as Error).message}` });
      }
      const owner = readLock(this.lockPath);
      if (owner && (owner.host !== mine.host || processAlive(owner.pid)))
        return err({
          code: "LOCKED",
          message: `${this.lockPath}: the data dir is in use by pid ${owner.pid} on ${owner.host} (since ${owner.startedAt}). Stop that coordinator, or use another --data-dir; if none is running, delete the lock file.`,
        });
      // Stale (its process is gone) or unreadable (a crash while it was written): take it over.
      try {
        unlinkSync(this.lockPath);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT")
          return err({ code: "IO", message: `${this.lockPath}: ${(e as Error).message}` });
      }
    }
    return err({ code: "LOCKED", message: `${this.lockPath}: another coordinator took the lock at the same time` });
  }

  /** Release the lock if this store holds it. */
  unlock(): void {
    if (!this.locked) return;
    this.locked = false;
    if (readLock(this.lockPath)?.pid !== process.pid) return;
    try {
      unlinkSync(this.lockPath);
    } catch {
      // Already gone: nothing to release.
    }
  }

  load(): Result<Checkpoint | null, StoreError> {
    const main = this.readCheckpoint(this.checkpointPath);
    let cp: Checkpoint;
    if (main.ok && main.value) cp = main.value;
    else {
      if (!main.ok && main.error.code !== "CORRUPT") return main;
      // A corrupt last checkpoint, or none but a previous one (a crash between the two renames of a save).
      const prev = this.readCheckpoint(this.previousPath);
      if (main.ok) {
        if (!prev.ok || !prev.value) return prev;
      } else if (!prev.ok || !prev.value) {
        const why = prev.ok
          ? "and there is no previous checkpoint to fall back to"
          : `and the previous one is unusable too: ${prev.error.message}`;
        return err({ code: "CORRUPT", message: `${main.error.message}; ${why}` });
      }
      cp = prev.value;
      if (!main.ok) {
        // Keep the bad file for inspection, out of the way of the next save's rotation.
        renameSync(this.checkpointPath, this.corruptPath);
        cp.recovered = `${main.error.message}; moved it to ${this.corruptPath} and resumed from ${this.previousPath} (round ${cp.meta.round})`;
      } else cp.recovered = `${this.checkpointPath} is missing; resumed from ${this.previousPath} (round ${cp.meta.round})`;
    }
    this.previous = byId(cp);
    const legacy = this.readLegacyClients();
    if (!legacy.ok) return legacy;
    const log = this.readClientLog();
    if (!log.ok) return log;
    const merged = mergeClients(mergeClients(cp, legacy.value), log.value.clients);
    if (log.value.skipped > 0) {
      const note = `${this.clientsPath}: skipped ${log.value.skipped} unreadable line(s) (a crash mid-append?)`;
      merged.recovered = merged.recovered ? `${merged.recovered}; ${note}` : note;
    }
    return ok(merged);
  }

  save(cp: Checkpoint): void {
    const tmp = writeTemp(this.checkpointPath, encodeCheckpoint(cp));
    // The last checkpoint becomes the previous one, then the new one takes its place.
    if (existsSync(this.checkpointPath)) renameSync(this.checkpointPath, this.previousPath);
    renameSync(tmp, this.checkpointPath);
    fsyncDir(this.dir);
    // Compact the log: keep who the previous checkpoint lacks or holds otherwise (a rotated token), so a
    // fallback to it loses no token.
    const keep = changedSince(cp, this.previous);
    writeAtomic(this.clientsPath, new TextEncoder().encode(keep.map((c) => `${JSON.stringify(c)}\n`).join("")));
    this.previous = byId(cp);
  }

  putClient(client: PersistedClient): void {
    mkdirSync(this.dir, { recursive: true });
    const fd = openSync(this.clientsPath, "a", 0o600);
    try {
      appendFileSync(fd, `${JSON.stringify(client)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private readCheckpoint(file: string): Result<Checkpoint | null, StoreError> {
    const bytes = readIfExists(file);
    if (!bytes.ok || bytes.value === null) return bytes as Result<null, StoreError>;
    const cp = decodeCheckpoint(bytes.value);
    return cp.ok ? cp : err({ ...cp.error, message: `${file}: ${cp.error.message}` });
  }

  private readClientLog(): Result<{ clients: PersistedClient[]; skipped: number }, StoreError> {
    const bytes = readIfExists(this.clientsPath);
    if (!bytes.ok) return bytes;
    const clients: PersistedClient[] = [];
    let skipped = 0;
    const text = bytes.value === null ? "" : new TextDecoder().decode(bytes.value);
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      let c: PersistedClient | null = null;
      try {
        c = parsePersistedClient(JSON.parse(line));
      } catch {
        c = null;
      }
      if (c) clients.push(c);
      else skipped++;
    }
    return ok({ clients, skipped });
  }

  private readLegacyClients(): Result<PersistedClient[], StoreError> {
    const bytes = readIfExists(this.legacyClientsPath);
    if (!bytes.ok) return bytes;
    if (bytes.value === null) return ok([]);
    try {
      const list = JSON.parse(new TextDecoder().decode(bytes.value)) as unknown;
      if (!Array.isArray(list)) throw new TypeError("not an array");
      const clients = list.map(parsePersistedClient);
      if (clients.some((c) => c === null)) throw new TypeError("an entry is not a client");
      return ok(clients as PersistedClient[]);
    } catch (e) {
      return err({ code: "CORRUPT", message: `${this.legacyClientsPath}: ${(e as Error).message}` });
    }
  }
}

function readLock(file: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as Partial<LockInfo>;
    return typeof v.pid === "number" && typeof v.host === "string" ? { pid: v.pid, host: v.host, startedAt: String(v.startedAt) } : null;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, owned by someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readIfExists(file: string): Result<Uint8Array | null, StoreError> {
  try {
    return ok(readFileSync(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return ok(null);
    return err({ code: "IO", message: `${file}: ${(e as Error).message}` });
  }
}

/** Write `bytes` to a temp file next to `file` and fsync it; returns the temp path. */
function writeTemp(file: string, bytes: Uint8Array): string {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

function fsyncDir(dir: string): void {
  try {
    const dfd = openSync(dir, "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename itself is still atomic.
  }
}

/** Temp file in the same directory, fsync, rename over the target, fsync the directory: all or nothing. */
export function writeAtomic(file: string, bytes: Uint8Array): void {
  const tmp = writeTemp(file, bytes);
  renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

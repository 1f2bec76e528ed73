/**
 * Where a run's checkpoints live. `FileRunStore` keeps them in `--data-dir`; `MemoryRunStore` is
 * the in-process stand-in for tests. Both pass store.contract.test.ts.
 *
 * Files in the data dir (each replaced atomically: temp file, fsync, rename, fsync of the dir):
 *   checkpoint.fms  the last completed round (checkpoint.ts)
 *   clients.json    the client registry, rewritten when a client registers between rounds, so a token
 *                   issued after the last checkpoint still works after a restart
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import path from "node:path";
import { err, ok, type Result } from "@flexmoe/core";
import type { PersistedClient } from "../federation.ts";
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint, type StoreError } from "./checkpoint.ts";

export interface RunStore {
  /** The last checkpoint (clients merged with the registry file), null for an empty store. */
  load(): Result<Checkpoint | null, StoreError>;
  /** Replace the checkpoint; when this returns, it survives a crash. @throws on I/O errors. */
  save(cp: Checkpoint): void;
  /** Replace the client registry. @throws on I/O errors. */
  saveClients(clients: readonly PersistedClient[]): void;
}

/** Registry entries not in the checkpoint (joined after it) are appended; the checkpoint wins for the rest. */
function mergeClients(cp: Checkpoint, registry: readonly PersistedClient[] | null): Checkpoint {
  if (!registry) return cp;
  const known = new Set(cp.meta.clients.map((c) => c.id));
  return { ...cp, meta: { ...cp.meta, clients: [...cp.meta.clients, ...registry.filter((c) => !known.has(c.id))] } };
}

export class MemoryRunStore implements RunStore {
  private bytes: Uint8Array | null = null;
  private registry: PersistedClient[] | null = null;
  load(): Result<Checkpoint | null, StoreError> {
    if (!this.bytes) return ok(null);
    const cp = decodeCheckpoint(this.bytes);
    return cp.ok ? ok(mergeClients(cp.value, this.registry)) : cp;
  }
  save(cp: Checkpoint): void {
    this.bytes = encodeCheckpoint(cp);
  }
  saveClients(clients: readonly PersistedClient[]): void {
    this.registry = structuredClone([...clients]);
  }
}

export class FileRunStore implements RunStore {
  readonly checkpointPath: string;
  readonly clientsPath: string;

  constructor(readonly dir: string) {
    this.checkpointPath = path.join(dir, "checkpoint.fms");
    this.clientsPath = path.join(dir, "clients.json");
  }

  load(): Result<Checkpoint | null, StoreError> {
    const bytes = readIfExists(this.checkpointPath);
    if (!bytes.ok) return bytes;
    if (bytes.value === null) return ok(null);
    const cp = decodeCheckpoint(bytes.value);
    if (!cp.ok) return err({ ...cp.error, message: `${this.checkpointPath}: ${cp.error.message}` });
    const reg = readIfExists(this.clientsPath);
    if (!reg.ok) return reg;
    let registry: PersistedClient[] | null = null;
    if (reg.value !== null) {
      try {
        registry = JSON.parse(new TextDecoder().decode(reg.value)) as PersistedClient[];
        if (!Array.isArray(registry)) throw new TypeError("not an array");
      } catch (e) {
        return err({ code: "CORRUPT", message: `${this.clientsPath}: ${(e as Error).message}` });
      }
    }
    return ok(mergeClients(cp.value, registry));
  }

  save(cp: Checkpoint): void {
    writeAtomic(this.checkpointPath, encodeCheckpoint(cp));
  }

  saveClients(clients: readonly PersistedClient[]): void {
    writeAtomic(this.clientsPath, new TextEncoder().encode(JSON.stringify(clients)));
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

/** Temp file in the same directory, fsync, rename over the target, fsync the directory: all or nothing. */
export function writeAtomic(file: string, bytes: Uint8Array): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
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

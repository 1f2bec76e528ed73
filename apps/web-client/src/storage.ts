/**
 * What this page keeps across reloads: its identity token and its backend choice (localStorage), and
 * its own gate (IndexedDB; the gate is personal and never leaves the device).
 */
import type { NamedTensor } from "@flexmoe/core";
import { LAST_MEMO_KEY, parseMemo, type BackendMemo } from "./backend-choice.ts";

const DB = "flexmoe";
const STORE = "gates";

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("indexedDB open failed"));
  });
}

async function tx<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const req = fn(db.transaction(STORE, mode).objectStore(STORE));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error("indexedDB request failed"));
    });
  } finally {
    db.close();
  }
}

/** The gate is stored per run: a gate from another federation (other E or features) is useless. */
export async function loadGate(runId: string): Promise<NamedTensor[] | null> {
  try {
    const v = (await tx("readonly", (s) => s.get(runId))) as NamedTensor[] | undefined;
    return Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

export async function saveGate(runId: string, gate: NamedTensor[]): Promise<void> {
  try {
    await tx("readwrite", (s) => s.put(gate, runId));
  } catch {
    // Private browsing may refuse IndexedDB: the gate then lives for this page only.
  }
}

const TOKEN_KEY = "flexmoe:token";
export const loadToken = (): string | null => {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
};
export const saveToken = (t: string | null): void => {
  try {
    if (t === null) localStorage.removeItem(TOKEN_KEY);
    else localStorage.setItem(TOKEN_KEY, t);
  } catch {
    /* storage unavailable: identity lasts for this page only */
  }
};

const read = (key: string): string | null => {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
};

/** The backend choice stored under `key` (backend-choice.ts's `memoKey`), or the last one written. */
export const loadBackendMemo = (key: string | null): { key: string; memo: BackendMemo } | null => {
  const k = key ?? read(LAST_MEMO_KEY);
  const memo = k === null ? null : parseMemo(read(k));
  return k !== null && memo !== null ? { key: k, memo } : null;
};
export const saveBackendMemo = (key: string, memo: BackendMemo | null): void => {
  try {
    if (memo === null) localStorage.removeItem(key);
    else {
      localStorage.setItem(key, JSON.stringify(memo));
      localStorage.setItem(LAST_MEMO_KEY, key);
    }
  } catch {
    /* storage unavailable: the page measures again next time */
  }
};

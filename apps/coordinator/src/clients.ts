/**
 * The coordinator's client registry: identities, tokens, dealt shards, capacities and liveness.
 * The round engine never sees it; the federation reads participants from it.
 */
import type { DashboardClient, JoinRequest } from "@flexmoe/core";

export interface ClientRecord {
  id: string;
  token: string;
  capacity: number;
  backend: string;
  label: string | undefined;
  shard: number;
  online: boolean;
  ready: boolean;
  /** Experts held in the current or last round this client took part in. */
  experts: number[];
  lastRound: number;
  accuracy: number | null;
}

/** What survives a restart of a client: identity, credential and data shard (`online`/`ready` do not). */
export interface PersistedClient {
  id: string;
  token: string;
  shard: number;
  capacity: number;
  backend: string;
  label: string | null;
  lastRound: number;
  accuracy: number | null;
}

/** The part of a client that survives a restart. */
export function persistedOf(c: ClientRecord): PersistedClient {
  return {
    id: c.id,
    token: c.token,
    shard: c.shard,
    capacity: c.capacity,
    backend: c.backend,
    label: c.label ?? null,
    lastRound: c.lastRound,
    accuracy: c.accuracy,
  };
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/**
 * The one mapping of a client to what the dashboard and /api/status show. Numbers are checked, so a
 * malformed restored record cannot throw on a dashboard connection.
 */
export function viewOf(c: ClientRecord): DashboardClient {
  return {
    id: c.id,
    label: c.label ?? null,
    backend: c.backend,
    capacity: num(c.capacity),
    experts: Array.isArray(c.experts) ? c.experts.map(num) : [],
    online: c.online,
    ready: c.ready,
    lastRound: num(c.lastRound),
    accuracy: typeof c.accuracy === "number" && Number.isFinite(c.accuracy) ? c.accuracy : null,
  };
}

export class ClientRegistry {
  private readonly clients = new Map<string, ClientRecord>();
  private readonly byToken = new Map<string, string>();
  private nextClientNo = 1;
  private nextShard = 0;

  constructor(
    private readonly shards: number,
    restored: readonly PersistedClient[] = [],
  ) {
    for (const p of restored) this.restore(p);
  }

  private restore(p: PersistedClient): void {
    const rec: ClientRecord = {
      id: p.id,
      token: p.token,
      capacity: p.capacity,
      backend: p.backend,
      label: p.label ?? undefined,
      shard: p.shard,
      online: false,
      ready: false,
      experts: [],
      lastRound: p.lastRound,
      accuracy: p.accuracy,
    };
    this.clients.set(rec.id, rec);
    this.byToken.set(rec.token, rec.id);
    const no = Number(/^c(\d+)$/.exec(rec.id)?.[1] ?? 0);
    this.nextClientNo = Math.max(this.nextClientNo, no + 1);
    // Shards are dealt round-robin in join order, so the next one follows the registry's length.
    this.nextShard = Math.max(this.nextShard, this.clients.size);
  }

  /** The registry as it should be persisted. */
  persisted(): PersistedClient[] {
    return [...this.clients.values()].map(persistedOf);
  }

  list(): readonly ClientRecord[] {
    return [...this.clients.values()];
  }

  get(id: string): ClientRecord | undefined {
    return this.clients.get(id);
  }

  byTokenOf(token: string): ClientRecord | undefined {
    const id = this.byToken.get(token);
    return id === undefined ? undefined : this.clients.get(id);
  }

  /** Online and ready. */
  eligible(): ClientRecord[] {
    return [...this.clients.values()].filter((c) => c.online && c.ready);
  }

  /** A rejoin (known token) or a new client; `isNew` tells which. Capacity is the granted one. */
  admit(req: JoinRequest, capacity: number, newToken: () => string): { record: ClientRecord; isNew: boolean } {
    const known = req.token === undefined ? undefined : this.byTokenOf(req.token);
    if (known) {
      known.online = true;
      known.ready = false;
      known.capacity = capacity;
      known.backend = req.backend;
      return { record: known, isNew: false };
    }
    const token = newToken();
    const rec: ClientRecord = {
      id: `c${this.nextClientNo++}`,
      token,
      capacity,
      backend: req.backend,
      label: req.label?.trim() || undefined,
      shard: this.nextShard++ % this.shards,
      online: true,
      ready: false,
      experts: [],
      lastRound: 0,
      accuracy: null,
    };
    this.clients.set(rec.id, rec);
    this.byToken.set(token, rec.id);
    return { record: rec, isNew: true };
  }

  /** A new run: everyone stays registered, their round history is forgotten. */
  resetRounds(): void {
    for (const c of this.clients.values()) {
      c.experts = [];
      c.lastRound = 0;
      c.accuracy = null;
    }
  }
}

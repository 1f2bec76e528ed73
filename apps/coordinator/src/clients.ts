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
  /** The token this one replaced, accepted once more while the current one is unconfirmed (a lost ack). */
  prevToken: string | null;
  /** The current token was used after it was issued (an event on the session that received it). */
  confirmed: boolean;
  /** The one live connection of this client (a socket id), or null. Only its events and its drop count. */
  session: string | null;
  /** Clock time of the last join or event; offline clients are pruned by it. */
  lastSeen: number;
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
  prevToken?: string | null;
  lastSeen?: number;
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
    prevToken: c.prevToken,
    lastSeen: c.lastSeen,
  };
}

/** What a join with this request did to the registry. */
export type Admission =
  | { kind: "unknown" }
  /** A replaced token came back after its successor was confirmed: the client is revoked (no valid token left). */
  | { kind: "reused"; record: ClientRecord; ended: string | null }
  /** `ended`: the session this join superseded, if another was live. */
  | { kind: "joined"; record: ClientRecord; isNew: boolean; ended: string | null };

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
  /** Current and previous tokens -> client id. */
  private readonly byToken = new Map<string, string>();
  private nextClientNo = 1;
  private nextShard = 0;

  constructor(
    private readonly shards: number,
    restored: readonly PersistedClient[] = [],
    now = 0,
  ) {
    for (const p of restored) this.restore(p, now);
  }

  private restore(p: PersistedClient, now: number): void {
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
      prevToken: p.prevToken ?? null,
      // A restart cannot know whether the last token reached its page: accept the previous one once more.
      confirmed: false,
      session: null,
      lastSeen: p.lastSeen ?? now,
    };
    this.clients.set(rec.id, rec);
    this.byToken.set(rec.token, rec.id);
    if (rec.prevToken !== null) this.byToken.set(rec.prevToken, rec.id);
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

  get size(): number {
    return this.clients.size;
  }

  get(id: string): ClientRecord | undefined {
    return this.clients.get(id);
  }

  /** The client a current or previous token belongs to. */
  byTokenOf(token: string): ClientRecord | undefined {
    const id = this.byToken.get(token);
    return id === undefined ? undefined : this.clients.get(id);
  }

  /** Online and ready. */
  eligible(): ClientRecord[] {
    return [...this.clients.values()].filter((c) => c.online && c.ready);
  }

  /**
   * A join on connection `session`: a new client, or a rejoin with a token, which is rotated (the
   * answer carries a new one; the old one is accepted once more only until the new one is confirmed,
   * refresh-token rotation with reuse detection) and supersedes the client's previous connection.
   */
  admit(req: JoinRequest, capacity: number, newToken: () => string, session: string | null, now: number): Admission {
    if (req.token !== undefined) {
      const known = this.byTokenOf(req.token);
      if (!known) return { kind: "unknown" };
      const ended = known.session !== session ? known.session : null;
      if (req.token === known.prevToken && known.confirmed) {
        // Both the old and the new token are in use: one of the two holders copied it. Neither keeps it.
        this.setTokens(known, newToken(), null);
        known.online = false;
        known.ready = false;
        known.session = null;
        return { kind: "reused", record: known, ended };
      }
      // The current token (or the previous one after an answer that never arrived) becomes the previous one.
      this.setTokens(known, newToken(), req.token);
      known.online = true;
      known.ready = false;
      known.capacity = capacity;
      known.backend = req.backend;
      known.session = session;
      known.lastSeen = now;
      return { kind: "joined", record: known, isNew: false, ended };
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
      prevToken: null,
      confirmed: false,
      session,
      lastSeen: now,
    };
    this.clients.set(rec.id, rec);
    this.byToken.set(token, rec.id);
    return { kind: "joined", record: rec, isNew: true, ended: null };
  }

  private forgetTokens(rec: ClientRecord): void {
    this.byToken.delete(rec.token);
    if (rec.prevToken !== null) this.byToken.delete(rec.prevToken);
  }

  private setTokens(rec: ClientRecord, token: string, prev: string | null): void {
    this.forgetTokens(rec);
    rec.token = token;
    rec.prevToken = prev;
    rec.confirmed = false;
    this.byToken.set(token, rec.id);
    if (prev !== null) this.byToken.set(prev, rec.id);
  }

  /**
   * The client, if `session` is its live connection (or no session is given: in-process callers);
   * an event from it confirms the current token and counts as activity.
   */
  current(id: string, session: string | undefined, now: number): ClientRecord | undefined {
    const rec = this.clients.get(id);
    if (!rec || (session !== undefined && rec.session !== session)) return undefined;
    if (session !== undefined) rec.confirmed = true;
    rec.lastSeen = now;
    return rec;
  }

  /**
   * Forgets offline clients not seen since `before` (their tokens stop working); returns their ids.
   * `keep` (the open round's participants) are never pruned.
   */
  prune(before: number, keep: ReadonlySet<string> = new Set()): string[] {
    const gone: string[] = [];
    for (const c of this.clients.values()) {
      if (c.online || c.lastSeen >= before || keep.has(c.id)) continue;
      gone.push(c.id);
    }
    for (const id of gone) {
      this.forgetTokens(this.clients.get(id) as ClientRecord);
      this.clients.delete(id);
    }
    return gone;
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

/**
 * What the cluster's processes share through Redis 7, in one place: key names, JSON streams, blobs by
 * content hash, the leader's lease and epoch fence, and edge heartbeats. Nothing here decides
 * anything; the leader and the edges do (docs/scale-out.md lists every key and its size).
 */
import { createHash, randomBytes } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import type { z } from "zod";

/** Every key of one cluster, under a prefix (several clusters can share a Redis). */
export function clusterKeys(prefix: string) {
  return {
    /** The leader's resolved config (JSON): what the edges build their shards and layout from. */
    config: `${prefix}:config`,
    /** Leader epoch, INCR'd by each new lease holder; stamped on every control message. */
    epoch: `${prefix}:epoch`,
    /** The lease: the holder's id, with a TTL the holder keeps renewing. */
    leader: `${prefix}:leader`,
    /** The last applied round's checkpoint (store/checkpoint.ts's bytes), written fenced by the epoch. */
    checkpoint: `${prefix}:checkpoint`,
    /** Hash token -> client id, for a client's current and previous token. */
    tokens: `${prefix}:tokens`,
    /** Hash of one client: token, prev (the token it replaced), confirmed (the current one was used), shard. */
    ident: (id: string) => `${prefix}:ident:${id}`,
    /** The run's id and applied rounds (JSON), what a join answers. */
    run: `${prefix}:run`,
    /** The leader's view for operators (JSON): epoch, phase, the open round, the last rounds. */
    status: `${prefix}:status`,
    /** The dashboard's state (core's DashboardState less the join URLs, which each edge adds). */
    dashboard: `${prefix}:dashboard`,
    /** Counter of client ids. */
    seq: `${prefix}:seq`,
    /** Hash client id -> {"edge","capacity"} of clients ready for a round. */
    ready: `${prefix}:ready`,
    /** Hash client id -> "<edge> <socket id>": its live connection. */
    session: `${prefix}:session`,
    /** An edge's heartbeat (expiring). */
    edge: (id: string) => `${prefix}:edge:${id}`,
    /** A blob by its SHA-256 (expiring): round models and partials. */
    blob: (hash: string) => `${prefix}:blob:${hash}`,
    /** The open round's announcement (JSON), for an edge that starts or reconnects mid-round. */
    open: `${prefix}:open`,
    /** Stream leader -> edges: rounds opened, closed, abandoned. */
    ctl: `${prefix}:ctl`,
    /** Stream edges -> leader: partials and readiness nudges. */
    up: `${prefix}:up`,
    /** Socket.IO's Redis streams adapter (cross-edge socket commands: superseding a connection). */
    sio: `${prefix}:sio`,
  };
}
export type ClusterKeys = ReturnType<typeof clusterKeys>;

/** How long a blob (a round's model, an edge's partial) stays in Redis. */
export const BLOB_TTL_S = 3600;
/** Entries a stream keeps (approximately): control traffic, not data. */
const STREAM_MAXLEN = 10_000;

/** A connection that waits out a Redis restart instead of failing commands (the run continues). */
export function connectRedis(url: string, name: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    ...extra,
  });
}

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const FENCED_SET = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2]) return 1 else return 0 end`;

export const sha256Hex = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

export class Bus {
  readonly keys: ClusterKeys;

  constructor(
    /** Commands (never blocked). */
    readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = clusterKeys(prefix);
  }

  async putBlob(bytes: Uint8Array): Promise<string> {
    const hash = sha256Hex(bytes);
    await this.redis.set(this.keys.blob(hash), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), "EX", BLOB_TTL_S);
    return hash;
  }

  /** The blob, checked against its hash (null when absent or not what was stored). */
  async getBlob(hash: string): Promise<Uint8Array | null> {
    const b = await this.redis.getBuffer(this.keys.blob(hash));
    if (b === null || sha256Hex(b) !== hash) return null;
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  async publish(stream: string, msg: unknown): Promise<string> {
    return (await this.redis.xadd(stream, "MAXLEN", "~", STREAM_MAXLEN, "*", "m", JSON.stringify(msg))) as string;
  }

  /** The id of a stream's newest entry ("0-0" when empty): where a reader that ignores the past starts. */
  async lastId(stream: string): Promise<string> {
    const r = await this.redis.xrevrange(stream, "+", "-", "COUNT", 1);
    return r[0]?.[0] ?? "0-0";
  }

  /** Tries to take the lease; true when this holder has it. */
  async acquireLease(holder: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.leader, holder, "PX", ttlMs, "NX")) === "OK";
  }
  async renewLease(holder: string, ttlMs: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.keys.leader, holder, ttlMs)) === 1;
  }
  async releaseLease(holder: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.keys.leader, holder);
  }

  /** Sets key only while the epoch is still `epoch` (a stale leader cannot overwrite its successor's state). */
  async fencedSet(key: string, epoch: number, value: Uint8Array): Promise<boolean> {
    const v = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return Number(await this.redis.eval(FENCED_SET, 2, this.keys.epoch, key, String(epoch), v)) === 1;
  }
}

/**
 * Reads a JSON stream with a blocking connection of its own, from `after` on, and hands each entry
 * that parses with `schema` to `onMessage` (others are logged by `onInvalid` and skipped). The loop
 * runs until stop(); a Redis restart only delays it (the connection retries).
 */
export class StreamReader<S extends z.ZodType> {
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly redis: Redis,
    stream: string,
    after: string,
    schema: S,
    onMessage: (m: z.infer<S>) => Promise<void> | void,
    onInvalid: (why: string) => void,
    blockMs = 500,
  ) {
    let last = after;
    this.done = (async () => {
      while (!this.stopped) {
        let res: [string, [string, string[]][]][] | null;
        try {
          res = (await this.redis.xread("COUNT", 100, "BLOCK", blockMs, "STREAMS", stream, last)) as typeof res;
        } catch (e) {
          if (this.stopped) return;
          onInvalid(`xread ${stream}: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            last = id;
            const raw = fields[1];
            let parsed: ReturnType<S["safeParse"]>;
            try {
              parsed = schema.safeParse(JSON.parse(raw ?? "null")) as ReturnType<S["safeParse"]>;
            } catch {
              onInvalid(`${stream} ${id}: not JSON`);
              continue;
            }
            if (!parsed.success) {
              onInvalid(`${stream} ${id}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
              continue;
            }
            await onMessage(parsed.data as z.infer<S>);
          }
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // Unblocks a pending XREAD at once.
    this.redis.disconnect();
    await this.done.catch(() => undefined);
  }
}

export const newId = (): string => randomBytes(6).toString("hex");

/**
 * Defences at the socket boundary: token buckets per connection and per address, live connections
 * per address, a bounded Socket.IO parser, and counters of what was turned away (exposed in
 * /api/status as `rejected`).
 */
import type { ErrorCode } from "@flexmoe/core";
import { Decoder, Encoder, PacketType } from "socket.io-parser";
import type { Clock, TimerHandle } from "./clock.ts";

/** Events a client may send; anything else is ignored and counted. */
export const CLIENT_EVENTS: ReadonlySet<string> = new Set(["client:join", "client:ready", "update:submit"]);

/** `burst` requests at once, refilled at `perSec`. Time comes from the injected clock. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly perSec: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Take one token if there is one. */
  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSec);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface RejectedCounts {
  /** Requests answered with an error, total and by code. */
  total: number;
  byCode: Partial<Record<ErrorCode, number>>;
  /** Events outside the protocol, ignored. */
  unknownEvents: number;
}

export class RejectStats {
  private total = 0;
  private unknown = 0;
  private readonly byCode = new Map<ErrorCode, number>();

  rejected(code: ErrorCode): void {
    this.total++;
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }

  unknownEvent(): void {
    this.unknown++;
  }

  snapshot(): RejectedCounts {
    return { total: this.total, byCode: Object.fromEntries(this.byCode), unknownEvents: this.unknown };
  }
}

/** Network-level bounds. Defaults are sized for a classroom behind one NAT address. */
export interface NetLimits {
  /** Live Engine.IO connections per remote address. */
  connectionsPerIp: number;
  /** `client:join` token bucket per remote address (a per-connection bucket is bypassed by opening more). */
  joinBurstPerIp: number;
  joinPerSecPerIp: number;
  /** Binary attachments per Socket.IO packet: the protocol sends at most one (the weight frame). */
  maxAttachments: number;
  /** A text packet larger than this drops the connection (protocol text is metadata; weights are binary). */
  maxTextPacketBytes: number;
  /** How long a binary packet's header may wait for its attachment before the connection is dropped. */
  partialPacketMs: number;
}

export const DEFAULT_NET_LIMITS: NetLimits = {
  connectionsPerIp: 64,
  joinBurstPerIp: 64,
  joinPerSecPerIp: 2,
  maxAttachments: 1,
  maxTextPacketBytes: 64 * 1024,
  partialPacketMs: 120_000,
};

/** Live connections per key (remote address). */
export class ConnectionCounter {
  private readonly live = new Map<string, number>();
  constructor(private readonly cap: number) {}
  full(key: string): boolean {
    return (this.live.get(key) ?? 0) >= this.cap;
  }
  /** Count one more; false (and not counted) when the key is at the cap. */
  add(key: string): boolean {
    if (this.full(key)) return false;
    this.live.set(key, (this.live.get(key) ?? 0) + 1);
    return true;
  }
  remove(key: string): void {
    const n = (this.live.get(key) ?? 0) - 1;
    if (n > 0) this.live.set(key, n);
    else this.live.delete(key);
  }
  count(key: string): number {
    return this.live.get(key) ?? 0;
  }
}

/** One token bucket per key; idle keys are forgotten once their bucket would be full again. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, { bucket: TokenBucket; last: number }>();
  constructor(
    private readonly burst: number,
    private readonly perSec: number,
    private readonly clock: Clock,
  ) {}
  take(key: string): boolean {
    const now = this.clock.now();
    let entry = this.buckets.get(key);
    if (!entry) {
      if (this.buckets.size >= 4096) this.sweep(now);
      entry = { bucket: new TokenBucket(this.burst, this.perSec, this.clock), last: now };
      this.buckets.set(key, entry);
    }
    entry.last = now;
    return entry.bucket.take();
  }
  private sweep(now: number): void {
    const refillMs = (this.burst / this.perSec) * 1000;
    for (const [k, e] of this.buckets) if (now - e.last >= refillMs) this.buckets.delete(k);
  }
}

/** "http://host:port" as the browser writes it in `Origin`, or null when `url` is not one. */
export function originOf(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.origin : null;
  } catch {
    return null;
  }
}

/** IPv4 peers on a dual-stack socket arrive as ::ffff:a.b.c.d; count them as a.b.c.d. */
export function addressOf(remote: string | undefined): string {
  return (remote ?? "unknown").replace(/^::ffff:/, "");
}

interface RawConnection {
  remoteAddress: string;
  close(): void;
  once(ev: "close", fn: () => void): void;
}

/**
 * The strict per-address count on an engine.io server: handshakes that passed allowRequest together
 * may still overshoot; those are closed.
 */
export function enforceConnectionCap(
  engine: { on(ev: "connection", fn: (raw: RawConnection) => void): unknown },
  connections: ConnectionCounter,
): void {
  engine.on("connection", (raw) => {
    const ip = addressOf(raw.remoteAddress);
    if (!connections.add(ip)) {
      raw.close();
      return;
    }
    raw.once("close", () => connections.remove(ip));
  });
}

const LOOPBACK: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Whether a request's Origin may use the API and sockets: none (not a browser), loopback, or an allowed one (read per check). */
export function originPolicy(allowed: () => readonly string[]): (origin: string | undefined) => boolean {
  return (origin) => {
    if (origin === undefined) return true; // not a browser page (socket.io-client in Node, curl, flexmoe admin)
    const o = originOf(origin);
    if (o === null) return false; // "null" (sandboxed frames, file://) and garbage
    if (LOOPBACK.has(new URL(o).hostname)) return true;
    return allowed().some((a) => originOf(a) === o);
  };
}

/**
 * Socket.IO's parser with bounds: at most `maxAttachments` binaries per packet, text packets of at
 * most `maxTextPacketBytes`, and a binary packet's header may wait at most `partialPacketMs` for its
 * attachments. A violation drops that connection (Socket.IO closes a client whose decoder throws).
 */
export function boundedParser(limits: NetLimits, clock: Clock) {
  class BoundedDecoder extends Decoder {
    private partial: TimerHandle | null = null;

    constructor() {
      super({ maxAttachments: limits.maxAttachments });
      this.on("decoded", () => this.settle());
    }

    override add(obj: unknown): void {
      if (typeof obj === "string" && obj.length > limits.maxTextPacketBytes)
        throw new Error(`text packet of ${obj.length} bytes (limit ${limits.maxTextPacketBytes})`);
      super.add(obj);
      const type = typeof obj === "string" ? Number(obj.charAt(0)) : -1;
      if ((type === PacketType.BINARY_EVENT || type === PacketType.BINARY_ACK) && !this.partial)
        this.partial = clock.timeout(limits.partialPacketMs, () => this.expire());
    }

    override destroy(): void {
      this.settle();
      super.destroy();
    }

    private settle(): void {
      this.partial?.cancel();
      this.partial = null;
    }

    /**
     * Free the held header, then hand Socket.IO's Client a packet it answers by closing the
     * connection (a CONNECT_ERROR from a client is an invalid state: client.js `ondecoded`).
     */
    private expire(): void {
      this.partial = null;
      super.destroy();
      this.emitReserved("decoded", { type: PacketType.CONNECT_ERROR, nsp: "/" });
    }
  }
  return { Encoder, Decoder: BoundedDecoder };
}

/**
 * Defences at the socket boundary: a token bucket per connection and counters of what was turned
 * away (exposed in /api/status as `rejected`).
 */
import type { ErrorCode } from "@flexmoe/core";
import type { Clock } from "./clock.ts";

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

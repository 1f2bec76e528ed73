/**
 * The page's round sequencing, apart from the training itself: one round at a time; a round that
 * starts while another still runs here makes that one stale (the server closed it at its deadline),
 * so it is aborted and the new one runs next; after a round that was not answered the page must
 * declare itself ready again (the server dropped it from the ready set).
 */
import type { RoundStart } from "@flexmoe/core";

export interface AbortFlag {
  aborted: boolean;
}

export interface RoundQueueDeps {
  /** Train and answer one round; resolves true when the server took the update. */
  run(start: RoundStart, signal: AbortFlag): Promise<boolean>;
  /** Nothing left to run; `answered` says whether the last round was taken. */
  idle(answered: boolean): void;
}

export class RoundQueue {
  private running: AbortFlag | null = null;
  private next: RoundStart | null = null;

  constructor(private readonly deps: RoundQueueDeps) {}

  get busy(): boolean {
    return this.running !== null;
  }

  /** A round:started arrived. */
  started(start: RoundStart): void {
    if (this.running) {
      // Only the newest round matters: an older pending one is stale too.
      this.next = start;
      this.running.aborted = true;
      return;
    }
    void this.loop(start);
  }

  /** Abort what runs and forget what waits (the connection dropped, or the page left). */
  abort(): void {
    this.next = null;
    if (this.running) this.running.aborted = true;
  }

  private async loop(first: RoundStart): Promise<void> {
    let start: RoundStart | null = first;
    let answered = false;
    while (start) {
      const signal: AbortFlag = { aborted: false };
      this.running = signal;
      try {
        answered = await this.deps.run(start, signal);
      } catch {
        answered = false;
      }
      start = this.next;
      this.next = null;
    }
    this.running = null;
    this.deps.idle(answered);
  }
}

/** Time and timers are injected so tests can drive rounds without sleeping. */
export interface TimerHandle {
  cancel(): void;
}
export interface Clock {
  now(): number;
  /** Every timer has an owner: whoever holds the handle cancels it. */
  timeout(ms: number, fn: () => void): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  timeout(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

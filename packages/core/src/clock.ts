/** Time and timers are injected so rounds can be driven without sleeping (the coordinator's system clock, tests' manual one). */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Every timer has an owner: whoever holds the handle cancels it. */
  timeout(ms: number, fn: () => void): TimerHandle;
}

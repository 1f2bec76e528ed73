/** The real clock; the Clock interface is core's, so tests pass testkit's ManualClock. */
import type { Clock } from "@flexmoe/core";

export type { Clock, TimerHandle } from "@flexmoe/core";

export const systemClock: Clock = {
  now: () => Date.now(),
  timeout(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Seeded pseudo-random numbers. Every random decision in the project takes an `Rng`,
 * so a seed recorded in a round log reproduces the run.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** Gamma(shape, 1) (Marsaglia-Tsang), used for Dirichlet draws. */
  gamma(shape: number): number;
  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[];
  /** A new independent generator derived from this one (for per-client streams). */
  fork(): Rng;
}

/** sfc32 seeded through splitmix32: fast, 128-bit state, good enough for simulation. */
export function createRng(seed: number): Rng {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const u32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) u32();
  const next = (): number => u32() / 4294967296;
  const normal = (): number => {
    let u = 0;
    while (u === 0) u = next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  const gamma = (shape: number): number => {
    if (!(shape > 0)) throw new RangeError(`gamma: shape must be > 0, got ${shape}`);
    if (shape < 1) return gamma(shape + 1) * Math.pow(next() || Number.MIN_VALUE, 1 / shape);
    const dd = shape - 1 / 3;
    const cc = 1 / Math.sqrt(9 * dd);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = normal();
        v = 1 + cc * x;
      } while (v <= 0);
      v = v * v * v;
      const u = next();
      if (u < 1 - 0.0331 * x * x * x * x) return dd * v;
      if (Math.log(u) < 0.5 * x * x + dd * (1 - v + Math.log(v))) return dd * v;
    }
  };
  const rng: Rng = {
    next,
    int: (n) => Math.floor(next() * n),
    normal,
    gamma,
    shuffle<T>(items: T[]): T[] {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        const tmp = items[i] as T;
        items[i] = items[j] as T;
        items[j] = tmp;
      }
      return items;
    },
    fork: () => createRng(u32()),
  };
  return rng;
}

/** FNV-1a of a string, as a u32 seed. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/**
 * A seeded stream per purpose ("partition", "init", "assign:3", ...), so a decision does not depend
 * on how many draws other decisions made before it: the simulator and the coordinator derive the
 * same streams from the same seed, and a restarted coordinator gets round t's stream back.
 */
export function streamRng(seed: number, tag: string): Rng {
  // The seed only enters through the text: xoring it into the basis as well would cancel against
  // its own last digit and make every seed hash alike.
  return createRng(hashSeed(`${seed >>> 0}:${tag}`));
}

/** A client's own stream for a purpose ("gate", "train:3"), from what both sides know: the run and the client id. */
export function clientRng(runId: string, clientId: string, purpose: string): Rng {
  return createRng(hashSeed(`${runId}/${clientId}/${purpose}`));
}

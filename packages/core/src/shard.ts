/**
 * Compact binary form of one client's data shard (train + held-out split), as the
 * coordinator serves it and the page decodes it. Pixels are quantized to bytes: 4x smaller
 * than float32 and lossless for MNIST-style data, which is stored at 8 bits anyway.
 *
 * Layout (little-endian): "FMD1" | u32 nTrain | u32 nTest | u8 numClasses | u8 h | u8 w | u8 c
 *                         | pixels (nTrain+nTest)*h*w*c bytes | labels (nTrain+nTest) bytes
 */
import type { LabeledSet } from "./types.ts";
import { err, ok, type Result } from "./result.ts";

const MAGIC = [0x46, 0x4d, 0x44, 0x31]; // "FMD1"
const HEADER = 16;

export interface Shard {
  train: LabeledSet;
  test: LabeledSet;
}

/** Select `indices` of `set` into a new LabeledSet (copies). */
export function subset(set: LabeledSet, indices: ArrayLike<number>): LabeledSet {
  const d = set.shape[0] * set.shape[1] * set.shape[2];
  const x = new Float32Array(indices.length * d);
  const y = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i] as number;
    x.set(set.x.subarray(src * d, src * d + d), i * d);
    y[i] = set.y[src] as number;
  }
  return { x, y, n: indices.length, shape: [...set.shape], numClasses: set.numClasses };
}

export function encodeShard(shard: Shard): Uint8Array {
  const { train, test } = shard;
  const [h, w, c] = train.shape;
  const d = h * w * c;
  const n = train.n + test.n;
  const out = new Uint8Array(HEADER + n * d + n);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, train.n, true);
  view.setUint32(8, test.n, true);
  out[12] = train.numClasses;
  out[13] = h;
  out[14] = w;
  out[15] = c;
  let p = HEADER;
  for (const set of [train, test]) {
    for (let i = 0; i < set.n * d; i++) out[p++] = Math.round(Math.min(1, Math.max(0, set.x[i] as number)) * 255);
  }
  out.set(train.y.subarray(0, train.n), p);
  out.set(test.y.subarray(0, test.n), p + train.n);
  return out;
}

export function decodeShard(bytes: Uint8Array): Result<Shard, { code: "BAD_FRAME"; message: string }> {
  const bad = (message: string) => err({ code: "BAD_FRAME" as const, message });
  if (bytes.length < HEADER || MAGIC.some((m, i) => bytes[i] !== m)) return bad("shard: bad magic");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nTrain = view.getUint32(4, true);
  const nTest = view.getUint32(8, true);
  const numClasses = bytes[12] as number;
  const shape: [number, number, number] = [bytes[13] as number, bytes[14] as number, bytes[15] as number];
  const d = shape[0] * shape[1] * shape[2];
  const n = nTrain + nTest;
  if (bytes.length !== HEADER + n * d + n) return bad(`shard: expected ${HEADER + n * d + n} bytes, got ${bytes.length}`);
  const labels = bytes.subarray(HEADER + n * d);
  for (let i = 0; i < n; i++) if ((labels[i] as number) >= numClasses) return bad(`shard: label ${labels[i]} >= ${numClasses}`);
  const take = (start: number, count: number): LabeledSet => {
    const x = new Float32Array(count * d);
    const px = bytes.subarray(HEADER + start * d, HEADER + (start + count) * d);
    for (let i = 0; i < x.length; i++) x[i] = (px[i] as number) / 255;
    return { x, y: labels.slice(start, start + count), n: count, shape: [...shape], numClasses };
  };
  return ok({ train: take(0, nTrain), test: take(nTrain, nTest) });
}

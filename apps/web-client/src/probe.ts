/**
 * A quick device probe for the default capacity (how many experts this page holds): what the
 * browser says about memory and cores, the backend, and a ~100 ms matMul benchmark on it.
 * The volunteer can change the result; the coordinator may cap it.
 */
import * as tf from "@tensorflow/tfjs";
import type { TfBackend } from "./backend.ts";

export interface DeviceProbe {
  capacity: number;
  memoryGb: number | null;
  cores: number | null;
  /** Millions of multiply-adds per millisecond in the benchmark (higher is faster). */
  speed: number;
  summary: string;
}

const MAX_AUTO_CAPACITY = 4;

async function benchmark(): Promise<number> {
  const n = 128;
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  // Warm up (shader compilation), then time a few products.
  const warm = tf.matMul(a, b);
  await warm.data();
  warm.dispose();
  const reps = 8;
  const t0 = performance.now();
  let out = tf.matMul(a, b);
  for (let i = 1; i < reps; i++) {
    const next = tf.matMul(out, b);
    out.dispose();
    out = next;
  }
  await out.data();
  const ms = Math.max(0.1, performance.now() - t0);
  out.dispose();
  a.dispose();
  b.dispose();
  return (reps * n * n * n) / 1e6 / ms;
}

export async function probeDevice(backend: TfBackend): Promise<DeviceProbe> {
  const nav = navigator as Navigator & { deviceMemory?: number };
  const memoryGb = nav.deviceMemory ?? null;
  const cores = navigator.hardwareConcurrency || null;
  let speed = 0;
  try {
    speed = await benchmark();
  } catch {
    speed = 0;
  }
  // Speed bands measured roughly: phones on CPU ~1, laptops on WebGL/WASM ~10+, GPUs ~100+.
  // The floor is 2, not 1: an expert head (64-32-10, ~2.4k weights) costs under 1% of the CNN
  // backbone's ~330k multiply-adds per sample, and with one expert per page a small class
  // (3 pages, 8 experts) leaves most experts idle each round while the load bounds rotate the
  // slots, so every page keeps getting experts nobody has trained.
  let capacity = speed >= 10 ? 4 : speed >= 2 ? 3 : 2;
  if (backend === "cpu") capacity = Math.min(capacity, 2);
  if (memoryGb !== null && memoryGb < 1) capacity = 1;
  else if (memoryGb !== null && memoryGb < 4) capacity = Math.min(capacity, 2);
  capacity = Math.max(1, Math.min(MAX_AUTO_CAPACITY, capacity));
  const parts = [`${backend}`, `${speed.toFixed(1)} MMAC/ms`];
  if (memoryGb !== null) parts.push(`${memoryGb} GB`);
  if (cores !== null) parts.push(`${cores} cores`);
  return { capacity, memoryGb, cores, speed, summary: parts.join(", ") };
}

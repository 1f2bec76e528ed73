/**
 * Pick the fastest TensorFlow.js backend that works on this device: WebGPU, then WebGL,
 * then WASM, then CPU. `?backend=` forces one. A backend "works" when a tiny op runs on it.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import wasmPlain from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url";
import wasmSimd from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url";
import wasmThreaded from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url";
import type { BackendName } from "@flexmoe/core";

export type TfBackend = Exclude<BackendName, "synthetic">;
export const BACKEND_ORDER: readonly TfBackend[] = ["webgpu", "webgl", "wasm", "cpu"];

setWasmPaths({
  "tfjs-backend-wasm.wasm": wasmPlain,
  "tfjs-backend-wasm-simd.wasm": wasmSimd,
  "tfjs-backend-wasm-threaded-simd.wasm": wasmThreaded,
});

export interface BackendChoice {
  backend: TfBackend;
  /** Why faster backends were skipped, for the page to say. */
  skipped: string[];
}

async function tryBackend(name: TfBackend): Promise<string | null> {
  if (name === "webgpu") {
    if (!("gpu" in navigator))
      return window.isSecureContext ? "WebGPU is not available in this browser" : "WebGPU needs a secure context (https or localhost)";
  }
  try {
    if (!(await tf.setBackend(name))) return `${name} failed to initialize`;
    await tf.ready();
    const probe = tf.tidy(() => tf.matMul(tf.ones([4, 4]), tf.ones([4, 4])).sum());
    const v = (await probe.data())[0];
    probe.dispose();
    return v === 64 ? null : `${name} computed a wrong result`;
  } catch (e) {
    return `${name}: ${(e as Error).message}`;
  }
}

export async function chooseBackend(forced: string | null): Promise<BackendChoice> {
  const order = forced && (BACKEND_ORDER as readonly string[]).includes(forced) ? [forced as TfBackend] : BACKEND_ORDER;
  const skipped: string[] = [];
  for (const name of order) {
    const why = await tryBackend(name);
    if (why === null) return { backend: name, skipped };
    skipped.push(why);
  }
  // The CPU backend always exists; if even a forced backend failed, fall back to it.
  await tf.setBackend("cpu");
  return { backend: "cpu", skipped };
}

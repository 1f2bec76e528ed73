/**
 * TensorFlow.js backend setup for Node simulations. Node has no GPU backend here: "wasm" is the
 * fast one but lacks Conv2D gradients (use the dense preset), "cpu" runs everything, slowly.
 */
import * as tf from "@tensorflow/tfjs";
// Registers the "wasm" backend; in Node the package's main build finds its .wasm files next to itself.
import "@tensorflow/tfjs-backend-wasm";

export type NodeBackend = "wasm" | "cpu";

/**
 * Selects and initializes a backend, returning the tf namespace for convenience.
 * `quiet` (default) turns on TF.js production mode, whose only effect in 4.x is to drop
 * console warnings such as the CPU backend's "install tfjs-node" banner.
 */
export async function initNodeBackend(name: NodeBackend = "wasm", opts: { quiet?: boolean } = {}): Promise<typeof tf> {
  if (opts.quiet ?? true) tf.enableProdMode();
  if (tf.getBackend() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`TensorFlow.js backend '${name}' failed to initialize`);
  }
  await tf.ready();
  return tf;
}

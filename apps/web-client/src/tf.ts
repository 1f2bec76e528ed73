/**
 * The page's TensorFlow.js: what the "@tensorflow/tfjs" bundle is, minus layers, converter, data and
 * its built-in CPU and WebGL backends (backends load on demand, backend.ts). The build points
 * "@tensorflow/tfjs" at this file (vite.config.ts), so @flexmoe/model's ops and gradients resolve here.
 */
import "@tensorflow/tfjs-core/dist/register_all_gradients";
import "@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops";

export * from "@tensorflow/tfjs-core";

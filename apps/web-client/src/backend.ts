/**
 * TF.js on demand. The page's first script has no TF.js: main.ts imports this module when the join
 * has told it the model, and each backend is its own chunk, loaded when it is measured or used (the
 * WASM binary is fetched only when the WASM backend initializes). The choice itself is
 * backend-choice.ts's `decideBackend`, on what `measureBackends` timed: real training steps of the
 * model this page will train, on every candidate that is there and not a software GPU (SwiftShader).
 */
import * as tf from "./tf.ts";
import { MoeTrainer } from "@flexmoe/model";
import type { ModelSpec } from "@flexmoe/model/spec";
import {
  BACKEND_LABEL,
  BACKEND_ORDER,
  decideBackend,
  needlessProbe,
  softwareAdapterReason,
  type AdapterInfoLike,
  type BackendDecision,
  type ProbeResult,
  type TfBackend,
} from "./backend-choice.ts";
import { timeTraining } from "./probe.ts";

export { MoeTrainer };
export { probeDevice } from "./probe.ts";

const LOADERS: Readonly<Record<TfBackend, () => Promise<unknown>>> = {
  webgpu: () => import("@tensorflow/tfjs-backend-webgpu"),
  webgl: () => import("@tensorflow/tfjs-backend-webgl"),
  wasm: () => import("./wasm.ts"),
  cpu: () => import("@tensorflow/tfjs-backend-cpu"),
};

/** The slice of WebGPU's API this file reads, including what older and newer Chromes differ in. */
interface GpuAdapterLike {
  info?: AdapterInfoLike;
  isFallbackAdapter?: boolean;
  requestAdapterInfo?: () => Promise<AdapterInfoLike>;
}
interface GpuLike {
  requestAdapter(opts?: { powerPreference?: "high-performance" | "low-power" }): Promise<GpuAdapterLike | null>;
}

/** Why WebGPU is not worth measuring on this page, or null. */
async function webgpuSkipReason(): Promise<string | null> {
  const gpu = (navigator as unknown as { gpu?: GpuLike }).gpu;
  if (!gpu) return window.isSecureContext ? "not in this browser" : "needs https";
  try {
    // The same request tfjs-backend-webgpu makes, so this is the adapter it would train on.
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return "no adapter";
    const info = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? null;
    return softwareAdapterReason(info, adapter.isFallbackAdapter);
  } catch (e) {
    return `adapter request failed (${(e as Error).message})`;
  }
}

/**
 * Why WebGL is not worth measuring, or null: a software renderer (SwiftShader, llvmpipe) spends the
 * probe's whole budget compiling the CNN's shaders (16 s here) and then trains slower than WASM.
 */
function webglSkipReason(): string | null {
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl2") ?? canvas.getContext("webgl");
  if (!gl) return "not in this browser";
  const ext = gl.getExtension("WEBGL_debug_renderer_info");
  const renderer: unknown = gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return softwareAdapterReason({ description: String(renderer) }) && "software renderer";
}

/** Load, initialize and check one backend (a 4x4 matMul must give 64); null when it works, else why not. */
export async function useBackend(name: TfBackend): Promise<string | null> {
  try {
    await LOADERS[name]();
    if (!(await tf.setBackend(name))) return "failed to initialize";
    await tf.ready();
    const probe = tf.tidy(() => tf.matMul(tf.ones([4, 4]), tf.ones([4, 4])).sum());
    const v = (await probe.data())[0];
    probe.dispose();
    return v === 64 ? null : "computed a wrong result";
  } catch (e) {
    return (e as Error).message;
  }
}

export interface MeasureOptions {
  /** The whole probe's time budget; candidates not reached by then are skipped. @default 12000 */
  budgetMs?: number;
  /** Called before each candidate, for the page to say what it is doing. */
  onMeasuring?: (backend: TfBackend) => void;
}

/**
 * Time a few training steps of `spec` on every candidate, pick the fastest (`decideBackend`) and leave
 * TF.js on it. The other backends are removed afterwards (a WebGL context or WASM heap each), so
 * measuring again means a fresh page: the page's Re-measure button reloads.
 */
export async function measureBackends(spec: ModelSpec, opts: MeasureOptions = {}): Promise<BackendDecision> {
  const deadline = performance.now() + (opts.budgetMs ?? 12_000);
  const results: ProbeResult[] = [];
  for (const backend of BACKEND_ORDER) {
    const left = deadline - performance.now();
    if (left <= 0) {
      results.push({ backend, status: "skipped", reason: "probe time ran out" });
      continue;
    }
    const skip =
      backend === "webgpu" ? await webgpuSkipReason() : backend === "webgl" ? webglSkipReason() : needlessProbe(backend, results);
    if (skip !== null) {
      results.push({ backend, status: "skipped", reason: skip });
      continue;
    }
    opts.onMeasuring?.(backend);
    const broken = await useBackend(backend);
    if (broken !== null) {
      results.push({ backend, status: "failed", reason: broken });
      continue;
    }
    try {
      const best = Math.max(0, ...results.map((r) => (r.status === "measured" ? r.samplesPerSec : 0)));
      const samplesPerSec = await timeTraining(spec, { budgetMs: Math.min(1_500, left), ...(best > 0 ? { toBeat: best } : {}) });
      results.push({ backend, status: "measured", samplesPerSec });
    } catch (e) {
      results.push({ backend, status: "failed", reason: (e as Error).message });
    }
  }
  let decision = decideBackend(results);
  const broken = await useBackend(decision.backend);
  if (broken !== null && decision.backend !== "cpu") {
    await useBackend("cpu");
    decision = { backend: "cpu", summary: `CPU: ${BACKEND_LABEL[decision.backend]} failed after measuring (${broken})` };
  }
  for (const r of results) if (r.status !== "skipped" && r.backend !== decision.backend) removeBackend(r.backend);
  return decision;
}

function removeBackend(name: TfBackend): void {
  try {
    tf.removeBackend(name);
  } catch {
    // Already gone, or never registered: nothing to free.
  }
}

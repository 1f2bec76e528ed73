/**
 * Which TF.js backend the page trains on, decided from measurements. Pure (no TF.js, no DOM), so the
 * rules are unit-tested beside this file: backend.ts measures, this file turns the results into a
 * choice, the sentence the page shows, and the localStorage record that spares a return visit the probe.
 */
import type { BackendName } from "@flexmoe/core";
import type { ModelSpec } from "@flexmoe/model/spec";

export type TfBackend = BackendName;
/** Measured in this order; on equal speed the earlier one wins. */
export const BACKEND_ORDER: readonly TfBackend[] = ["webgpu", "webgl", "wasm", "cpu"];
export const BACKEND_LABEL: Readonly<Record<TfBackend, string>> = { webgpu: "WebGPU", webgl: "WebGL", wasm: "WASM", cpu: "CPU" };

export const isBackend = (s: string | null | undefined): s is TfBackend => (BACKEND_ORDER as readonly string[]).includes(s ?? "");

/** One candidate's outcome: trained (and how fast), not tried (and why), or tried and broke. */
export type ProbeResult =
  | { backend: TfBackend; status: "measured"; samplesPerSec: number }
  | { backend: TfBackend; status: "skipped"; reason: string }
  | { backend: TfBackend; status: "failed"; reason: string };

export interface BackendDecision {
  backend: TfBackend;
  /** What the page says, e.g. "WASM: 410 samples/s; WebGL 60; WebGPU skipped: software adapter". */
  summary: string;
}

const rate = (r: number): string => (r >= 10 ? String(Math.round(r)) : r.toPrecision(2));

/**
 * The fastest measured backend (samples per second of real training steps); ties go to the earlier one
 * in BACKEND_ORDER. With nothing measured it is CPU, which TF.js always has.
 *
 * @example
 * decideBackend([
 *   { backend: "webgpu", status: "skipped", reason: "software adapter" },
 *   { backend: "webgl", status: "measured", samplesPerSec: 60 },
 *   { backend: "wasm", status: "measured", samplesPerSec: 410 },
 * ]) // { backend: "wasm", summary: "WASM: 410 samples/s; WebGL 60; WebGPU skipped: software adapter" }
 */
export function decideBackend(results: readonly ProbeResult[]): BackendDecision {
  const rank = (b: TfBackend): number => BACKEND_ORDER.indexOf(b);
  const measured = results
    .filter((r): r is Extract<ProbeResult, { status: "measured" }> => r.status === "measured")
    .filter((r) => Number.isFinite(r.samplesPerSec) && r.samplesPerSec > 0)
    .sort((a, b) => b.samplesPerSec - a.samplesPerSec || rank(a.backend) - rank(b.backend));
  const others = results.filter((r) => r.status !== "measured").map((r) => `${BACKEND_LABEL[r.backend]} ${r.status}: ${r.reason}`);
  const best = measured[0];
  if (!best) return { backend: "cpu", summary: ["CPU: nothing else could be measured", ...others].join("; ") };
  const rest = measured.slice(1).map((r) => `${BACKEND_LABEL[r.backend]} ${rate(r.samplesPerSec)}`);
  return {
    backend: best.backend,
    summary: [`${BACKEND_LABEL[best.backend]}: ${rate(best.samplesPerSec)} samples/s`, ...rest, ...others].join("; "),
  };
}

/**
 * Why `backend` need not be measured after `results`, or null. TF.js's CPU backend is plain JavaScript:
 * where WASM works it runs the same kernels compiled (about 30x faster for the CNN here), and a CPU warm-up
 * batch alone takes seconds.
 */
export function needlessProbe(backend: TfBackend, results: readonly ProbeResult[]): string | null {
  if (backend === "cpu" && results.some((r) => r.backend === "wasm" && r.status === "measured")) return "not needed, WASM works";
  return null;
}

/** What a WebGPU adapter says about itself (GPUAdapterInfo, or the older requestAdapterInfo()). */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

const SOFTWARE_RENDERERS = /swiftshader|llvmpipe|lavapipe|softpipe|basic render|software/i;

/**
 * Why a GPU adapter is not worth measuring, or null: a fallback (software) adapter such as SwiftShader
 * runs the CNN slower than WASM on the same CPU, and its first shader compilations alone would take
 * the probe's whole budget. Also used for WebGL with the renderer string as `description`.
 */
export function softwareAdapterReason(info: AdapterInfoLike | null | undefined, isFallbackAdapter?: boolean): string | null {
  if (isFallbackAdapter === true || info?.isFallbackAdapter === true) return "software adapter";
  const named = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(" ");
  return SOFTWARE_RENDERERS.test(named) ? "software adapter" : null;
}

/** The localStorage record of one device's choice for one model. */
export interface BackendMemo {
  backend: TfBackend;
  /** The capacity the device test gave with that backend, and the test's one-line summary. */
  capacity: number;
  capacityTest: string;
  summary: string;
  /** ISO time of the measurement. */
  measuredAt: string;
}

const MEMO_PREFIX = "flexmoe:backend:";
/** Points at the last record written, so a return visit can join with it before it knows the model. */
export const LAST_MEMO_KEY = "flexmoe:backend-last";

/**
 * The record's key: the model spec (every field, sorted, so a new field still separates two models) and
 * the user agent (a browser update may change which backend is fastest).
 */
export function memoKey(spec: ModelSpec, userAgent: string): string {
  const fields = Object.keys(spec).sort();
  return `${MEMO_PREFIX}${JSON.stringify(spec, fields)}|${userAgent}`;
}

/** A stored record, or null when absent, unreadable or from an older layout. */
export function parseMemo(raw: string | null): BackendMemo | null {
  if (raw === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const m = v as Record<string, unknown>;
  const ok =
    typeof m.backend === "string" &&
    isBackend(m.backend) &&
    typeof m.capacity === "number" &&
    Number.isInteger(m.capacity) &&
    m.capacity >= 1 &&
    typeof m.capacityTest === "string" &&
    typeof m.summary === "string" &&
    typeof m.measuredAt === "string";
  return ok
    ? {
        backend: m.backend as TfBackend,
        capacity: m.capacity as number,
        capacityTest: m.capacityTest as string,
        summary: m.summary as string,
        measuredAt: m.measuredAt as string,
      }
    : null;
}

/**
 * Model and round-log export. The model is written in TensorFlow.js's weights format: `model.json`
 * holds a `weightsManifest` (names, shapes, dtype float32) pointing at one `weights.bin` with the
 * tensors' little-endian float32 data concatenated in manifest order. `modelTopology` is null (the
 * MoE is built in code by `@flexmoe/model`); `tf.io.loadWeights(json.weightsManifest, baseUrl)` or
 * `tf.io.decodeWeights(bin, json.weightsManifest[0].weights)` returns the named tensors.
 * Gates are personal and never reach the coordinator, so they are not in the export.
 */
import type { NamedTensor } from "@flexmoe/core";
import type { ModelSpec } from "@flexmoe/model/spec";
import type { FederationState } from "./federation.ts";

/** What an export reads: the one-process federation, or a cluster's last checkpoint. */
export interface Exportable {
  readonly snapshot: FederationState;
  readonly spec: ModelSpec;
}

export const WEIGHTS_FILE = "weights.bin";

function exportedTensors(f: Exportable): NamedTensor[] {
  const s = f.snapshot;
  return [...s.backbone, ...s.experts.flat()];
}

export function modelJson(f: Exportable) {
  const s = f.snapshot;
  return {
    format: "flexmoe-moe-weights",
    generatedBy: "flexmoe-web",
    convertedBy: null,
    modelTopology: null,
    weightsManifest: [
      { paths: [WEIGHTS_FILE], weights: exportedTensors(f).map((t) => ({ name: t.name, shape: t.shape, dtype: "float32" as const })) },
    ],
    userDefinedMetadata: {
      runId: s.runId,
      round: s.round,
      preset: f.spec.preset,
      experts: f.spec.experts,
      numClasses: f.spec.numClasses,
      inputShape: f.spec.inputShape,
      featureDim: f.spec.featureDim,
      expertHidden: f.spec.expertHidden,
    },
  };
}

/** The weights, float32 little-endian, in `modelJson`'s manifest order. */
export function weightsBin(f: Exportable): Buffer {
  const tensors = exportedTensors(f);
  const out = Buffer.alloc(tensors.reduce((n, t) => n + t.data.length * 4, 0));
  let off = 0;
  for (const t of tensors) {
    for (const v of t.data) off = out.writeFloatLE(v, off);
  }
  return out;
}

const CSV_COLUMNS = [
  "round",
  "started_at",
  "closed_at",
  "duration_ms",
  "reason",
  "strategy",
  "participants",
  "accuracy",
  "loss",
  "cv",
  "cv_routed",
  "cv_routed_cumulative",
  "max_vio",
  "starved",
  "objective",
  "load",
  "routed",
] as const;

const cell = (v: string | number | null): string => {
  if (v === null) return "";
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

/** One line per completed round; `load` and `routed` are per-expert lists joined with ';'. */
export function roundsCsv(f: Exportable): string {
  const rows = f.snapshot.history.map((h) =>
    [
      h.round,
      new Date(h.startedAt).toISOString(),
      new Date(h.closedAt).toISOString(),
      h.closedAt - h.startedAt,
      h.reason,
      h.strategy,
      h.participants,
      h.accuracy,
      h.loss,
      h.cv,
      h.cvRouted,
      h.cvRoutedCumulative,
      h.maxVio,
      h.starved,
      h.objective,
      h.load.join(";"),
      h.routed.join(";"),
    ]
      .map(cell)
      .join(","),
  );
  return [CSV_COLUMNS.join(","), ...rows].join("\n") + "\n";
}

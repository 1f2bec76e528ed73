/**
 * Wire bench: bytes a client downloads and uploads per round holding k of E experts (backbone + k experts,
 * core's clientManifest; the gate stays on the client), in float32 and float16, against the full global
 * model in float32 (backbone and all E experts, core's fullModelParams), plus encode/decode time per MB.
 */
import {
  clientTensors,
  createRng,
  decodeTensors,
  encodeTensors,
  fullModelParams,
  manifestOf,
  type NamedTensor,
  type WireDType,
} from "@flexmoe/core";
import { initWeights, modelLayout, modelSpec, type Preset } from "@flexmoe/model/spec";
import { consume, timeInterleaved, type BenchContext } from "./common.ts";
import { sig } from "./stats.ts";

export interface WireRow {
  preset: Preset;
  experts: number;
  capacity: number;
  dtype: WireDType;
  downloadBytes: number;
  /** The same frame shape as the download: backbone + the k held experts. */
  uploadBytes: number;
  /** The full global model in float32: 4 bytes per parameter of the backbone and all E experts. */
  fullModelBytes: number;
  /** downloadBytes / fullModelBytes (the upload's fraction is the same). */
  downloadFraction: number;
}

export interface WireCodecRow {
  dtype: WireDType;
  /** Frame size the timing used. */
  frameBytes: number;
  encodeMsPerMB: number;
  decodeMsPerMB: number;
}

export interface WireResult {
  rows: WireRow[];
  codec: WireCodecRow[];
}

/** Frame sizes of the cnn preset (what the page trains) at E = 8, 16, 64 and k = 1, 2, 4. */
export function wireRows(): WireRow[] {
  const rows: WireRow[] = [];
  const preset: Preset = "cnn";
  for (const E of [8, 16, 64]) {
    const spec = modelSpec(preset, E);
    const { backbone, experts } = initWeights(spec, createRng(3));
    const fullModelBytes = 4 * fullModelParams(modelLayout(spec));
    for (const k of [1, 2, 4]) {
      const held = clientTensors(
        backbone,
        experts,
        Array.from({ length: k }, (_, e) => e),
      );
      for (const dtype of ["float32", "float16"] as const) {
        const bytes = encodeTensors(held, dtype).byteLength;
        rows.push({
          preset,
          experts: E,
          capacity: k,
          dtype,
          downloadBytes: bytes,
          uploadBytes: bytes,
          fullModelBytes,
          downloadFraction: sig(bytes / fullModelBytes, 3),
        });
      }
    }
  }
  return rows;
}

export function benchWire(ctx: BenchContext): WireResult {
  ctx.progress("wire: frame sizes and codec speed");
  const rows = wireRows();

  // Codec speed on a ~2 MB frame of realistic values.
  const rng = createRng(5);
  const tensors: NamedTensor[] = Array.from({ length: 8 }, (_, i) => ({
    name: `t${i}`,
    shape: [256, 256],
    data: Float32Array.from({ length: 65536 }, () => (rng.next() - 0.5) * 0.2),
  }));
  const manifest = manifestOf(tensors);
  const reps = ctx.quick ? 9 : 25;
  const codec: WireCodecRow[] = [];
  for (const dtype of ["float32", "float16"] as const) {
    const frame = encodeTensors(tensors, dtype);
    const [encMs, decMs] = timeInterleaved(
      [
        () => consume(encodeTensors(tensors, dtype).byteLength),
        () => {
          const r = decodeTensors(frame, manifest);
          if (!r.ok) throw new Error(`wire bench: decode failed: ${r.error.message}`);
          consume(r.value.length);
        },
      ],
      reps,
      2,
    ) as [number, number];
    const mb = frame.byteLength / 1e6;
    codec.push({ dtype, frameBytes: frame.byteLength, encodeMsPerMB: sig(encMs / mb, 3), decodeMsPerMB: sig(decMs / mb, 3) });
  }
  return { rows, codec };
}

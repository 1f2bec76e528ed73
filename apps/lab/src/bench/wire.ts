/**
 * Wire bench: bytes a client downloads and uploads per round holding k of E experts (backbone + k experts;
 * the gate stays on the client), in float32 and float16, against a full model in float32 (backbone, all E
 * experts and the gate: what Disco and plain FedAvg ship), plus encode/decode time per MB.
 */
import { createRng, decodeTensors, encodeTensors, manifestOf, type NamedTensor, type WireDType } from "@flexmoe/core";
import { initBackbone, initExpert, initGate, modelSpec, type Preset } from "@flexmoe/model/spec";
import { consume, timeInterleaved, type BenchContext } from "./common.ts";
import { sig } from "./stats.ts";

export interface WireRow {
  preset: Preset;
  experts: number;
  capacity: number;
  dtype: WireDType;
  downloadBytes: number;
  uploadBytes: number;
  fullModelBytes: number;
  /** (download + upload) / (2 * fullModelBytes). */
  fractionOfFull: number;
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

export function benchWire(ctx: BenchContext): WireResult {
  ctx.progress("wire: frame sizes and codec speed");
  const rows: WireRow[] = [];
  const preset: Preset = "cnn";
  for (const E of [8, 16, 64]) {
    const spec = modelSpec(preset, E);
    const rng = createRng(3);
    const backbone = initBackbone(spec, rng);
    const experts = Array.from({ length: E }, (_, e) => initExpert(spec, e, rng));
    const gate = initGate(spec, rng);
    const fullModelBytes = encodeTensors([...backbone, ...experts.flat(), ...gate], "float32").byteLength;
    for (const k of [1, 2, 4]) {
      for (const dtype of ["float32", "float16"] as const) {
        const held = [...backbone, ...experts.slice(0, k).flat()];
        // Download and upload are the same frame shape: backbone + the k held experts.
        const bytes = encodeTensors(held, dtype).byteLength;
        rows.push({
          preset,
          experts: E,
          capacity: k,
          dtype,
          downloadBytes: bytes,
          uploadBytes: bytes,
          fullModelBytes,
          fractionOfFull: sig((2 * bytes) / (2 * fullModelBytes), 3),
        });
      }
    }
  }

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

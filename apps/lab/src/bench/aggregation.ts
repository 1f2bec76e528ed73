/**
 * Aggregation bench: one round of FLEX-MoE aggregation (aggregateRound: backbone over all N clients,
 * each expert over its holders) as bytes of updates read per second, divided by the memory-copy rate
 * (Float32Array.prototype.set of the same arrays into one buffer) measured interleaved in the same run.
 */
import { aggregateRound, createRng, type ClientRoundUpdate, type NamedTensor } from "@flexmoe/core";
import { initBackbone, initExpert, modelSpec, type Preset } from "@flexmoe/model/spec";
import { consume, timeInterleaved, type BenchContext } from "./common.ts";
import { ratio, sig } from "./stats.ts";

export interface AggregationResult {
  preset: Preset;
  clients: number;
  experts: number;
  capacity: number;
  /** Bytes of update tensors read by one aggregation. */
  updateBytes: number;
  aggregateMs: number;
  copyMs: number;
  bytesPerSec: number;
  copyBytesPerSec: number;
  /** bytesPerSec / copyBytesPerSec. */
  ratio: number | null;
  /**
   * Headroom reference, not the shipped code: the same weighted means as an input-outer axpy loop into a
   * Float64 accumulator (each update read once, sequentially), as a ratio to the copy rate.
   */
  referenceRatio: number | null;
  reps: number;
}

const perturb = (ts: readonly NamedTensor[], rng: ReturnType<typeof createRng>): NamedTensor[] =>
  ts.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.map((v) => v + 0.01 * (rng.next() - 0.5)) }));

export function benchAggregation(ctx: BenchContext): AggregationResult {
  const preset: Preset = "cnn";
  const E = 8;
  const k = 2;
  const N = ctx.quick ? 64 : 256;
  ctx.progress(`aggregation: ${N} clients, ${preset}, k=${k} of ${E}`);
  const spec = modelSpec(preset, E);
  const rng = createRng(7);
  const backbone = initBackbone(spec, rng);
  const experts = Array.from({ length: E }, (_, e) => initExpert(spec, e, rng));
  const updates: ClientRoundUpdate[] = Array.from({ length: N }, (_, c) => ({
    backbone: perturb(backbone, rng),
    numSamples: 50 + rng.int(200),
    experts: Array.from({ length: k }, (_, j) => {
      const e = (c + j * 3) % E;
      return { expert: e, tensors: perturb(experts[e] as NamedTensor[], rng), usage: 1 + rng.int(100) };
    }),
  }));
  const arrays: Float32Array[] = updates.flatMap((u) => [...u.backbone, ...u.experts.flatMap((x) => x.tensors)].map((t) => t.data));
  const updateBytes = arrays.reduce((s, a) => s + a.byteLength, 0);
  const dest = new Float32Array(updateBytes / 4);
  const copy = (): void => {
    let off = 0;
    for (const a of arrays) {
      dest.set(a, off);
      off += a.length;
    }
    consume(dest[dest.length - 1] as number);
  };
  const aggregate = (): void => {
    const out = aggregateRound(backbone, experts, updates);
    consume(out.backbone[0]?.data[0] ?? 0);
  };
  const reference = (): void => consume(referenceAggregate(backbone, experts, updates));
  const reps = ctx.quick ? 7 : 15;
  const [aggregateMs, copyMs, referenceMs] = timeInterleaved([aggregate, copy, reference], reps, 2) as [number, number, number];
  const bytesPerSec = updateBytes / (aggregateMs / 1000);
  const copyBytesPerSec = updateBytes / (copyMs / 1000);
  return {
    preset,
    clients: N,
    experts: E,
    capacity: k,
    updateBytes,
    aggregateMs: sig(aggregateMs),
    copyMs: sig(copyMs),
    bytesPerSec: sig(bytesPerSec),
    copyBytesPerSec: sig(copyBytesPerSec),
    ratio: sig(ratio(bytesPerSec, copyBytesPerSec) ?? Number.NaN),
    referenceRatio: sig(ratio(copyMs, referenceMs) ?? Number.NaN),
    reps,
  };
}

/** Weighted means of each tensor group, input-outer (see referenceRatio); returns a checksum. */
function referenceAggregate(
  backbone: readonly NamedTensor[],
  experts: readonly NamedTensor[][],
  updates: readonly ClientRoundUpdate[],
): number {
  const groups: { global: readonly NamedTensor[]; parts: { tensors: readonly NamedTensor[]; w: number }[] }[] = [
    { global: backbone, parts: updates.map((u) => ({ tensors: u.backbone, w: u.numSamples })) },
    ...experts.map((g, e) => ({
      global: g,
      parts: updates.flatMap((u) => u.experts.filter((x) => x.expert === e).map((x) => ({ tensors: x.tensors, w: x.usage }))),
    })),
  ];
  let check = 0;
  for (const { global, parts } of groups) {
    const total = parts.reduce((s, p) => s + p.w, 0);
    global.forEach((g, t) => {
      const acc = new Float64Array(g.data.length);
      for (const p of parts) {
        const x = (p.tensors[t] as NamedTensor).data;
        const w = p.w / total;
        for (let j = 0; j < x.length; j++) acc[j] = (acc[j] as number) + w * (x[j] as number);
      }
      const out = new Float32Array(acc);
      check += out[0] ?? 0;
    });
  }
  return check;
}

/**
 * The tensor layout of a client's frame, written once: the shared backbone, then the client's experts
 * in ascending id order. The coordinator, the page, the simulator and the test clients all split and
 * join frames with these functions.
 */
import type { NamedTensor, TensorManifest } from "../types.ts";

/** The global model's groups: the backbone and each expert's tensors (from the model package's spec). */
export interface ModelLayout {
  readonly backbone: TensorManifest;
  readonly experts: readonly TensorManifest[];
}

/** One held expert's tensors. */
export interface ExpertTensors {
  expert: number;
  tensors: NamedTensor[];
}

function expertManifestOf(layout: ModelLayout, e: number): TensorManifest {
  const m = Number.isInteger(e) ? layout.experts[e] : undefined;
  if (m === undefined) throw new RangeError(`layout: expert ${e} is outside [0, ${layout.experts.length})`);
  return m;
}

/** Names and shapes of the frame a client holding `held` receives and sends back. */
export function clientManifest(layout: ModelLayout, held: readonly number[]): TensorManifest {
  return [...layout.backbone, ...held.flatMap((e) => expertManifestOf(layout, e))];
}

/** The frame's tensors from the global model: backbone, then each held expert. */
export function clientTensors(
  backbone: readonly NamedTensor[],
  experts: readonly (readonly NamedTensor[])[],
  held: readonly number[],
): NamedTensor[] {
  return [
    ...backbone,
    ...held.flatMap((e) => {
      const t = experts[e];
      if (t === undefined) throw new RangeError(`layout: expert ${e} is outside [0, ${experts.length})`);
      return t;
    }),
  ];
}

/**
 * Splits a frame's tensors (already checked against {@link clientManifest}) into the backbone and the
 * held experts' groups. The arrays are views of `tensors`' entries, not copies.
 * @throws RangeError when the count does not match the layout.
 */
export function splitClientTensors(
  layout: ModelLayout,
  held: readonly number[],
  tensors: readonly NamedTensor[],
): { backbone: NamedTensor[]; experts: ExpertTensors[] } {
  const nb = layout.backbone.length;
  const want = nb + held.reduce((s, e) => s + expertManifestOf(layout, e).length, 0);
  if (tensors.length !== want) throw new RangeError(`layout: ${tensors.length} tensors for experts [${held.join(",")}], expected ${want}`);
  const experts: ExpertTensors[] = [];
  let offset = nb;
  for (const e of held) {
    const n = expertManifestOf(layout, e).length;
    experts.push({ expert: e, tensors: tensors.slice(offset, offset + n) });
    offset += n;
  }
  return { backbone: tensors.slice(0, nb), experts };
}

/** Parameters in a manifest. */
export function paramCount(manifest: TensorManifest): number {
  return manifest.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

/** Parameters of the full global model (backbone and every expert). */
export function fullModelParams(layout: ModelLayout): number {
  return paramCount(layout.backbone) + layout.experts.reduce((s, m) => s + paramCount(m), 0);
}

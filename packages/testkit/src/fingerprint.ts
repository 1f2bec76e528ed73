import { encodeTensors, type EngineState } from "@flexmoe/core";

/** What a fingerprint reads: a coordinator's (or simulator's) state with its run id and log. */
export interface FingerprintSource {
  readonly snapshot: EngineState & { readonly runId: string; readonly history: readonly unknown[] };
}

/** Everything a rejected message or a restart must leave untouched, in comparable form. */
export function fingerprint(f: FingerprintSource) {
  const s = f.snapshot;
  return {
    weights: Buffer.from(encodeTensors([...s.backbone, ...s.experts.flat()])).toString("base64"),
    q: JSON.stringify(s.fitness.toJSON()),
    deficit: JSON.stringify(s.deficit),
    routed: JSON.stringify(s.cumulativeRouted),
    history: JSON.stringify(s.history),
    runId: s.runId,
    round: s.round,
  };
}

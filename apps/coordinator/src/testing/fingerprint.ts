import { encodeTensors } from "@flexmoe/core";
import type { Federation } from "../federation.ts";

/** Everything a rejected message or a restart must leave untouched, in comparable form. */
export function fingerprint(f: Federation) {
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

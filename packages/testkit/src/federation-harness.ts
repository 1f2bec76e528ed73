/**
 * Drives a Federation directly, without sockets: a manual clock, captured round starts, and
 * well-formed (optionally tampered) updates. For unit tests of the round life cycle and persistence.
 */
import { clientManifest, decodeTensors, encodeTensors, toBytes, type NamedTensor, type RoundStart, type UpdateMeta } from "@flexmoe/core";
import { Federation, resolveConfig, silentLogger, type CoordinatorConfig, type FederationDeps } from "@flexmoe/coordinator";
import { ManualClock } from "./manual-clock.ts";

export interface Harness {
  federation: Federation;
  clock: ManualClock;
  /** Round starts received per client id, in order. */
  starts: Map<string, RoundStart[]>;
  lastStart(clientId: string): RoundStart;
  /** A valid update for the client's last round start; `tamper` may change the decoded weights. */
  update(clientId: string, tamper?: (t: NamedTensor[]) => void): { meta: UpdateMeta; frame: Uint8Array };
}

let tokenNo = 0;

export function harness(overrides: CoordinatorConfig = {}, extra: Partial<FederationDeps> = {}): Harness {
  const clock = new ManualClock();
  const starts = new Map<string, RoundStart[]>();
  const config = resolveConfig({ experts: 4, minClients: 2, gatherMs: 10, roundTimeoutSec: 60, preset: "dense", shards: 4, ...overrides });
  const federation = new Federation({
    config,
    clock,
    logger: silentLogger,
    newToken: () => `${String(++tokenNo).padStart(6, "0")}-harness-token`,
    shardUrl: (t) => `/api/shard/${t}`,
    send: (id, s) => starts.set(id, [...(starts.get(id) ?? []), s]),
    broadcast: () => {},
    ...extra,
  });
  const lastStart = (id: string): RoundStart => {
    const s = starts.get(id)?.at(-1);
    if (!s) throw new Error(`no round start for ${id}`);
    return s;
  };
  return {
    federation,
    clock,
    starts,
    lastStart,
    update(id, tamper) {
      const s = lastStart(id);
      const dec = decodeTensors(toBytes(s.weights), clientManifest(federation.layout, s.experts));
      if (!dec.ok) throw new Error(dec.error.message);
      // A small deterministic step so aggregation visibly changes the model.
      for (const t of dec.value) for (let j = 0; j < t.data.length; j++) t.data[j] = (t.data[j] as number) + 0.001;
      tamper?.(dec.value);
      const per = Math.floor(100 / Math.max(1, s.experts.length));
      return {
        meta: {
          round: s.round,
          numSamples: 100,
          feedback: s.experts.map((e) => ({ expert: e, usage: per, accuracy: 0.6, loss: 0.4 })),
          evalAccuracy: 0.6,
          evalLoss: 0.4,
          evalSamples: 20,
          trainLoss: 0.5,
          trainMs: 1,
        },
        frame: encodeTensors(dec.value),
      };
    },
  };
}

/**
 * Wiring between a Federation and a RunStore: what to resume from at start-up, and the hooks that
 * write a checkpoint after every completed round and the registry whenever a client registers.
 */
import { err, ok, type Result } from "@flexmoe/core";
import type { Clock } from "../clock.ts";
import type { ResolvedConfig } from "../config.ts";
import type { ClientRecord, FederationState, PersistedClient, RoundRecord, RunSnapshot } from "../federation.ts";
import { persistedOf } from "../clients.ts";
import type { Logger } from "../logger.ts";
import { checkpointOf, restoreCheckpoint, type StoreError } from "./checkpoint.ts";
import type { RunStore } from "./store.ts";

export interface Resume {
  initial?: FederationState;
  initialClients?: PersistedClient[];
  /** Human-readable: "new run" or "resuming run X after round N". */
  summary: string;
  changed: string[];
  /** The store fell back to an older copy or skipped damaged entries: what and why (log it as a warning). */
  recovered?: string;
}

/** Read the store and check it against `config`; an empty store is a new run. */
export function openRun(store: RunStore, config: ResolvedConfig): Result<Resume, StoreError> {
  const loaded = store.load();
  if (!loaded.ok) return loaded;
  if (loaded.value === null) return ok({ summary: "new run", changed: [] });
  const restored = restoreCheckpoint(loaded.value, config);
  if (!restored.ok) return err(restored.error);
  const { initial, clients, changed } = restored.value;
  return ok({
    initial,
    initialClients: clients,
    summary: `resuming run ${initial.runId} after round ${initial.round} (${clients.length} known clients)`,
    changed,
    ...(loaded.value.recovered !== undefined && { recovered: loaded.value.recovered }),
  });
}

/**
 * Hooks for createApp. Each receives what it stores (the engine's state and record, the registry, the
 * live config with admin changes). A failed write is logged and the run goes on: the previous
 * checkpoint is still whole.
 */
export function persistenceHooks(deps: { store: RunStore; clock: Clock; logger: Logger }) {
  const log = deps.logger.child({ module: "store" });
  /** Checkpoint a run. @throws on I/O errors. */
  const save = (run: RunSnapshot): void => {
    deps.store.save(checkpointOf(run.state, run.clients, run.config, deps.clock.now()));
  };
  return {
    /** Checkpoint now (a new run's round 0, so its runId and registry survive too). @throws on I/O errors. */
    save,
    onRoundClosed: (record: RoundRecord, run: RunSnapshot): void => {
      try {
        save(run);
        log.debug({ round: record.round }, "checkpoint saved");
      } catch (e) {
        log.error({ err: e, round: record.round }, "checkpoint not saved");
      }
    },
    /** An admin reset started a new run: checkpoint it at once, so a crash cannot bring the old one back. */
    onReset: (run: RunSnapshot): void => {
      try {
        save(run);
      } catch (e) {
        log.error({ err: e, runId: run.state.runId }, "checkpoint of the reset run not saved");
      }
    },
    onClientChanged: (client: ClientRecord): void => {
      try {
        deps.store.putClient(persistedOf(client));
      } catch (e) {
        log.error({ err: e, client: client.id }, "client registry not saved");
      }
    },
  };
}

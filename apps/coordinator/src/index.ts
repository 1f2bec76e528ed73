/** @flexmoe/coordinator: the server (createApp, the federation driver, persistence) and its process entry. */
export { createApp, maxFrameBytes, statusOf, type App, type AppDeps } from "./app.ts";
export {
  DEFAULT_EPOCHS,
  DEFAULT_MAX_HOLD,
  DEFAULT_ZERO_USAGE,
  DEFAULT_Q_DECAY,
  DEFAULT_BALANCE,
  DEFAULT_GATE_INIT,
  resolveConfig,
  type CoordinatorConfig,
  type ResolvedConfig,
  type AggregatorName,
  type StrategyName,
} from "./config.ts";
export {
  engineConfigOf,
  Federation,
  freshState,
  type FederationDeps,
  type FederationState,
  type Phase,
  type RoundRecord,
  type RunSnapshot,
} from "./federation.ts";
export { ClientRegistry, viewOf, type ClientRecord, type PersistedClient } from "./clients.ts";
export { systemClock, type Clock, type TimerHandle } from "./clock.ts";
export { silentLogger, type Logger } from "./logger.ts";
export { loadMnist } from "./data/mnist.ts";
export { ShardStore, type ShardOptions } from "./data/shards.ts";
export { serve, type ServeOptions } from "./main.ts";
export type { AdminStatus } from "./handlers/admin.handlers.ts";
export { runEdge, runLeader, type ClusterOptions } from "./cluster/main.ts";
export { Leader, type LeaderDeps } from "./cluster/leader.ts";
export { Edge, type EdgeDeps } from "./cluster/edge.ts";
export { createEdgeApp, type EdgeApp, type EdgeAppDeps } from "./cluster/edge-app.ts";
export { Bus, clusterKeys, connectRedis } from "./cluster/bus.ts";

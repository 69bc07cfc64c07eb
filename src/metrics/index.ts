/** Metrics, probes and the LVM state sampler they read the node's volume groups through. */
export { LoamMetrics, commandLabel } from "./metrics.js";
export type { CallObservation, MetricsOptions } from "./metrics.js";
export { DEFAULT_CACHE_MS, LvmStateSampler, summarize } from "./lvm-state.js";
export type {
  LoamLvSummary,
  ReportSource,
  ThinPoolSummary,
  VolumeGroupReading,
  VolumeGroupSummary,
} from "./lvm-state.js";
export { parseListenAddress, startObservabilityServer } from "./http.js";
export type { ListenAddress, ObservabilityServerOptions, RunningObservabilityServer } from "./http.js";

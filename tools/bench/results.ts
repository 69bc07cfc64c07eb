/** The shape of bench/results.json: everything the plot and the docs are made from. */
import type { ChurnResult } from "./churn.js";
import type { ClusterBurstResult } from "./cluster-burst.js";
import type { Knobs } from "./knobs.js";
import type { MountedResult } from "./mounted.js";
import type { NativeResult } from "./native.js";
import type { OwnTimeSummary } from "./own-time.js";
import type { LoadResult } from "./rpc.js";
import type { ScaleResult } from "./scale.js";
import type { StormResult } from "./storm.js";
import type { ThroughputResult } from "./throughput.js";

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  inVm: boolean;
  node: string;
  lvm: string;
  kernel: string;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  loam: { bundle: string; gitCommit?: string };
  knobs: Knobs;
  /** Sections that failed, with the error; their figures are missing or partial. */
  failures: Array<{ section: string; error: string }>;
  timeToMounted?: MountedResult[];
  /** loam's own time per RPC in the time-to-mounted section, thick and thin together (only with LOAM_BENCH_LOG). */
  ownTime?: OwnTimeSummary[];
  storm?: StormResult[];
  churn?: ChurnResult[];
  scale?: ScaleResult[];
  rpc?: LoadResult[];
  native?: NativeResult[];
  clusterBurst?: ClusterBurstResult;
  throughput?: ThroughputResult[];
}

/**
 * The garbage collector's modes and default grace, apart from the collector itself
 * (gc.ts) so that reading a node's configuration does not load the registry, its record
 * schemas or etcd's client (issue 20: a node outside cluster mode never needs them).
 */
export const GC_MODES = ["report", "delete"] as const;
export type GcMode = (typeof GC_MODES)[number];
export const DEFAULT_GC_GRACE_SECONDS = 600;

/**
 * The V8 flags `loam node` runs with on every node (issue 20): the DaemonSet passes them in
 * NODE_OPTIONS, and the bench's native section starts loam with the same flags, so its memory
 * figures are the deployed ones.
 */
export const LOAM_NODE_V8_FLAGS: readonly string[] = [];

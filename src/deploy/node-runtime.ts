/**
 * The V8 flags `loam node` runs with on every node (issue 20), passed in NODE_OPTIONS by the
 * DaemonSet (and written into the systemd unit and the Nomad job by hand); the bench's native
 * section starts loam with the same flags, so its memory figures are the deployed ones.
 *
 * --max-semi-space-size=1: V8's young generation grows to 16 MiB semi-spaces (48 MiB resident)
 * under a burst of calls by default; 1 MiB ones keep it at 3 MiB, with no measurable cost in
 * calls per second (docs/benchmarks.md, "Native"). The heap's growth factor, the other half,
 * cannot be passed in NODE_OPTIONS: `loam node` sets it itself (src/cli/node.ts).
 */
export const LOAM_NODE_V8_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/**
 * The Kubernetes CSI sidecars loam runs beside itself, pinned, with the command-line flags
 * each pinned version accepts. The flag lists come from each project's README and release
 * notes for that version (kubernetes-csi/external-provisioner, external-resizer,
 * external-snapshotter, node-driver-registrar, livenessprobe); every argument the
 * generator renders is checked against them, so a flag a version does not know fails
 * here instead of in a crash-looping pod. klog's flags (-v and friends) are accepted by all.
 *
 * Why these versions: csi-provisioner v5 enables the Topology feature gate by default
 * (v5.0.0 release notes: topology follows the driver's VOLUME_ACCESSIBILITY_CONSTRAINTS),
 * so no --feature-gates=Topology=true; it needs `patch` on PersistentVolumes (also v5.0.0).
 * --node-deployment and --enable-capacity together publish one CSIStorageCapacity per node
 * (managed-by external-provisioner-<node>). csi-snapshotter v8 has --node-deployment
 * (distributed snapshotting, needs NODE_NAME) and its CRDs validate with CEL, no webhook.
 */

export type SidecarName = "nodeDriverRegistrar" | "provisioner" | "resizer" | "snapshotter" | "livenessProbe";

export interface Sidecar {
  /** Container name in the DaemonSet. */
  container: string;
  defaultImage: string;
  /** Flags (without "--") each known version accepts. */
  versions: Record<string, readonly string[]>;
}

const KLOG = [
  "v",
  "vmodule",
  "logging-format",
  "add_dir_header",
  "skip_headers",
  "log_file",
  "logtostderr",
  "alsologtostderr",
];
const LEADER_ELECTION = [
  "leader-election",
  "leader-election-namespace",
  "leader-election-lease-duration",
  "leader-election-renew-deadline",
  "leader-election-retry-period",
];

export const SIDECARS: Record<SidecarName, Sidecar> = {
  nodeDriverRegistrar: {
    container: "node-driver-registrar",
    defaultImage: "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0",
    versions: {
      "v2.13.0": [
        "csi-address",
        "kubelet-registration-path",
        "plugin-registration-path",
        "http-endpoint",
        "health-port",
        "mode",
        "timeout",
        "enable-pprof",
        "version",
        ...KLOG,
      ],
    },
  },
  provisioner: {
    container: "csi-provisioner",
    defaultImage: "registry.k8s.io/sig-storage/csi-provisioner:v5.2.0",
    versions: {
      "v5.2.0": [
        "csi-address",
        "kubeconfig",
        "master",
        "timeout",
        "retry-interval-start",
        "retry-interval-max",
        "worker-threads",
        "kube-api-qps",
        "kube-api-burst",
        "cloning-protection-threads",
        "http-endpoint",
        "metrics-path",
        "extra-create-metadata",
        "enable-capacity",
        "capacity-ownerref-level",
        "capacity-threads",
        "capacity-poll-interval",
        "capacity-for-immediate-binding",
        "node-deployment",
        "node-deployment-immediate-binding",
        "node-deployment-base-delay",
        "node-deployment-max-delay",
        "feature-gates",
        "strict-topology",
        "immediate-topology",
        "volume-name-prefix",
        "volume-name-uuid-length",
        "default-fstype",
        "prevent-volume-mode-conversion",
        "controller-publish-readonly",
        "version",
        ...LEADER_ELECTION,
        ...KLOG,
      ],
    },
  },
  resizer: {
    container: "csi-resizer",
    defaultImage: "registry.k8s.io/sig-storage/csi-resizer:v1.13.0",
    versions: {
      "v1.13.0": [
        "csi-address",
        "kubeconfig",
        "timeout",
        "workers",
        "kube-api-qps",
        "kube-api-burst",
        "retry-interval-start",
        "retry-interval-max",
        "http-endpoint",
        "metrics-path",
        "handle-volume-inuse-error",
        "feature-gates",
        "extra-modify-metadata",
        "resync-period",
        "version",
        ...LEADER_ELECTION,
        ...KLOG,
      ],
    },
  },
  snapshotter: {
    container: "csi-snapshotter",
    defaultImage: "registry.k8s.io/sig-storage/csi-snapshotter:v8.2.1",
    versions: {
      "v8.2.1": [
        "csi-address",
        "kubeconfig",
        "timeout",
        "kube-api-qps",
        "kube-api-burst",
        "worker-threads",
        "snapshot-name-prefix",
        "snapshot-name-uuid-length",
        "node-deployment",
        "retry-interval-start",
        "retry-interval-max",
        "http-endpoint",
        "metrics-path",
        "resync-period",
        "extra-create-metadata",
        "feature-gates",
        "version",
        ...LEADER_ELECTION,
        ...KLOG,
      ],
    },
  },
  livenessProbe: {
    container: "livenessprobe",
    defaultImage: "registry.k8s.io/sig-storage/livenessprobe:v2.15.0",
    versions: {
      "v2.15.0": ["csi-address", "health-port", "http-endpoint", "metrics-path", "probe-timeout", "version", ...KLOG],
    },
  },
};

export interface ImageReference {
  registry?: string;
  path: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const IMAGE = new RegExp(
  `^(?:([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?)/)?` +
    `(${COMPONENT}(?:/${COMPONENT})*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$`,
);

/** Splits an OCI image reference; undefined when it is not one. */
export function parseImage(reference: string): ImageReference | undefined {
  if (reference.length > 512) return undefined;
  const match = IMAGE.exec(reference);
  if (!match?.[2]) return undefined;
  let registry: string | undefined = match[1];
  let path = match[2];
  // "library/nginx" has no registry: only a first part with '.', ':' or "localhost" is a host.
  if (registry !== undefined && !/[.:]/.test(registry) && registry !== "localhost") {
    path = `${registry}/${path}`;
    registry = undefined;
  }
  if (!new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`).test(path)) return undefined;
  const result: ImageReference = { path };
  if (registry !== undefined) result.registry = registry;
  if (match[3] !== undefined) result.tag = match[3];
  if (match[4] !== undefined) result.digest = match[4];
  return result;
}

/** Flags in `args` that the image's version does not accept (empty when all are fine). */
export function unknownFlags(sidecar: Sidecar, imageReference: string, args: readonly string[]): string[] {
  const tag = parseImage(imageReference)?.tag ?? "";
  const accepted = sidecar.versions[tag];
  if (!accepted) return args.slice();
  return args.filter((arg) => {
    const match = /^--?([a-z][a-z0-9_-]*)(=.*)?$/.exec(arg);
    return !match?.[1] || !accepted.includes(match[1]);
  });
}

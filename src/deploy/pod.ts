/**
 * What the node DaemonSet and the cluster topology's controller Deployment share: where the
 * CSI socket and loam's files are inside a pod, the ports, the downward-API variables, how
 * a sidecar container is built, and the etcd client flags and Secret mount of cluster mode.
 */
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IEnvVar } from "kubernetes-models/v1/EnvVar";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import { SIDECARS, type SidecarName } from "./sidecars.js";
import type { Values } from "./values.js";

/** Where the plugin's socket directory is mounted inside every container of the pod. */
export const SOCKET_DIR = "/csi";
export const CONFIG_PATH = "/etc/loam/config.json";
/** livenessprobe's port: its /healthz calls CSI Probe on the socket. */
export const HEALTH_PORT = 9808;
/** loam node's own /metrics, /healthz and /readyz listener (metricsAddress), on the pod's IP for Prometheus. */
export const METRICS_PORT = 9975;
/** loam controller's /metrics listener (--metrics-address; 9976 is its default port). */
export const CONTROLLER_METRICS_PORT = 9976;
export const REGISTRAR_HEALTH_PORT = 9809;
/** Where the etcd client Secret (ca.crt, tls.crt, tls.key) is mounted in cluster mode. */
// Not under /etc/loam: the node pod mounts its ConfigMap there read-only, and a mount point cannot be made inside it.
export const ETCD_TLS_DIR = "/etc/loam-etcd";

export const SOCKET_MOUNT: IVolumeMount = { name: "plugin-dir", mountPath: SOCKET_DIR };

export const ENV = {
  nodeName: { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
  namespace: { name: "NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
  podName: { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
} satisfies Record<string, IEnvVar>;

/** The loam container's ports and liveness probe (livenessprobe's /healthz, which calls CSI Probe). */
export function loamHealth(metricsPort: number): Pick<IContainer, "ports" | "livenessProbe"> {
  return {
    ports: [
      { name: "healthz", containerPort: HEALTH_PORT, protocol: "TCP" },
      { name: "metrics", containerPort: metricsPort, protocol: "TCP" },
    ],
    livenessProbe: {
      httpGet: { path: "/healthz", port: "healthz" },
      initialDelaySeconds: 10,
      periodSeconds: 20,
      timeoutSeconds: 15,
      failureThreshold: 5,
    },
  };
}

/** A sidecar container on the shared socket: its pinned image, unprivileged, read-only root. */
export function sidecarContainer(
  values: Values,
  name: SidecarName,
  args: string[],
  extra: Partial<IContainer> = {},
): IContainer {
  return {
    name: SIDECARS[name].container,
    image: values.images[name],
    imagePullPolicy: values.imagePullPolicy,
    args,
    resources: values.resources.sidecars,
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
    volumeMounts: [SOCKET_MOUNT],
    ...extra,
  };
}

/**
 * The etcd client flags of `loam controller` (`--etcd-endpoints`) or `loam node`
 * (`--cluster-etcd-endpoints`), with the TLS files when the values name a Secret.
 */
export function etcdFlags(values: Values, endpointsFlag: "--etcd-endpoints" | "--cluster-etcd-endpoints"): string[] {
  const etcd = values.cluster?.etcd;
  if (!etcd) return [];
  const flags = [`${endpointsFlag}=${etcd.endpoints.join(",")}`];
  if (etcd.tlsSecret !== undefined) {
    flags.push(
      `--etcd-ca=${ETCD_TLS_DIR}/ca.crt`,
      `--etcd-cert=${ETCD_TLS_DIR}/tls.crt`,
      `--etcd-key=${ETCD_TLS_DIR}/tls.key`,
    );
  }
  return flags;
}

/** The etcd client Secret as a pod volume and its read-only mount; none without a Secret. */
export function etcdTls(values: Values): { volumes: IVolume[]; mounts: IVolumeMount[] } {
  const secret = values.cluster?.etcd.tlsSecret;
  if (secret === undefined) return { volumes: [], mounts: [] };
  return {
    volumes: [{ name: "etcd-tls", secret: { secretName: secret } }],
    mounts: [{ name: "etcd-tls", mountPath: ETCD_TLS_DIR, readOnly: true }],
  };
}

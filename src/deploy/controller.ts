/**
 * The cluster topology's controller: a Deployment running `loam controller` over the etcd
 * registry beside external-provisioner in its central mode (capacity from GetCapacity),
 * csi-resizer and csi-snapshotter, all leader-elected, and livenessprobe. The replicas are
 * spread across nodes; loam itself needs no privilege, no host path and no Kubernetes API.
 */
import type { IContainer } from "kubernetes-models/v1/Container";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { Values } from "./values.js";
import {
  CONTROLLER_METRICS_PORT,
  ENV,
  SOCKET_DIR,
  SOCKET_MOUNT,
  etcdFlags,
  etcdTls,
  loamHealth,
  sidecarContainer,
} from "./pod.js";

/** The sidecars in the controller pod; the node pods keep node-driver-registrar and livenessprobe. */
export const CONTROLLER_SIDECARS = ["provisioner", "resizer", "snapshotter", "livenessProbe"] as const;
export type ControllerSidecar = (typeof CONTROLLER_SIDECARS)[number];

/**
 * `loam controller`'s arguments (src/cli/controller.ts; a test parses them with its parser).
 * No topology key: the controller takes each node's segment from the node's registration.
 */
export function controllerArgs(values: Values): string[] {
  const cluster = values.cluster;
  if (!cluster) throw new Error('the cluster topology needs the values\' "cluster" block');
  return [
    "controller",
    `--endpoint=unix://${SOCKET_DIR}/csi.sock`,
    ...etcdFlags(values, "--etcd-endpoints"),
    `--driver-name=${values.driverName}`,
    `--placement=${cluster.placement}`,
    `--node-timeout-seconds=${cluster.nodeTimeoutSeconds}`,
    `--log-level=${values.logLevel}`,
    // On the pod's IP, for Prometheus.
    `--metrics-address=:${CONTROLLER_METRICS_PORT}`,
  ];
}

const CONTROLLER_SELECTOR = { "app.kubernetes.io/name": "loam", "app.kubernetes.io/component": "controller" };

/** With two or more replicas, a node drain takes them one at a time. */
export function controllerDisruptionBudget(values: Values, labels: Record<string, string>): PodDisruptionBudget {
  return new PodDisruptionBudget({
    metadata: {
      name: "loam-controller",
      namespace: values.namespace,
      labels: { ...labels, "app.kubernetes.io/component": "controller" },
    },
    spec: { maxUnavailable: 1, selector: { matchLabels: { ...CONTROLLER_SELECTOR } } },
  });
}

export function controllerDeployment(
  values: Values,
  serviceAccount: string,
  labels: Record<string, string>,
  args: Record<ControllerSidecar, string[]>,
): Deployment {
  const selector = CONTROLLER_SELECTOR;
  const tls = etcdTls(values);
  const sidecar = (name: ControllerSidecar, extra: Partial<IContainer> = {}): IContainer =>
    sidecarContainer(values, name, args[name], extra);
  const loam: IContainer = {
    name: "loam",
    image: values.images.loam,
    imagePullPolicy: values.imagePullPolicy,
    args: controllerArgs(values),
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
    resources: values.resources.loam,
    ...loamHealth(CONTROLLER_METRICS_PORT),
    volumeMounts: [SOCKET_MOUNT, ...tls.mounts],
  };

  return new Deployment({
    metadata: {
      name: "loam-controller",
      namespace: values.namespace,
      labels: { ...labels, "app.kubernetes.io/component": "controller" },
    },
    spec: {
      replicas: values.cluster?.replicas ?? 2,
      selector: { matchLabels: selector },
      // A new replica starts before an old one stops: the socket is never without a server.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...labels, ...selector } },
        spec: {
          serviceAccountName: serviceAccount,
          ...(values.priorityClassName ? { priorityClassName: values.priorityClassName } : {}),
          ...(Object.keys(values.nodeSelector).length > 0 ? { nodeSelector: values.nodeSelector } : {}),
          // One replica per node where there are enough nodes; a one-node cluster still runs them all.
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: { labelSelector: { matchLabels: selector }, topologyKey: "kubernetes.io/hostname" },
                },
              ],
            },
          },
          terminationGracePeriodSeconds: 45,
          containers: [
            loam,
            sidecar("provisioner", { env: [ENV.namespace, ENV.podName] }),
            sidecar("resizer", { env: [ENV.namespace] }),
            sidecar("snapshotter", { env: [ENV.namespace] }),
            sidecar("livenessProbe"),
          ],
          volumes: [{ name: SOCKET_MOUNT.name, emptyDir: {} }, ...tls.volumes],
        },
      },
    },
  });
}

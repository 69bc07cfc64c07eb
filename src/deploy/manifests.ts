/**
 * The Kubernetes objects of both topologies, built as typed kubernetes-models objects from
 * checked values. Distributed (deploy/kubernetes/): one DaemonSet runs loam beside the CSI
 * sidecars in their node-deployment modes on every node, so each node provisions, resizes
 * and snapshots only the volumes in its own volume groups. Cluster (deploy/kubernetes/cluster/):
 * a controller Deployment over the etcd registry with the sidecars in their central modes
 * (controller.ts), and a DaemonSet of node agents with node-driver-registrar and livenessprobe.
 * RBAC is in rbac.ts, values in values.ts, what the pods share in pod.ts.
 *
 * Over 400 lines because it holds both topologies' node DaemonSets, the shared objects
 * (namespace, CSIDriver, config, StorageClasses, snapshot class) and the file layout; the seam
 * for a split is the distributed topology's DaemonSet into a file of its own, as the cluster
 * topology's Deployment already is (controller.ts).
 */
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { CSIDriver } from "kubernetes-models/storage.k8s.io/v1/CSIDriver";
import { StorageClass } from "kubernetes-models/storage.k8s.io/v1/StorageClass";
import { isKubernetesObjectName } from "../volumes/names.js";
import { sidecarRbac } from "./rbac.js";
import type { SidecarName } from "./sidecars.js";
import type { StorageClassValues, Topology, Values } from "./values.js";
import type { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { type ControllerSidecar, controllerDeployment, controllerDisruptionBudget } from "./controller.js";
import {
  CONFIG_PATH,
  ENV,
  HEALTH_PORT,
  METRICS_PORT,
  REGISTRAR_HEALTH_PORT,
  SOCKET_DIR,
  SOCKET_MOUNT,
  etcdFlags,
  etcdTls,
  loamHealth,
  sidecarContainer,
} from "./pod.js";
import { LOAM_NODE_V8_FLAGS } from "./node-runtime.js";

export { CONFIG_PATH, METRICS_PORT, SOCKET_DIR } from "./pod.js";

/**
 * LVM runs in the host's namespaces: the host's lvm2, lvm.conf, devices file, locks and udev
 * stay the only ones touching the volume groups, whatever lvm2 the image carries.
 */
export const LVM_COMMAND_PREFIX = ["nsenter", "--target=1", "--mount", "--uts", "--ipc", "--net", "--pid", "--"];

/** StorageClass parameter keys loam reads (the reference is docs/parameters.md). */
export const STORAGE_CLASS_KEYS = {
  deviceClass: "loam.csi.dev/deviceClass",
  stripes: "loam.csi.dev/stripes",
  stripeSize: "loam.csi.dev/stripeSize",
  mirrors: "loam.csi.dev/mirrors",
  encryption: "loam.csi.dev/encryption",
  encryptionPbkdfMemory: "loam.csi.dev/encryptionPbkdfMemory",
  fsType: "csi.storage.k8s.io/fstype",
} as const;

/** A VolumeSnapshotClass (snapshot.storage.k8s.io/v1, a CRD kubernetes-models does not carry). */
export interface VolumeSnapshotClassObject {
  apiVersion: "snapshot.storage.k8s.io/v1";
  kind: "VolumeSnapshotClass";
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  driver: string;
  deletionPolicy: "Delete" | "Retain";
  parameters?: Record<string, string>;
}

export type KubernetesObject =
  | Namespace
  | ServiceAccount
  | ConfigMap
  | DaemonSet
  | Deployment
  | PodDisruptionBudget
  | ClusterRole
  | ClusterRoleBinding
  | Role
  | RoleBinding
  | CSIDriver
  | StorageClass
  | VolumeSnapshotClassObject;

export interface ManifestFile {
  /** Path under deploy/. */
  file: string;
  /** Said at the top of the file, after the generated-file notice. */
  notes: string[];
  objects: KubernetesObject[];
}

/** Where each topology's files go under deploy/. */
export const TOPOLOGY_DIRS: Record<Topology, string> = {
  distributed: "kubernetes",
  cluster: "kubernetes/cluster",
};

/** The files of every topology the values ask for. */
export function renderManifests(values: Values): ManifestFile[] {
  return values.topologies.flatMap((topology) => renderTopology(values, topology));
}

export function renderTopology(values: Values, topology: Topology): ManifestFile[] {
  const cluster = topology === "cluster";
  const dir = TOPOLOGY_DIRS[topology];
  const labels = { "app.kubernetes.io/name": "loam", "app.kubernetes.io/part-of": "loam" };
  const meta = (name: string, namespaced: boolean) => ({
    name,
    ...(namespaced ? { namespace: values.namespace } : {}),
    labels: { ...labels },
  });
  const serviceAccount = "loam-node";
  // In the cluster topology only the controller's sidecars use the API; the node pods use none.
  const apiAccount = cluster ? "loam-controller" : serviceAccount;
  const subject = [{ kind: "ServiceAccount", name: apiAccount, namespace: values.namespace }];

  const rbac = sidecarRbac(values, topology).flatMap(({ sidecar, cluster, namespaced, why }) => {
    const name = `loam-${sidecar}`;
    const objects: KubernetesObject[] = [
      new ClusterRole({ metadata: { ...meta(name, false), annotations: { "loam.csi.dev/why": why } }, rules: cluster }),
      new ClusterRoleBinding({
        metadata: meta(name, false),
        subjects: subject,
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      }),
    ];
    if (namespaced.length > 0) {
      objects.push(
        new Role({ metadata: meta(name, true), rules: namespaced }),
        new RoleBinding({
          metadata: meta(name, true),
          subjects: subject,
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
        }),
      );
    }
    return objects;
  });

  const files: ManifestFile[] = [
    {
      file: `${dir}/00-namespace.yaml`,
      notes: [
        "The namespace runs privileged pods (loam formats and mounts disks), so Pod Security admits them there only.",
      ],
      objects: [
        new Namespace({
          metadata: {
            name: values.namespace,
            labels: {
              ...labels,
              "pod-security.kubernetes.io/enforce": "privileged",
              "pod-security.kubernetes.io/warn": "privileged",
            },
          },
        }),
        new ServiceAccount({ metadata: meta(serviceAccount, true) }),
        ...(cluster ? [new ServiceAccount({ metadata: meta(apiAccount, true) })] : []),
      ],
    },
    {
      file: `${dir}/10-rbac.yaml`,
      notes: cluster
        ? [
            "Least privilege, one ClusterRole (and where needed one namespaced Role) per sidecar, all bound to the",
            "controller's ServiceAccount loam-controller. loam itself and node-driver-registrar use no Kubernetes API,",
            "so the node pods' ServiceAccount loam-node has no role and mounts no token.",
          ]
        : [
            "Least privilege, one ClusterRole (and where needed one namespaced Role) per sidecar, all bound to the",
            "pod's ServiceAccount. loam itself and node-driver-registrar use no Kubernetes API.",
          ],
      objects: rbac,
    },
    {
      file: `${dir}/20-csidriver.yaml`,
      notes: cluster
        ? [
            "attachRequired false: a local volume needs no ControllerPublish. storageCapacity true: the scheduler reads",
            "the CSIStorageCapacity objects the controller's external-provisioner publishes per node from GetCapacity",
            "(the etcd ledger).",
          ]
        : [
            "attachRequired false: a local volume needs no ControllerPublish. storageCapacity true: the scheduler reads",
            "the CSIStorageCapacity objects each node's external-provisioner publishes.",
          ],
      objects: [
        new CSIDriver({
          metadata: { name: values.driverName, labels: { ...labels } },
          spec: {
            attachRequired: false,
            podInfoOnMount: true,
            storageCapacity: true,
            fsGroupPolicy: "File",
            volumeLifecycleModes: ["Persistent"],
          },
        }),
      ],
    },
    {
      file: `${dir}/30-config.yaml`,
      notes: ["The node configuration read by `loam node --config`; the node's name comes from the pod (--node-id)."],
      objects: [
        new ConfigMap({
          metadata: meta("loam-node-config", true),
          data: {
            "config.json": `${JSON.stringify(nodeConfig(values), null, 2)}\n`,
            // The pod sees the host's files through PID 1's root (hostPID).
            ...(values.disks
              ? { "disks.json": `${JSON.stringify({ hostRoot: "/proc/1/root", ...values.disks }, null, 2)}\n` }
              : {}),
          },
        }),
      ],
    },
    {
      file: `${dir}/40-daemonset.yaml`,
      notes: cluster
        ? [
            "The node agent (loam node --cluster-etcd-endpoints) with node-driver-registrar and livenessprobe on every",
            "node: no provisioner, resizer or snapshotter here, the controller's serve the cluster. LVM runs in the",
            "host's namespaces (hostPID + nsenter), the kubelet directory is shared with Bidirectional propagation.",
          ]
        : [
            "loam and the CSI sidecars on every node. LVM runs in the host's namespaces (hostPID + nsenter), the",
            "kubelet directory is shared with Bidirectional propagation so mounts made here reach the pods.",
          ],
      objects: [daemonSet(values, serviceAccount, labels, topology)],
    },
    ...(cluster
      ? [
          {
            file: `${dir}/45-controller.yaml`,
            notes: [
              "loam controller over the etcd registry beside external-provisioner in its central mode (capacity from",
              "GetCapacity, owned by this Deployment), csi-resizer and csi-snapshotter, all leader-elected. Replicas",
              "prefer different nodes; all serve requests, background work runs on the etcd election's winner.",
            ],
            objects: [
              controllerDeployment(values, apiAccount, labels, controllerSidecarArgs(values)),
              ...((values.cluster?.replicas ?? 2) > 1 ? [controllerDisruptionBudget(values, labels)] : []),
            ],
          },
        ]
      : []),
    {
      file: `${dir}/50-storageclasses.yaml`,
      notes: cluster
        ? [
            "WaitForFirstConsumer: the scheduler picks the node first (using capacity), then the controller reserves",
            "room on it in one etcd transaction and that node's agent creates the volume.",
          ]
        : [
            "WaitForFirstConsumer: the scheduler picks the node first (using capacity), then that node creates the volume.",
          ],
      objects: values.storageClasses.map((sc) => storageClass(values, sc, labels)),
    },
    {
      file: `${dir}/60-volumesnapshotclass.yaml`,
      notes: cluster
        ? [
            "Needs the snapshot CRDs and a snapshot-controller in its default mode: the controller's csi-snapshotter",
            "serves every node, so distributed snapshotting is not needed; see docs/install.md.",
          ]
        : [
            "Needs the snapshot CRDs and a snapshot-controller started with --enable-distributed-snapshotting",
            "(its ClusterRole must also allow get/list/watch on nodes); see docs/install.md.",
          ],
      objects: [
        {
          apiVersion: "snapshot.storage.k8s.io/v1",
          kind: "VolumeSnapshotClass",
          metadata: { name: values.volumeSnapshotClass.name, labels: { ...labels } },
          driver: values.driverName,
          deletionPolicy: values.volumeSnapshotClass.deletionPolicy,
        },
      ],
    },
  ];
  return files;
}

/** Where the DaemonSet's disks.json is (values.disks), beside config.json. */
export const DISKS_CONFIG_PATH = "/etc/loam/disks.json";

/** The JSON file `loam node --config` reads (keys are NodeConfig fields). */
export function nodeConfig(values: Values): Record<string, unknown> {
  return {
    endpoint: `unix://${SOCKET_DIR}/csi.sock`,
    driverName: values.driverName,
    topologyKey: values.topologyKey,
    kubeletDir: values.kubeletDir,
    logLevel: values.logLevel,
    lvmCommandPrefix: LVM_COMMAND_PREFIX,
    metricsAddress: `:${METRICS_PORT}`,
    deviceClasses: values.deviceClasses,
    ...(values.disks ? { disksConfig: DISKS_CONFIG_PATH } : {}),
  };
}

function storageClass(values: Values, sc: StorageClassValues, labels: Record<string, string>): StorageClass {
  const parameters: Record<string, string> = {
    [STORAGE_CLASS_KEYS.fsType]: sc.fsType,
    [STORAGE_CLASS_KEYS.deviceClass]: sc.deviceClass,
  };
  if (sc.stripes !== undefined) parameters[STORAGE_CLASS_KEYS.stripes] = String(sc.stripes);
  if (sc.stripeSize !== undefined) parameters[STORAGE_CLASS_KEYS.stripeSize] = sc.stripeSize;
  if (sc.mirrors !== undefined) parameters[STORAGE_CLASS_KEYS.mirrors] = String(sc.mirrors);
  if (sc.encryption) {
    parameters[STORAGE_CLASS_KEYS.encryption] = "luks2";
    if (sc.encryption.pbkdfMemoryKiB !== undefined)
      parameters[STORAGE_CLASS_KEYS.encryptionPbkdfMemory] = String(sc.encryption.pbkdfMemoryKiB);
    // The passphrase reaches NodeStageVolume and NodeExpandVolume only through these (Kubernetes' own keys).
    for (const call of ["node-stage", "node-expand"]) {
      parameters[`csi.storage.k8s.io/${call}-secret-name`] = sc.encryption.secretName;
      parameters[`csi.storage.k8s.io/${call}-secret-namespace`] = sc.encryption.secretNamespace ?? values.namespace;
    }
  }
  return new StorageClass({
    metadata: {
      name: sc.name,
      labels: { ...labels },
      ...(sc.default ? { annotations: { "storageclass.kubernetes.io/is-default-class": "true" } } : {}),
    },
    provisioner: values.driverName,
    parameters,
    reclaimPolicy: sc.reclaimPolicy,
    volumeBindingMode: "WaitForFirstConsumer",
    allowVolumeExpansion: true,
    ...(sc.mountOptions ? { mountOptions: sc.mountOptions } : {}),
  });
}

const CSI_ADDRESS = `--csi-address=${SOCKET_DIR}/csi.sock`;
const LIVENESS_ARGS = [CSI_ADDRESS, `--health-port=${HEALTH_PORT}`, "--probe-timeout=10s", "--v=2"];

/** Arguments of each sidecar of the distributed topology; checked against the pinned version's flags by the tests. */
export function sidecarArgs(values: Values): Record<SidecarName, string[]> {
  const csiAddress = CSI_ADDRESS;
  return {
    nodeDriverRegistrar: [
      csiAddress,
      `--kubelet-registration-path=${values.kubeletDir}/plugins/${values.driverName}/csi.sock`,
      `--http-endpoint=:${REGISTRAR_HEALTH_PORT}`,
      "--v=2",
    ],
    provisioner: [
      csiAddress,
      "--node-deployment",
      "--enable-capacity",
      // The pod's owner, the DaemonSet, owns the CSIStorageCapacity objects: uninstalling removes them.
      "--capacity-ownerref-level=1",
      "--strict-topology",
      "--extra-create-metadata",
      "--timeout=150s",
      "--v=2",
    ],
    resizer: [
      csiAddress,
      // loam grows volumes in NodeExpandVolume; one resizer in the cluster marks PVs resized.
      "--leader-election",
      "--leader-election-namespace=$(NAMESPACE)",
      "--handle-volume-inuse-error=false",
      "--timeout=150s",
      "--v=2",
    ],
    snapshotter: [csiAddress, "--node-deployment", "--timeout=150s", "--v=2"],
    livenessProbe: [...LIVENESS_ARGS],
  };
}

/**
 * Arguments of the controller pod's sidecars in the cluster topology: central modes (no
 * --node-deployment), each leader-elected so one replica acts. Topology needs no feature
 * gate: csi-provisioner v5 turns it on by default (sidecars.ts). A call may wait
 * --node-timeout-seconds for a node agent, so the sidecars wait longer than that.
 */
export function controllerSidecarArgs(values: Values): Record<ControllerSidecar, string[]> {
  const timeout = `--timeout=${Math.max(150, (values.cluster?.nodeTimeoutSeconds ?? 60) + 30)}s`;
  const leaderElection = ["--leader-election", "--leader-election-namespace=$(NAMESPACE)"];
  return {
    provisioner: [
      CSI_ADDRESS,
      "--enable-capacity",
      // pod → ReplicaSet → Deployment: the Deployment owns the CSIStorageCapacity objects.
      "--capacity-ownerref-level=2",
      "--strict-topology",
      "--extra-create-metadata",
      ...leaderElection,
      timeout,
      "--v=2",
    ],
    // ControllerExpandVolume grows the LV on the owning node; NodeExpandVolume the filesystem.
    // ControllerModifyVolume (a PVC's VolumeAttributesClass) changes IO limits (docs/iolimits.md).
    resizer: [
      CSI_ADDRESS,
      ...leaderElection,
      "--handle-volume-inuse-error=false",
      "--feature-gates=VolumeAttributesClass=true",
      timeout,
      "--v=2",
    ],
    snapshotter: [CSI_ADDRESS, ...leaderElection, timeout, "--v=2"],
    livenessProbe: [...LIVENESS_ARGS],
  };
}

/**
 * The node DaemonSet. Distributed: loam node with all five sidecars. Cluster: the node agent
 * (`--cluster-etcd-endpoints`) with node-driver-registrar and livenessprobe only, and no
 * Kubernetes API token (nothing in the pod uses the API).
 */
function daemonSet(
  values: Values,
  serviceAccount: string,
  labels: Record<string, string>,
  topology: Topology,
): DaemonSet {
  const cluster = topology === "cluster";
  const selector = { "app.kubernetes.io/name": "loam", "app.kubernetes.io/component": "node" };
  const args = sidecarArgs(values);
  const socketMount = SOCKET_MOUNT;
  const sidecar = (name: SidecarName, extra: Partial<IContainer>): IContainer =>
    sidecarContainer(values, name, args[name], extra);
  const tls = cluster ? etcdTls(values) : { volumes: [], mounts: [] };

  const loam: IContainer = {
    name: "loam",
    image: values.images.loam,
    imagePullPolicy: values.imagePullPolicy,
    args: [
      "node",
      `--config=${CONFIG_PATH}`,
      "--node-id=$(NODE_NAME)",
      ...(cluster ? etcdFlags(values, "--cluster-etcd-endpoints") : []),
    ],
    // The V8 heap settings measured for a node plugin (src/deploy/node-runtime.ts).
    env: [ENV.nodeName, { name: "NODE_OPTIONS", value: LOAM_NODE_V8_FLAGS.join(" ") }],
    // Formatting, mounting and entering the host's namespaces for LVM need a privileged container.
    securityContext: { privileged: true },
    resources: values.resources.loam,
    ...loamHealth(METRICS_PORT),
    volumeMounts: [
      socketMount,
      { name: "kubelet-dir", mountPath: values.kubeletDir, mountPropagation: "Bidirectional" },
      { name: "dev", mountPath: "/dev" },
      { name: "config", mountPath: "/etc/loam", readOnly: true },
      ...tls.mounts,
    ],
  };
  const sidecars = [
    sidecar("nodeDriverRegistrar", {
      env: [ENV.nodeName],
      ports: [{ name: "registrar", containerPort: REGISTRAR_HEALTH_PORT, protocol: "TCP" }],
      livenessProbe: {
        httpGet: { path: "/healthz", port: "registrar" },
        initialDelaySeconds: 5,
        periodSeconds: 30,
        timeoutSeconds: 10,
      },
      volumeMounts: [socketMount, { name: "registration-dir", mountPath: "/registration" }],
    }),
    ...(cluster
      ? []
      : [
          sidecar("provisioner", { env: [ENV.nodeName, ENV.namespace, ENV.podName] }),
          sidecar("resizer", { env: [ENV.namespace] }),
          sidecar("snapshotter", { env: [ENV.nodeName] }),
        ]),
    sidecar("livenessProbe", {}),
  ];

  return new DaemonSet({
    metadata: {
      name: "loam-node",
      namespace: values.namespace,
      labels: { ...labels, "app.kubernetes.io/component": "node" },
    },
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: { ...labels, ...selector } },
        spec: {
          serviceAccountName: serviceAccount,
          ...(cluster ? { automountServiceAccountToken: false } : {}),
          // nsenter --target=1 needs the host's PID 1.
          hostPID: true,
          ...(values.priorityClassName ? { priorityClassName: values.priorityClassName } : {}),
          ...(Object.keys(values.nodeSelector).length > 0 ? { nodeSelector: values.nodeSelector } : {}),
          ...(values.tolerations.length > 0 ? { tolerations: values.tolerations } : {}),
          terminationGracePeriodSeconds: 45,
          containers: [loam, ...sidecars],
          volumes: [
            {
              name: "plugin-dir",
              hostPath: { path: `${values.kubeletDir}/plugins/${values.driverName}`, type: "DirectoryOrCreate" },
            },
            {
              name: "registration-dir",
              hostPath: { path: `${values.kubeletDir}/plugins_registry`, type: "Directory" },
            },
            { name: "kubelet-dir", hostPath: { path: values.kubeletDir, type: "Directory" } },
            { name: "dev", hostPath: { path: "/dev", type: "Directory" } },
            { name: "config", configMap: { name: "loam-node-config" } },
            ...tls.volumes,
          ],
        },
      },
    },
  });
}

/**
 * The shape check for a VolumeSnapshotClass, which kubernetes-models cannot validate (it is
 * a CRD): the fields snapshot.storage.k8s.io/v1 defines, with their types and enums.
 * Returns the problems found; empty when the object is well formed.
 */
export function checkVolumeSnapshotClass(object: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const allowed = ["apiVersion", "kind", "metadata", "driver", "deletionPolicy", "parameters"];
  for (const key of Object.keys(object)) if (!allowed.includes(key)) problems.push(`unknown field ${key}`);
  if (object.apiVersion !== "snapshot.storage.k8s.io/v1")
    problems.push("apiVersion must be snapshot.storage.k8s.io/v1");
  if (object.kind !== "VolumeSnapshotClass") problems.push("kind must be VolumeSnapshotClass");
  const metadata = object.metadata as { name?: unknown } | undefined;
  if (typeof metadata?.name !== "string" || !isKubernetesObjectName(metadata.name))
    problems.push("metadata.name must be a DNS subdomain");
  if (typeof object.driver !== "string" || object.driver === "") problems.push("driver is required");
  if (object.deletionPolicy !== "Delete" && object.deletionPolicy !== "Retain")
    problems.push("deletionPolicy must be Delete or Retain");
  if (object.parameters !== undefined) {
    const parameters = object.parameters as Record<string, unknown>;
    if (
      typeof parameters !== "object" ||
      parameters === null ||
      Object.values(parameters).some((v) => typeof v !== "string")
    ) {
      problems.push("parameters must map strings to strings");
    }
  }
  return problems;
}

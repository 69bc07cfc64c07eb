/**
 * The API access each sidecar needs, and nothing more: one ClusterRole (and a namespaced Role
 * where the objects live in loam's namespace) per sidecar that talks to the API server.
 * node-driver-registrar, livenessprobe and loam itself need none. The cluster topology's
 * sidecars run in their central, leader-elected modes: each needs its Lease, and the
 * provisioner walks pod → ReplicaSet to the Deployment that owns the capacity objects
 * (external-provisioner's README, "Capacity support", and its deploy/kubernetes/rbac.yaml).
 */
import type { IPolicyRule } from "kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule";
import type { Topology, Values } from "./values.js";

export interface SidecarRbac {
  sidecar: string;
  why: string;
  cluster: IPolicyRule[];
  namespaced: IPolicyRule[];
}

const CORE = "";
const STORAGE = "storage.k8s.io";
const SNAPSHOT = "snapshot.storage.k8s.io";
const EVENTS: IPolicyRule = {
  apiGroups: [CORE],
  resources: ["events"],
  verbs: ["list", "watch", "create", "update", "patch"],
};

const LEASES: IPolicyRule = {
  apiGroups: ["coordination.k8s.io"],
  resources: ["leases"],
  verbs: ["get", "watch", "list", "delete", "update", "create"],
};

/** What each sidecar needs from the API, and nothing more. */
export function sidecarRbac(_values: Values, topology: Topology = "distributed"): SidecarRbac[] {
  const cluster = topology === "cluster";
  return [
    {
      sidecar: "external-provisioner",
      why: cluster
        ? "PVs for PVCs on every node (central, leader-elected), capacity per node from GetCapacity (CSIStorageCapacity owned by the controller Deployment), restores from snapshots"
        : "PVs for PVCs on this node (node deployment), capacity per node (CSIStorageCapacity owned by the DaemonSet), restores from snapshots",
      cluster: [
        {
          apiGroups: [CORE],
          resources: ["persistentvolumes"],
          verbs: ["get", "list", "watch", "create", "patch", "delete"],
        },
        { apiGroups: [CORE], resources: ["persistentvolumeclaims"], verbs: ["get", "list", "watch", "update"] },
        { apiGroups: [STORAGE], resources: ["storageclasses"], verbs: ["get", "list", "watch"] },
        EVENTS,
        { apiGroups: [SNAPSHOT], resources: ["volumesnapshots", "volumesnapshotcontents"], verbs: ["get", "list"] },
        { apiGroups: [STORAGE], resources: ["csinodes"], verbs: ["get", "list", "watch"] },
        { apiGroups: [CORE], resources: ["nodes"], verbs: ["get", "list", "watch"] },
      ],
      namespaced: [
        {
          apiGroups: [STORAGE],
          resources: ["csistoragecapacities"],
          verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        // Walking from the pod to its owner (DaemonSet; ReplicaSet then Deployment) for the capacity objects' owner reference.
        { apiGroups: [CORE], resources: ["pods"], verbs: ["get"] },
        ...(cluster ? [{ apiGroups: ["apps"], resources: ["replicasets"], verbs: ["get"] }, LEASES] : []),
      ],
    },
    {
      sidecar: "external-resizer",
      why: cluster
        ? "calls ControllerExpandVolume (the owning node's agent grows the LV) and ControllerModifyVolume (a VolumeAttributesClass's IO limits), and marks PVs and PVCs resized"
        : "marks PVs and PVCs resized; loam itself grows the LV and filesystem in NodeExpandVolume",
      cluster: [
        { apiGroups: [CORE], resources: ["persistentvolumes"], verbs: ["get", "list", "watch", "patch"] },
        { apiGroups: [CORE], resources: ["persistentvolumeclaims"], verbs: ["get", "list", "watch"] },
        { apiGroups: [CORE], resources: ["persistentvolumeclaims/status"], verbs: ["patch"] },
        EVENTS,
        ...(cluster
          ? [{ apiGroups: [STORAGE], resources: ["volumeattributesclasses"], verbs: ["get", "list", "watch"] }]
          : []),
      ],
      namespaced: [LEASES],
    },
    {
      sidecar: "external-snapshotter",
      why: cluster
        ? "creates and deletes snapshots of every node's volumes through the controller (central, leader-elected)"
        : "creates and deletes snapshots of this node's volumes (distributed snapshotting)",
      cluster: [
        EVENTS,
        { apiGroups: [SNAPSHOT], resources: ["volumesnapshotclasses"], verbs: ["get", "list", "watch"] },
        {
          apiGroups: [SNAPSHOT],
          resources: ["volumesnapshotcontents"],
          verbs: ["get", "list", "watch", "update", "patch"],
        },
        { apiGroups: [SNAPSHOT], resources: ["volumesnapshotcontents/status"], verbs: ["update", "patch"] },
      ],
      namespaced: cluster ? [LEASES] : [],
    },
  ];
}

/**
 * The API access each sidecar needs, and nothing more: one ClusterRole (and a namespaced Role
 * where the objects live in loam's namespace) per sidecar that talks to the API server.
 * node-driver-registrar, livenessprobe and loam itself need none.
 */
import type { IPolicyRule } from "kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule";
import type { Values } from "./values.js";

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

/** What each sidecar needs from the API, and nothing more. */
export function sidecarRbac(_values: Values): SidecarRbac[] {
  return [
    {
      sidecar: "external-provisioner",
      why: "PVs for PVCs on this node (node deployment), capacity per node (CSIStorageCapacity owned by the DaemonSet), restores from snapshots",
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
        // Walking from the pod to its DaemonSet for the capacity objects' owner reference.
        { apiGroups: [CORE], resources: ["pods"], verbs: ["get"] },
      ],
    },
    {
      sidecar: "external-resizer",
      why: "marks PVs and PVCs resized; loam itself grows the LV and filesystem in NodeExpandVolume",
      cluster: [
        { apiGroups: [CORE], resources: ["persistentvolumes"], verbs: ["get", "list", "watch", "patch"] },
        { apiGroups: [CORE], resources: ["persistentvolumeclaims"], verbs: ["get", "list", "watch"] },
        { apiGroups: [CORE], resources: ["persistentvolumeclaims/status"], verbs: ["patch"] },
        EVENTS,
      ],
      namespaced: [
        {
          apiGroups: ["coordination.k8s.io"],
          resources: ["leases"],
          verbs: ["get", "watch", "list", "delete", "update", "create"],
        },
      ],
    },
    {
      sidecar: "external-snapshotter",
      why: "creates and deletes snapshots of this node's volumes (distributed snapshotting)",
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
      namespaced: [],
    },
  ];
}

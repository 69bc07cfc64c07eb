/** CSI requests as the sidecars and kubelet would send them. */
import { join } from "node:path";
import { VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";
import { KUBELET } from "./loam-process.js";

export type Kind = "thick" | "thin";
export type FsType = "xfs" | "ext4";

export function mountCapability(fsType: FsType) {
  return {
    accessType: { case: "mount" as const, value: { fsType, mountFlags: [], volumeMountGroup: "" } },
    accessMode: { mode: Mode.SINGLE_NODE_WRITER },
  };
}

/**
 * The metadata external-provisioner adds with --extra-create-metadata; loam records it in tags.
 * The PV is named as the CSI volume, as external-provisioner names it (the CreateVolume name is the PV's).
 */
export function claimParameters(name: string): Record<string, string> {
  return {
    "csi.storage.k8s.io/pvc/name": `pvc-${name}`,
    "csi.storage.k8s.io/pvc/namespace": "bench",
    "csi.storage.k8s.io/pv/name": name,
  };
}

export function createParameters(kind: Kind, name: string): Record<string, string> {
  return { "loam.csi.dev/deviceClass": kind, ...claimParameters(name) };
}

export function createInit(name: string, bytes: number, kind: Kind, fsType: FsType = "xfs") {
  return {
    name,
    capacityRange: { requiredBytes: BigInt(bytes), limitBytes: 0n },
    volumeCapabilities: [mountCapability(fsType)],
    parameters: createParameters(kind, name),
  };
}

export const STAGING_ROOT = join(KUBELET, "plugins/kubernetes.io/csi/loam.csi.dev");
export const PODS_ROOT = join(KUBELET, "pods");

export function csiPaths(id: string, pod = "bench-pod") {
  return {
    staging: join(STAGING_ROOT, id, "globalmount"),
    target: join(PODS_ROOT, pod, "volumes/kubernetes.io~csi", id, "mount"),
  };
}

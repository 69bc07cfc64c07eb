/**
 * The requests Kubernetes' own components send a CSI driver, rebuilt from the shipped
 * manifests the way each component builds them. Written from their source, at the versions
 * deploy/kubernetes pins (src/deploy/sidecars.ts):
 *
 * - external-provisioner v5.2.0: pkg/capacity/capacity.go (GetCapacity with the StorageClass's
 *   parameters as stored, no capability, the node's topology segment), pkg/controller/controller.go
 *   (CreateVolume: reserved keys stripped by removePrefixedParameters, claim metadata added by
 *   --extra-create-metadata, the selected node as requisite and preferred topology under
 *   --strict-topology, the claim's size as required_bytes, "pvc-<claim uid>" as the name; the PV
 *   it writes keeps the volume context plus storage.kubernetes.io/csiProvisionerIdentity).
 *   Releases before v5 sent GetCapacity a mount capability with no access mode.
 * - csi-lib-utils accessmodes: ReadWriteOnce and ReadWriteOncePod become SINGLE_NODE_WRITER for a
 *   controller without SINGLE_NODE_MULTI_WRITER (loam's controller does not offer it).
 * - kubelet pkg/volume/csi: NodeStageVolume at plugins/kubernetes.io/csi/<driver>/<sha256 of the
 *   volume handle>/globalmount, NodePublishVolume at pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount,
 *   both with the PV's volume attributes as volume context; podInfoOnMount adds the pod's name,
 *   namespace, uid, service account and csi.storage.k8s.io/ephemeral. A node offering
 *   SINGLE_NODE_MULTI_WRITER (loam's does) gets ReadWriteOnce as SINGLE_NODE_MULTI_WRITER and
 *   ReadWriteOncePod as SINGLE_NODE_SINGLE_WRITER. NodeExpandVolume names the publish path.
 * - external-snapshotter v8.2.1: CreateSnapshot with the VolumeSnapshotClass's parameters, its
 *   reserved snapshotter-secret keys stripped, plus the snapshot's names with --extra-create-metadata.
 *
 * These are plain request shapes (the generated messages' init form): they do not imitate any
 * component's behaviour beyond the request it sends.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { parseAllDocuments } from "yaml";
import {
  type CreateSnapshotRequestSchema,
  type CreateVolumeRequestSchema,
  type GetCapacityRequestSchema,
  type NodeExpandVolumeRequestSchema,
  type NodePublishVolumeRequestSchema,
  type NodeStageVolumeRequestSchema,
  type Volume,
  type VolumeCapabilitySchema,
  VolumeCapability_AccessMode_Mode as Mode,
} from "../../src/gen/csi/v1/csi_pb.js";
import { SIDECARS } from "../../src/deploy/sidecars.js";

/** The plain-object form of a generated message's init shape, so tests can spread and override it. */
type Shape<T> = Exclude<T, { $typeName: string }>;

export type GetCapacityInit = Shape<MessageInitShape<typeof GetCapacityRequestSchema>>;
export type CreateVolumeInit = Shape<MessageInitShape<typeof CreateVolumeRequestSchema>>;
export type CreateSnapshotInit = Shape<MessageInitShape<typeof CreateSnapshotRequestSchema>>;
export type NodeStageInit = Shape<MessageInitShape<typeof NodeStageVolumeRequestSchema>>;
export type NodePublishInit = Shape<MessageInitShape<typeof NodePublishVolumeRequestSchema>>;
export type NodeExpandInit = Shape<MessageInitShape<typeof NodeExpandVolumeRequestSchema>>;
type CapabilityInit = Shape<MessageInitShape<typeof VolumeCapabilitySchema>>;

/** The image tag of each sidecar the manifests pin, for test names and docs. */
export const CHECKED_VERSIONS = Object.fromEntries(
  Object.values(SIDECARS).map((s) => [s.container, s.defaultImage.slice(s.defaultImage.lastIndexOf(":") + 1)]),
) as Record<string, string>;

export interface StorageClassManifest {
  name: string;
  provisioner: string;
  parameters: Record<string, string>;
  mountOptions: string[];
}

export interface SnapshotClassManifest {
  name: string;
  driver: string;
  parameters: Record<string, string>;
}

/** Every StorageClass and VolumeSnapshotClass in the YAML files of a folder (deploy/kubernetes). */
export function shippedClasses(folder: string): {
  storageClasses: StorageClassManifest[];
  snapshotClasses: SnapshotClassManifest[];
} {
  const storageClasses: StorageClassManifest[] = [];
  const snapshotClasses: SnapshotClassManifest[] = [];
  for (const file of readdirSync(folder)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    for (const document of parseAllDocuments(readFileSync(join(folder, file), "utf8"))) {
      const object = document.toJS() as Record<string, unknown> | null;
      if (!object) continue;
      const name = (object.metadata as { name?: string } | undefined)?.name ?? "";
      const parameters = stringMap(object.parameters, `${file}: ${name}.parameters`);
      if (object.kind === "StorageClass") {
        const mountOptions = (object.mountOptions as unknown[] | undefined)?.map(String) ?? [];
        storageClasses.push({ name, provisioner: String(object.provisioner), parameters, mountOptions });
      } else if (object.kind === "VolumeSnapshotClass") {
        snapshotClasses.push({ name, driver: String(object.driver), parameters });
      }
    }
  }
  return { storageClasses, snapshotClasses };
}

/** A StorageClass's parameters are strings in the API; a YAML number that is not quoted fails there too. */
function stringMap(value: unknown, where: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  const result: Record<string, string> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (typeof item !== "string")
      throw new Error(`${where}["${key}"] is a ${typeof item}; the Kubernetes API takes only strings`);
    result[key] = item;
  }
  return result;
}

const RESERVED = "csi.storage.k8s.io/";
const FSTYPE_KEY = `${RESERVED}fstype`;
/** The reserved keys external-provisioner v5 strips before CreateVolume; any other reserved key makes it fail the claim. */
const PROVISIONER_STRIPPED = [
  "fstype",
  "secret-name",
  "secret-namespace",
  ...["provisioner", "controller-publish", "node-stage", "node-publish", "controller-expand", "node-expand"].flatMap(
    (s) => [`${s}-secret-name`, `${s}-secret-namespace`],
  ),
].map((k) => RESERVED + k);
/** The reserved keys external-snapshotter v8 strips before CreateSnapshot. */
const SNAPSHOTTER_STRIPPED = [
  "snapshotter-secret-name",
  "snapshotter-secret-namespace",
  "snapshotter-list-secret-name",
  "snapshotter-list-secret-namespace",
].map((k) => RESERVED + k);

function stripReserved(
  parameters: Record<string, string>,
  known: readonly string[],
  who: string,
): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (!key.startsWith(RESERVED)) kept[key] = value;
    else if (!known.includes(key))
      throw new Error(
        `${who} refuses the claim itself: unknown parameter key "${key}" with reserved namespace ${RESERVED}`,
      );
  }
  return kept;
}

export interface NodeSegment {
  key: string;
  nodeId: string;
}

/** GetCapacity as external-provisioner v5's capacity controller sends it for one class and one node. */
export function capacityRequest(sc: StorageClassManifest, node: NodeSegment): GetCapacityInit {
  return {
    parameters: { ...sc.parameters },
    volumeCapabilities: [],
    accessibleTopology: { segments: { [node.key]: node.nodeId } },
  };
}

/** GetCapacity as external-provisioner before v5 sent it: the same, with a mount capability and no access mode. */
export function capacityRequestBeforeV5(sc: StorageClassManifest, node: NodeSegment): GetCapacityInit {
  return {
    ...capacityRequest(sc, node),
    volumeCapabilities: [{ accessType: { case: "mount", value: {} }, accessMode: { mode: Mode.UNKNOWN } }],
  };
}

export type ClaimAccessMode = "ReadWriteOnce" | "ReadWriteOncePod";

export interface Claim {
  name: string;
  namespace: string;
  uid: string;
  bytes: number;
  accessMode: ClaimAccessMode;
  volumeMode: "Filesystem" | "Block";
}

export interface ProvisionerOptions {
  /** --extra-create-metadata (the shipped DaemonSet sets it). */
  extraCreateMetadata: boolean;
  /** A CO that passes the StorageClass's parameters to CreateVolume without stripping the reserved keys. */
  unstripped?: boolean;
}

function claimCapability(sc: StorageClassManifest, claim: Claim, mode: Mode): CapabilityInit {
  return claim.volumeMode === "Block"
    ? { accessType: { case: "block", value: {} }, accessMode: { mode } }
    : {
        accessType: {
          case: "mount",
          value: { fsType: sc.parameters[FSTYPE_KEY] ?? "", mountFlags: [...sc.mountOptions] },
        },
        accessMode: { mode },
      };
}

/** The PV name external-provisioner gives a claim (--volume-name-prefix pvc, the full uid). */
export const pvNameOf = (claim: Claim): string => `pvc-${claim.uid}`;

/** CreateVolume as external-provisioner v5 sends it for a claim scheduled to this node. */
export function createVolumeRequest(
  sc: StorageClassManifest,
  claim: Claim,
  node: NodeSegment,
  options: ProvisionerOptions,
): CreateVolumeInit {
  const parameters = options.unstripped
    ? { ...sc.parameters }
    : stripReserved(sc.parameters, PROVISIONER_STRIPPED, "external-provisioner");
  if (options.extraCreateMetadata) {
    parameters[`${RESERVED}pvc/name`] = claim.name;
    parameters[`${RESERVED}pvc/namespace`] = claim.namespace;
    parameters[`${RESERVED}pv/name`] = pvNameOf(claim);
  }
  const segment = { segments: { [node.key]: node.nodeId } };
  return {
    name: pvNameOf(claim),
    capacityRange: { requiredBytes: BigInt(claim.bytes), limitBytes: 0n },
    volumeCapabilities: [claimCapability(sc, claim, Mode.SINGLE_NODE_WRITER)],
    parameters,
    secrets: {},
    accessibilityRequirements: { requisite: [segment], preferred: [segment] },
  };
}

/** What the PV external-provisioner writes keeps of a created volume, as kubelet later reads it. */
export interface PersistentVolume {
  name: string;
  volumeHandle: string;
  fsType: string;
  mountOptions: string[];
  volumeAttributes: Record<string, string>;
  claim: Claim;
  storageClass: StorageClassManifest;
}

export function persistentVolume(
  sc: StorageClassManifest,
  claim: Claim,
  volume: Volume,
  provisionerIdentity: string,
): PersistentVolume {
  return {
    name: pvNameOf(claim),
    volumeHandle: volume.volumeId,
    fsType: claim.volumeMode === "Block" ? "" : (sc.parameters[FSTYPE_KEY] ?? ""),
    mountOptions: [...sc.mountOptions],
    volumeAttributes: { ...volume.volumeContext, "storage.kubernetes.io/csiProvisionerIdentity": provisionerIdentity },
    claim,
    storageClass: sc,
  };
}

/** kubelet's access mode for a node that offers SINGLE_NODE_MULTI_WRITER. */
function nodeMode(claim: Claim): Mode {
  return claim.accessMode === "ReadWriteOncePod" ? Mode.SINGLE_NODE_SINGLE_WRITER : Mode.SINGLE_NODE_MULTI_WRITER;
}

/** Where kubelet stages and publishes a PV for a pod. */
export function kubeletPaths(
  pv: PersistentVolume,
  podUid: string,
  kubeletDir: string,
): { staging: string; target: string } {
  if (pv.claim.volumeMode === "Block") {
    return {
      staging: join(kubeletDir, "plugins/kubernetes.io/csi/volumeDevices/staging", pv.name),
      target: join(kubeletDir, "plugins/kubernetes.io/csi/volumeDevices/publish", pv.name, podUid),
    };
  }
  const handle = createHash("sha256").update(pv.volumeHandle).digest("hex");
  return {
    staging: join(kubeletDir, "plugins/kubernetes.io/csi", pv.storageClass.provisioner, handle, "globalmount"),
    target: join(kubeletDir, "pods", podUid, "volumes/kubernetes.io~csi", pv.name, "mount"),
  };
}

/** The passphrase the contract tests' stand-in Secret holds (docs/encryption.md: the operator's own). */
export const CONTRACT_PASSPHRASE = "sidecar-contract-passphrase";

/**
 * The secrets kubelet sends to NodeStageVolume or NodeExpandVolume: the Secret the class's
 * `csi.storage.k8s.io/<call>-secret-name` names, read by kubelet; none when the class names none.
 */
export function kubeletSecrets(sc: StorageClassManifest, call: "node-stage" | "node-expand"): Record<string, string> {
  return sc.parameters[`${RESERVED}${call}-secret-name`] ? { encryptionPassphrase: CONTRACT_PASSPHRASE } : {};
}

export function nodeStageRequest(pv: PersistentVolume, kubeletDir: string, podUid: string): NodeStageInit {
  return {
    volumeId: pv.volumeHandle,
    publishContext: {},
    stagingTargetPath: kubeletPaths(pv, podUid, kubeletDir).staging,
    volumeCapability: claimCapability(pv.storageClass, pv.claim, nodeMode(pv.claim)),
    secrets: kubeletSecrets(pv.storageClass, "node-stage"),
    volumeContext: { ...pv.volumeAttributes },
  };
}

export interface Pod {
  name: string;
  namespace: string;
  uid: string;
  serviceAccount: string;
}

/** NodePublishVolume as kubelet sends it; with podInfoOnMount (the shipped CSIDriver sets it) the pod's identity rides in the volume context. */
export function nodePublishRequest(
  pv: PersistentVolume,
  pod: Pod,
  kubeletDir: string,
  podInfoOnMount: boolean,
): NodePublishInit {
  const paths = kubeletPaths(pv, pod.uid, kubeletDir);
  const podInfo: Record<string, string> = podInfoOnMount
    ? {
        [`${RESERVED}pod.name`]: pod.name,
        [`${RESERVED}pod.namespace`]: pod.namespace,
        [`${RESERVED}pod.uid`]: pod.uid,
        [`${RESERVED}serviceAccount.name`]: pod.serviceAccount,
        [`${RESERVED}ephemeral`]: "false",
      }
    : {};
  return {
    volumeId: pv.volumeHandle,
    publishContext: {},
    stagingTargetPath: paths.staging,
    targetPath: paths.target,
    volumeCapability: claimCapability(pv.storageClass, pv.claim, nodeMode(pv.claim)),
    readonly: false,
    secrets: {},
    volumeContext: { ...pv.volumeAttributes, ...podInfo },
  };
}

/** NodeExpandVolume as kubelet sends it after the resizer grew the claim. */
export function nodeExpandRequest(pv: PersistentVolume, pod: Pod, kubeletDir: string, bytes: number): NodeExpandInit {
  const paths = kubeletPaths(pv, pod.uid, kubeletDir);
  return {
    volumeId: pv.volumeHandle,
    volumePath: paths.target,
    stagingTargetPath: paths.staging,
    capacityRange: { requiredBytes: BigInt(bytes), limitBytes: 0n },
    volumeCapability: claimCapability(pv.storageClass, pv.claim, nodeMode(pv.claim)),
    secrets: kubeletSecrets(pv.storageClass, "node-expand"),
  };
}

export interface SnapshotOptions {
  /** external-snapshotter's --extra-create-metadata (the shipped DaemonSet does not set it). */
  extraCreateMetadata: boolean;
  unstripped?: boolean;
}

/** CreateSnapshot as external-snapshotter v8 sends it for a VolumeSnapshot of this class. */
export function createSnapshotRequest(
  vsc: SnapshotClassManifest,
  snapshot: { name: string; namespace: string; uid: string },
  sourceVolumeId: string,
  options: SnapshotOptions,
): CreateSnapshotInit {
  const parameters = options.unstripped
    ? { ...vsc.parameters }
    : stripReserved(vsc.parameters, SNAPSHOTTER_STRIPPED, "external-snapshotter");
  if (options.extraCreateMetadata) {
    parameters[`${RESERVED}volumesnapshot/name`] = snapshot.name;
    parameters[`${RESERVED}volumesnapshot/namespace`] = snapshot.namespace;
    parameters[`${RESERVED}volumesnapshotcontent/name`] = `snapcontent-${snapshot.uid}`;
  }
  return { name: `snapshot-${snapshot.uid}`, sourceVolumeId, parameters, secrets: {} };
}

/** The node configuration (config.json) the shipped ConfigMap carries. */
export function shippedNodeConfig(
  folder: string,
): Record<string, unknown> & { deviceClasses: Record<string, unknown>[] } {
  for (const file of readdirSync(folder)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    for (const document of parseAllDocuments(readFileSync(join(folder, file), "utf8"))) {
      const object = document.toJS() as { kind?: string; data?: Record<string, string> } | null;
      const text = object?.kind === "ConfigMap" ? object.data?.["config.json"] : undefined;
      if (text !== undefined)
        return JSON.parse(text) as Record<string, unknown> & { deviceClasses: Record<string, unknown>[] };
    }
  }
  throw new Error(`no ConfigMap with a config.json in ${folder}`);
}

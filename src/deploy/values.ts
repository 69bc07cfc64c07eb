/**
 * The values file: every option an operator changes when installing loam on Kubernetes
 * (namespace, images, device classes, kubelet directory, node selector, tolerations,
 * resources, StorageClasses). It is read strictly, by the zod schema in values-schema.ts: an
 * unknown key, a wrong type, an image without a pinned tag, a sidecar version whose flags we
 * do not know, or a device class without a volume group fails with an error that names the
 * field, e.g. `deviceClasses[1].volumeGroup: is required`.
 */
import type { z } from "zod";
import type { IToleration } from "kubernetes-models/v1/Toleration";
import type { IResourceRequirements } from "kubernetes-models/v1/ResourceRequirements";
import type { SidecarName } from "./sidecars.js";
import { VALUES_SCHEMA } from "./values-schema.js";

export interface DeviceClassValues {
  name: string;
  volumeGroup: string;
  type: "thick" | "thin";
  thinPool?: string;
  overprovisionRatio?: number;
  dataThresholdPercent?: number;
  metadataThresholdPercent?: number;
  spareBytes?: number;
  stripes?: number;
  stripeSize?: string;
  mirrors?: number;
  default?: boolean;
}

export interface StorageClassValues {
  name: string;
  deviceClass: string;
  fsType: "xfs" | "ext4";
  stripes?: number;
  stripeSize?: string;
  mirrors?: number;
  mountOptions?: string[];
  reclaimPolicy: "Delete" | "Retain";
  default?: boolean;
  /** LUKS2: the Secret with encryptionPassphrase (docs/encryption.md). */
  encryption?: { secretName: string; secretNamespace?: string; pbkdfMemoryKiB?: number };
}

export type ImageName = "loam" | SidecarName;

/**
 * The two ways loam runs on Kubernetes: `distributed` (one DaemonSet, every node its own
 * controller, no etcd) and `cluster` (a controller Deployment over the etcd registry beside
 * external-provisioner in its central mode, and a node DaemonSet of agents).
 */
export type Topology = "distributed" | "cluster";

export interface ClusterValues {
  /** Controller replicas; all serve requests, background work runs on the one holding the etcd election. */
  replicas: number;
  /** `loam controller --placement` for volumes whose StorageClass does not say. */
  placement: "spread" | "binpack";
  /** `loam controller --node-timeout-seconds`: how long a call waits for the node agent. */
  nodeTimeoutSeconds: number;
  etcd: {
    endpoints: string[];
    /** A Secret with ca.crt, tls.crt and tls.key for the etcd client (https endpoints). */
    tlsSecret?: string;
  };
}

export interface Values {
  /** Which topologies `npm run manifests` renders: distributed in deploy/kubernetes/, cluster in deploy/kubernetes/cluster/. */
  topologies: Topology[];
  /** The cluster topology's controller and etcd; required when topologies has "cluster". */
  cluster?: ClusterValues;
  namespace: string;
  driverName: string;
  topologyKey: string;
  kubeletDir: string;
  logLevel: "debug" | "info" | "warn" | "error";
  images: Record<ImageName, string>;
  imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  priorityClassName: string;
  nodeSelector: Record<string, string>;
  tolerations: IToleration[];
  resources: { loam: IResourceRequirements; sidecars: IResourceRequirements };
  deviceClasses: DeviceClassValues[];
  storageClasses: StorageClassValues[];
  volumeSnapshotClass: { name: string; deletionPolicy: "Delete" | "Retain" };
  /** disks.json for every node (docs/disks.md), as written; absent: the operator makes the VG. */
  disks?: Record<string, unknown>;
}

export class ValuesError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "ValuesError";
  }
}

/** Reads and checks a parsed values file; throws ValuesError naming the first bad field. */
export function parseValues(input: unknown): Values {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new ValuesError("(values file)", "must be an object");
  const result = VALUES_SCHEMA.safeParse(input);
  const issue = result.error?.issues[0];
  if (issue) throw new ValuesError(...located(issue));
  return result.data as Values;
}

/** The field path of an issue (`deviceClasses[1].volumeGroup`, `nodeSelector["key"]`) and its message. */
function located(issue: z.core.$ZodIssue): [string, string] {
  let path = [...issue.path];
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    path = [...path, issue.keys[0] ?? ""];
    message = `unknown key; allowed keys here: ${allowedKeys(issue.path).join(", ")}`;
  } else if (issue.code === "invalid_key") {
    message = issue.issues[0]?.message ?? message;
  }
  const field = path
    .map((part, i) =>
      typeof part === "number"
        ? `[${part}]`
        : path[i - 1] === "nodeSelector"
          ? `["${String(part)}"]`
          : `${i === 0 ? "" : "."}${String(part)}`,
    )
    .join("");
  return [field, message];
}

/** The keys an object at `path` allows, read from the schema. */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  let schema: unknown = VALUES_SCHEMA;
  for (const part of path) {
    schema = unwrap(schema);
    const def = (schema as { def?: { shape?: Record<string, unknown>; element?: unknown } }).def;
    schema = typeof part === "number" ? def?.element : def?.shape?.[String(part)];
  }
  return Object.keys((unwrap(schema) as { def?: { shape?: Record<string, unknown> } }).def?.shape ?? {});
}

/** Through .default(), .optional() and refinements to the object or array inside. */
function unwrap(schema: unknown): unknown {
  let current = schema as { def?: { innerType?: unknown; in?: unknown } } | undefined;
  while (current?.def?.innerType !== undefined || current?.def?.in !== undefined) {
    current = (current.def.innerType ?? current.def.in) as typeof current;
  }
  return current;
}

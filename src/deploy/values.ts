/**
 * The values file: every option an operator changes when installing loam on Kubernetes
 * (namespace, images, device classes, kubelet directory, node selector, tolerations,
 * resources, StorageClasses). It is read strictly: an unknown key, a wrong type, an image
 * without a pinned tag, a sidecar version whose flags we do not know, or a device class
 * without a volume group fails with an error that names the field, e.g.
 * `deviceClasses[1].volumeGroup: is required`.
 */
import { ResourceRequirements } from "kubernetes-models/v1/ResourceRequirements";
import { Toleration } from "kubernetes-models/v1/Toleration";
import type { IToleration } from "kubernetes-models/v1/Toleration";
import type { IResourceRequirements } from "kubernetes-models/v1/ResourceRequirements";
import { DEVICE_CLASS_NAME, DNS_LABEL, DNS_SUBDOMAIN, LABEL_KEY } from "../volumes/names.js";
import { isValidStripeSize, parseStripeSize, STRIPE_SIZE_RULES } from "../volumes/size.js";
import { SIDECARS, type SidecarName, parseImage } from "./sidecars.js";

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
}

export type ImageName = "loam" | SidecarName;

export interface Values {
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

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const VG_OR_LV_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;
const MOUNT_OPTION = /^[A-Za-z0-9_][A-Za-z0-9_=,.:-]{0,127}$/;

type Json = unknown;

/** Reads and checks a parsed values file; throws ValuesError naming the first bad field. */
export function parseValues(input: Json): Values {
  const root = object("(values file)", input, [
    "namespace", "driverName", "topologyKey", "kubeletDir", "logLevel", "images", "imagePullPolicy",
    "priorityClassName", "nodeSelector", "tolerations", "resources", "deviceClasses", "storageClasses",
    "volumeSnapshotClass",
  ], ["namespace", "images", "deviceClasses"]);

  const namespace = matching("namespace", root.namespace, DNS_LABEL, "a Kubernetes namespace name (lowercase letters, digits, '-', at most 63)");
  const driverName = optional(root.driverName, "loam.csi.dev", (v) =>
    matching("driverName", v, DNS_SUBDOMAIN, "a domain-style CSI driver name such as loam.csi.dev", 63));
  const topologyKey = optional(root.topologyKey, "topology.loam.csi.dev/node", (v) =>
    matching("topologyKey", v, LABEL_KEY, "a Kubernetes label key such as topology.loam.csi.dev/node"));
  const kubeletDir = optional(root.kubeletDir, "/var/lib/kubelet", (v) => {
    const dir = string("kubeletDir", v);
    if (!/^\/[A-Za-z0-9._/-]*$/.test(dir) || dir.includes("..") || (dir.length > 1 && dir.endsWith("/"))) {
      throw new ValuesError("kubeletDir", `"${dir}" must be an absolute path without '..' or a trailing '/', e.g. /var/lib/kubelet`);
    }
    return dir;
  });
  const logLevel = optional(root.logLevel, "info", (v) => oneOf("logLevel", v, ["debug", "info", "warn", "error"] as const));

  const imagesIn = object("images", root.images, ["loam", ...Object.keys(SIDECARS)], ["loam"]);
  const images = { loam: image("images.loam", imagesIn.loam) } as Record<ImageName, string>;
  for (const [name, sidecar] of Object.entries(SIDECARS) as Array<[SidecarName, (typeof SIDECARS)[SidecarName]]>) {
    const field = `images.${name}`;
    const reference = imagesIn[name] === undefined ? sidecar.defaultImage : image(field, imagesIn[name]);
    const tag = parseImage(reference)?.tag;
    if (!tag || !(tag in sidecar.versions)) {
      throw new ValuesError(
        field,
        `"${reference}" is tagged ${tag ?? "(no tag)"}, a version whose flags the generator does not know; known: ${Object.keys(sidecar.versions).join(", ")} (every argument is checked against the pinned version's flags)`,
      );
    }
    images[name] = reference;
  }

  const imagePullPolicy = optional(root.imagePullPolicy, "IfNotPresent", (v) => oneOf("imagePullPolicy", v, ["Always", "IfNotPresent", "Never"] as const));
  const priorityClassName = optional(root.priorityClassName, "system-node-critical", (v) =>
    matching("priorityClassName", v, DNS_SUBDOMAIN, "a PriorityClass name, or \"\" for none", 253, true));

  const nodeSelector: Record<string, string> = {};
  for (const [key, value] of Object.entries(optional(root.nodeSelector, {}, (v) => object("nodeSelector", v)))) {
    if (!LABEL_KEY.test(key)) throw new ValuesError(`nodeSelector["${key}"]`, "is not a Kubernetes label key");
    const text = string(`nodeSelector["${key}"]`, value);
    if (text.length > 63 || !LABEL_VALUE.test(text)) throw new ValuesError(`nodeSelector["${key}"]`, `"${text}" is not a Kubernetes label value`);
    nodeSelector[key] = text;
  }

  const tolerations = optional(root.tolerations, [], (v) => array("tolerations", v)).map((item, i) =>
    kubernetesShape(`tolerations[${i}]`, item, ["key", "operator", "value", "effect", "tolerationSeconds"], (data) => new Toleration(data)),
  ) as IToleration[];

  const resourcesIn = optional(root.resources, {}, (v) => object("resources", v, ["loam", "sidecars"]));
  const resources = {
    loam: resourceRequirements("resources.loam", resourcesIn.loam, { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "512Mi" } }),
    sidecars: resourceRequirements("resources.sidecars", resourcesIn.sidecars, { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "256Mi" } }),
  };

  const deviceClasses = array("deviceClasses", root.deviceClasses).map((item, i) => deviceClass(`deviceClasses[${i}]`, item));
  if (deviceClasses.length === 0) throw new ValuesError("deviceClasses", "needs at least one device class");
  const seen = new Set<string>();
  for (const [i, c] of deviceClasses.entries()) {
    if (seen.has(c.name)) throw new ValuesError(`deviceClasses[${i}].name`, `"${c.name}" is used by two device classes`);
    seen.add(c.name);
  }
  const defaults = deviceClasses.filter((c) => c.default === true);
  if (deviceClasses.length > 1 && defaults.length !== 1) {
    throw new ValuesError("deviceClasses", `exactly one device class must have "default": true when there are several (found ${defaults.length})`);
  }

  const storageClasses = optional(root.storageClasses, [], (v) => array("storageClasses", v)).map((item, i) =>
    storageClass(`storageClasses[${i}]`, item, deviceClasses),
  );
  const scNames = new Set<string>();
  for (const [i, sc] of storageClasses.entries()) {
    if (scNames.has(sc.name)) throw new ValuesError(`storageClasses[${i}].name`, `"${sc.name}" is used by two StorageClasses`);
    scNames.add(sc.name);
  }
  if (storageClasses.filter((s) => s.default === true).length > 1) throw new ValuesError("storageClasses", "at most one StorageClass may be the cluster default");

  const vscIn = optional(root.volumeSnapshotClass, {}, (v) => object("volumeSnapshotClass", v, ["name", "deletionPolicy"]));
  const volumeSnapshotClass = {
    name: optional(vscIn.name, "loam-snapshots", (v) => matching("volumeSnapshotClass.name", v, DNS_SUBDOMAIN, "a Kubernetes object name", 253)),
    deletionPolicy: optional(vscIn.deletionPolicy, "Delete", (v) => oneOf("volumeSnapshotClass.deletionPolicy", v, ["Delete", "Retain"] as const)),
  };

  return {
    namespace, driverName, topologyKey, kubeletDir, logLevel, images, imagePullPolicy, priorityClassName,
    nodeSelector, tolerations, resources, deviceClasses, storageClasses, volumeSnapshotClass,
  };
}

function deviceClass(field: string, input: Json): DeviceClassValues {
  // The same settings `loam node` reads for a device class (src/cli/config.ts), checked the same way.
  const c = object(field, input, [
    "name", "volumeGroup", "type", "thinPool", "overprovisionRatio", "dataThresholdPercent", "metadataThresholdPercent",
    "spareBytes", "stripes", "stripeSize", "mirrors", "default",
  ], ["name", "volumeGroup"]);
  const name = matching(`${field}.name`, c.name, DEVICE_CLASS_NAME, "lowercase letters, digits and '-', at most 63 (StorageClasses name it in loam.csi.dev/deviceClass)");
  const volumeGroup = matching(`${field}.volumeGroup`, c.volumeGroup, VG_OR_LV_NAME, "an LVM volume group name (letters, digits, '+', '_', '.', '-')");
  const type = optional(c.type, "thick", (v) => oneOf(`${field}.type`, v, ["thick", "thin"] as const));
  const result: DeviceClassValues = { name, volumeGroup, type };
  if (type === "thin") {
    if (c.thinPool === undefined) throw new ValuesError(`${field}.thinPool`, "is required for a thin device class (the thin pool LV in the volume group)");
    result.thinPool = matching(`${field}.thinPool`, c.thinPool, VG_OR_LV_NAME, "an LVM logical volume name");
    if (c.overprovisionRatio !== undefined) result.overprovisionRatio = numberIn(`${field}.overprovisionRatio`, c.overprovisionRatio, 1, 100, false);
    for (const key of ["dataThresholdPercent", "metadataThresholdPercent"] as const) {
      if (c[key] !== undefined) result[key] = numberIn(`${field}.${key}`, c[key], 1, 100, false);
    }
    for (const key of ["stripes", "stripeSize", "mirrors"] as const) {
      if (c[key] !== undefined) throw new ValuesError(`${field}.${key}`, "applies to thick device classes only (a thin pool has its own layout)");
    }
  } else {
    for (const key of ["thinPool", "overprovisionRatio", "dataThresholdPercent", "metadataThresholdPercent"] as const) {
      if (c[key] !== undefined) throw new ValuesError(`${field}.${key}`, `applies to thin device classes only; set "type": "thin"`);
    }
    Object.assign(result, layout(field, c, 1));
  }
  if (c.spareBytes !== undefined) result.spareBytes = numberIn(`${field}.spareBytes`, c.spareBytes, 0, Number.MAX_SAFE_INTEGER, true);
  if (c.default !== undefined) result.default = boolean(`${field}.default`, c.default);
  return result;
}

/**
 * Stripes, stripe size and mirrors of a device class or a StorageClass. `minStripesForSize`
 * is 2 for a StorageClass (a stripe size without stripes is a mistake there) and 1 for a
 * device class (which may carry a default stripe size for the StorageClasses that stripe).
 */
function layout(field: string, c: Record<string, Json>, minStripesForSize: number): Pick<DeviceClassValues, "stripes" | "stripeSize" | "mirrors"> {
  const result: Pick<DeviceClassValues, "stripes" | "stripeSize" | "mirrors"> = {};
  if (c.stripes !== undefined) result.stripes = numberIn(`${field}.stripes`, c.stripes, 1, 128, true);
  if (c.stripeSize !== undefined) {
    const text = string(`${field}.stripeSize`, c.stripeSize);
    const bytes = parseStripeSize(text);
    if (bytes === undefined) throw new ValuesError(`${field}.stripeSize`, `"${text}" is not ${STRIPE_SIZE_RULES}`);
    if (!isValidStripeSize(bytes)) throw new ValuesError(`${field}.stripeSize`, `"${text}" is not a power of two from 4Ki to 1Gi`);
    result.stripeSize = text;
    if ((result.stripes ?? 1) < minStripesForSize) throw new ValuesError(`${field}.stripeSize`, "needs stripes of 2 or more");
  }
  if (c.mirrors !== undefined) result.mirrors = numberIn(`${field}.mirrors`, c.mirrors, 0, 9, true);
  if ((result.stripes ?? 1) > 1 && (result.mirrors ?? 0) > 0) throw new ValuesError(`${field}.mirrors`, "cannot be combined with stripes (loam makes striped or raid1 volumes, not raid10)");
  return result;
}

function storageClass(field: string, input: Json, classes: DeviceClassValues[]): StorageClassValues {
  const s = object(field, input, ["name", "deviceClass", "fsType", "stripes", "stripeSize", "mirrors", "mountOptions", "reclaimPolicy", "default"], ["name", "deviceClass"]);
  const name = matching(`${field}.name`, s.name, DNS_SUBDOMAIN, "a Kubernetes object name", 253);
  const className = string(`${field}.deviceClass`, s.deviceClass);
  const target = classes.find((c) => c.name === className);
  if (!target) throw new ValuesError(`${field}.deviceClass`, `"${className}" is not one of the device classes: ${classes.map((c) => c.name).join(", ")}`);
  const result: StorageClassValues = {
    name,
    deviceClass: className,
    fsType: optional(s.fsType, "xfs", (v) => oneOf(`${field}.fsType`, v, ["xfs", "ext4"] as const)),
    reclaimPolicy: optional(s.reclaimPolicy, "Delete", (v) => oneOf(`${field}.reclaimPolicy`, v, ["Delete", "Retain"] as const)),
    ...layout(field, s, target.stripes !== undefined && target.stripes > 1 ? 1 : 2),
  };
  if (target.type === "thin") {
    for (const key of ["stripes", "stripeSize", "mirrors"] as const) {
      if (result[key] !== undefined) throw new ValuesError(`${field}.${key}`, `device class "${className}" is thin; stripes and mirrors apply to thick classes only`);
    }
  }
  if (s.mountOptions !== undefined) {
    result.mountOptions = array(`${field}.mountOptions`, s.mountOptions).map((o, i) =>
      matching(`${field}.mountOptions[${i}]`, o, MOUNT_OPTION, "a mount option such as noatime or logbsize=256k"));
  }
  if (s.default !== undefined) result.default = boolean(`${field}.default`, s.default);
  return result;
}

function resourceRequirements(field: string, input: Json, fallback: IResourceRequirements): IResourceRequirements {
  if (input === undefined) return fallback;
  return kubernetesShape(field, input, ["requests", "limits"], (data) => new ResourceRequirements(data));
}

/** Known keys, then the Kubernetes schema of the type; errors name the field, not the schema path. */
function kubernetesShape(field: string, input: Json, keys: string[], model: (data: Record<string, Json>) => { validate(): void }): Record<string, Json> {
  const data = object(field, input, keys);
  try {
    model(data).validate();
  } catch (error) {
    const first = (error as Error).message.split(", ")[0] ?? String(error);
    const match = /^data\/?(\S*) (.*)$/.exec(first);
    const path = match?.[1] ? `.${match[1].replaceAll("/", ".")}` : "";
    throw new ValuesError(`${field}${path}`, match?.[2] ?? first);
  }
  return data;
}

function image(field: string, input: Json): string {
  const reference = string(field, input);
  const parsed = parseImage(reference);
  if (!parsed) {
    throw new ValuesError(field, `"${reference}" is not an image reference; expected [registry/]path:tag or path@sha256:<64 hex>, e.g. registry.k8s.io/sig-storage/csi-provisioner:v5.2.0`);
  }
  if (!parsed.tag && !parsed.digest) throw new ValuesError(field, `"${reference}" must be pinned with a tag or a digest`);
  if (parsed.tag === "latest" && !parsed.digest) throw new ValuesError(field, `"${reference}" uses :latest; pin a version so every node runs the same image`);
  return reference;
}

// ---------------------------------------------------------------- primitive readers

function object(field: string, input: Json, keys?: string[], requiredKeys: string[] = []): Record<string, Json> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new ValuesError(field, "must be an object");
  const record = input as Record<string, Json>;
  if (keys) {
    for (const key of Object.keys(record)) {
      if (!keys.includes(key)) {
        const at = field === "(values file)" ? key : `${field}.${key}`;
        throw new ValuesError(at, `unknown key; allowed keys here: ${keys.join(", ")}`);
      }
    }
  }
  for (const key of requiredKeys) {
    if (record[key] === undefined) throw new ValuesError(field === "(values file)" ? key : `${field}.${key}`, "is required");
  }
  return record;
}

function array(field: string, input: Json): Json[] {
  if (!Array.isArray(input)) throw new ValuesError(field, "must be a list");
  return input as Json[];
}

function string(field: string, input: Json): string {
  if (typeof input !== "string") throw new ValuesError(field, "must be a string");
  return input;
}

function boolean(field: string, input: Json): boolean {
  if (typeof input !== "boolean") throw new ValuesError(field, "must be true or false");
  return input;
}

function matching(field: string, input: Json, pattern: RegExp, what: string, maxLength = 63, allowEmpty = false): string {
  const text = string(field, input);
  if (allowEmpty && text === "") return text;
  if (text.length > maxLength || !pattern.test(text)) throw new ValuesError(field, `"${text}" is not ${what}`);
  return text;
}

function oneOf<T extends string>(field: string, input: Json, allowed: readonly T[]): T {
  const text = string(field, input);
  if (!(allowed as readonly string[]).includes(text)) throw new ValuesError(field, `"${text}" is not one of ${allowed.join(", ")}`);
  return text as T;
}

function numberIn(field: string, input: Json, min: number, max: number, integer: boolean): number {
  if (typeof input !== "number" || !Number.isFinite(input) || (integer && !Number.isInteger(input)) || input < min || input > max) {
    throw new ValuesError(field, `must be ${integer ? "a whole number" : "a number"} from ${min} to ${max}`);
  }
  return input;
}

function optional<T>(input: Json, fallback: T, read: (value: Json) => T): T {
  return input === undefined ? fallback : read(input);
}

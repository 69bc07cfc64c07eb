/**
 * StorageClass parameters (CreateVolume/GetCapacity `parameters`). Every key loam
 * reads is declared once here, with what it means and what values it allows; the
 * docs' parameter reference is checked against this table. Unknown keys are refused so
 * a typo in a StorageClass fails loudly instead of being silently ignored.
 *
 * Kubernetes puts its own keys in every StorageClass, for any driver: the reserved
 * `csi.storage.k8s.io/` prefix (fstype and the secret references) and the older
 * unprefixed secret keys. external-provisioner strips the reserved ones before
 * CreateVolume but passes a StorageClass's parameters to GetCapacity exactly as stored
 * (pkg/capacity/capacity.go, v5), and passes the older keys to both. Refusing them made
 * GetCapacity fail for every shipped class, so they are accepted and ignored: none of
 * them changes what loam makes or how much room it has.
 */
import { invalidArgument } from "./errors.js";
import { printable } from "./capabilities.js";
import { DEVICE_CLASS_NAME, isKubernetesObjectName } from "./names.js";
import { isValidStripeSize, parseStripeSize } from "./size.js";

export interface ParameterDefinition {
  key: string;
  type: "string" | "integer";
  defaultValue: string;
  allowed: string;
  description: string;
  /** Metadata keys describe the claim; they are recorded but never make two requests incompatible. */
  metadata: boolean;
  /** Whether a value is allowed (shaping keys); metadata keys are checked as Kubernetes names. */
  check?: (value: string) => boolean;
}

/** loam's own keys are namespaced, like Kubernetes' reserved ones, so they cannot clash with another driver's. */
export const PARAMETER_KEYS = {
  deviceClass: "loam.csi.dev/deviceClass",
  stripes: "loam.csi.dev/stripes",
  stripeSize: "loam.csi.dev/stripeSize",
  mirrors: "loam.csi.dev/mirrors",
  placement: "loam.csi.dev/placement",
} as const;

const integerIn =
  (min: number, max: number) =>
  (value: string): boolean =>
    /^[0-9]{1,4}$/.test(value) && Number(value) >= min && Number(value) <= max;

export const PARAMETERS: readonly ParameterDefinition[] = [
  {
    key: "csi.storage.k8s.io/pvc/name",
    type: "string",
    defaultValue: "(none)",
    allowed: "a Kubernetes object name",
    description: "Set by external-provisioner with --extra-create-metadata; recorded on the LV for operators.",
    metadata: true,
  },
  {
    key: "csi.storage.k8s.io/pvc/namespace",
    type: "string",
    defaultValue: "(none)",
    allowed: "a Kubernetes namespace name",
    description: "Set by external-provisioner with --extra-create-metadata; recorded on the LV for operators.",
    metadata: true,
  },
  {
    key: "csi.storage.k8s.io/pv/name",
    type: "string",
    defaultValue: "(none)",
    allowed: "a Kubernetes object name",
    description: "Set by external-provisioner with --extra-create-metadata; recorded on the LV for operators.",
    metadata: true,
  },
  {
    key: PARAMETER_KEYS.deviceClass,
    type: "string",
    defaultValue: "the node's default device class",
    allowed: "the name of a device class in the node configuration (lowercase letters, digits and '-')",
    description: "Which device class (volume group, thick or thin, layout) the volume comes from.",
    metadata: false,
    check: (value) => DEVICE_CLASS_NAME.test(value),
  },
  {
    key: PARAMETER_KEYS.stripes,
    type: "integer",
    defaultValue: "the device class's stripes (1 unless configured)",
    allowed:
      "1 to 128, at most the number of physical volumes in the class's volume group; thick classes only; not with mirrors",
    description: "Stripes the volume across this many physical volumes (lvcreate --stripes).",
    metadata: false,
    check: integerIn(1, 128),
  },
  {
    key: PARAMETER_KEYS.stripeSize,
    type: "string",
    defaultValue: "the device class's stripe size, else LVM's (64 KiB)",
    allowed:
      "a power of two from 4Ki to 1Gi and at most the extent size, in bytes or with Ki/Mi/Gi; needs stripes of 2 or more",
    description: "Stripe size of a striped volume (lvcreate --stripesize).",
    metadata: false,
    check: (value) => {
      const bytes = parseStripeSize(value);
      return bytes !== undefined && isValidStripeSize(bytes);
    },
  },
  {
    key: PARAMETER_KEYS.mirrors,
    type: "integer",
    defaultValue: "the device class's mirrors (0 unless configured)",
    allowed: "0 to 9, at most the number of physical volumes minus one; thick classes only; not with stripes",
    description: "Extra copies: 1 makes a two-way raid1 volume (lvcreate --type raid1 --mirrors).",
    metadata: false,
    check: integerIn(0, 9),
  },
  {
    key: PARAMETER_KEYS.placement,
    type: "string",
    defaultValue: "the controller's --placement (spread unless set)",
    allowed: "spread or binpack",
    description:
      "Cluster mode: which node a new volume goes to among those that fit: spread (most free first) or binpack (least free that fits first). A node serving its own volumes ignores it.",
    metadata: false,
    check: (value) => value === "spread" || value === "binpack",
  },
];

export interface VolumeParameters {
  /** Keys that shape the volume; two requests with the same name must agree on these. */
  shaping: Record<string, string>;
  /** Claim metadata recorded for operators. */
  metadata: Record<string, string>;
}

/** Kubernetes' reserved parameter prefix: keys the orchestrator reads itself (fstype, secret references). */
export const RESERVED_PREFIX = "csi.storage.k8s.io/";

/**
 * Secret keys from before the reserved prefix. external-provisioner still reads them and,
 * unlike the prefixed ones, passes them on to CreateVolume (its controller.go keeps them
 * "to preserve backwards compatibility").
 */
export const LEGACY_SECRET_KEYS: readonly string[] = [
  "csiProvisionerSecretName",
  "csiProvisionerSecretNamespace",
  "csiControllerPublishSecretName",
  "csiControllerPublishSecretNamespace",
  "csiNodeStageSecretName",
  "csiNodeStageSecretNamespace",
  "csiNodePublishSecretName",
  "csiNodePublishSecretNamespace",
];

/** True for a key Kubernetes may put in any StorageClass or VolumeSnapshotClass and loam does not read. */
export function isOrchestratorKey(key: string): boolean {
  return (key.startsWith(RESERVED_PREFIX) && key.length > RESERVED_PREFIX.length) || LEGACY_SECRET_KEYS.includes(key);
}

const ACCEPTED = `${PARAMETERS.filter((d) => !d.metadata)
  .map((d) => d.key)
  .join(", ")}; claim metadata ${PARAMETERS.filter((d) => d.metadata)
  .map((d) => d.key)
  .join(", ")}; and Kubernetes' own ${RESERVED_PREFIX}* keys, which loam ignores`;

export function parseParameters(parameters: Readonly<Record<string, string>>, field = "parameters"): VolumeParameters {
  const result: VolumeParameters = { shaping: {}, metadata: {} };
  for (const [key, value] of Object.entries(parameters)) {
    const definition = PARAMETERS.find((d) => d.key === key);
    if (!definition) {
      if (isOrchestratorKey(key)) continue;
      const namespaced = PARAMETERS.find((d) => d.key.endsWith(`/${key}`));
      const hint = namespaced ? ` (did you mean "${namespaced.key}"?)` : "";
      throw invalidArgument(`${field} has unknown key "${printable(key)}"${hint}; allowed keys: ${ACCEPTED}`);
    }
    if (definition.metadata) {
      if (!isKubernetesObjectName(value)) {
        throw invalidArgument(`${field}["${key}"] "${printable(value)}" is not ${definition.allowed}`);
      }
      result.metadata[key] = value;
    } else {
      if (definition.check && !definition.check(value)) {
        throw invalidArgument(
          `${field}["${key}"] "${printable(value)}" is not allowed; allowed: ${definition.allowed}`,
        );
      }
      result.shaping[key] = value;
    }
  }
  return result;
}

/** A stable text form of the shaping parameters, stored on the LV and compared on retries. */
export function fingerprint(parameters: VolumeParameters): string {
  const keys = Object.keys(parameters.shaping).sort();
  return JSON.stringify(keys.map((k) => [k, parameters.shaping[k]]));
}

/**
 * CreateSnapshot parameters. loam's snapshots take none of their own; the VolumeSnapshotClass
 * may still carry Kubernetes' keys (snapshotter secret references, which external-snapshotter
 * strips, and the volumesnapshot name keys it adds with --extra-create-metadata). Those are
 * ignored; anything else is a typo or a parameter meant for another driver.
 */
export function checkSnapshotParameters(parameters: Readonly<Record<string, string>>, field = "parameters"): void {
  for (const key of Object.keys(parameters)) {
    if (!isOrchestratorKey(key)) {
      throw invalidArgument(
        `${field} has unknown key "${printable(key)}"; loam's snapshots take no parameters of their own ` +
          `(only Kubernetes' ${RESERVED_PREFIX}* keys, which loam ignores)`,
      );
    }
  }
}

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
 *
 * Why ~440 lines: half of it is the PARAMETERS table, one declaration per key, from which the
 * docs' reference is generated and checked; it stays in one place on purpose. The seam for a
 * split is the per-feature cross-key checks (checkEncryptionOptions, checkIoLimits and their
 * pairs) into a module of their own, once another feature adds one.
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
  encryption: "loam.csi.dev/encryption",
  encryptionCipher: "loam.csi.dev/encryptionCipher",
  encryptionKeySize: "loam.csi.dev/encryptionKeySize",
  encryptionPbkdf: "loam.csi.dev/encryptionPbkdf",
  encryptionPbkdfMemory: "loam.csi.dev/encryptionPbkdfMemory",
  encryptionIterTime: "loam.csi.dev/encryptionIterTime",
  readIOPS: "loam.csi.dev/readIOPS",
  writeIOPS: "loam.csi.dev/writeIOPS",
  readBytesPerSecond: "loam.csi.dev/readBytesPerSecond",
  writeBytesPerSecond: "loam.csi.dev/writeBytesPerSecond",
  readIOPSPerGiB: "loam.csi.dev/readIOPSPerGiB",
  writeIOPSPerGiB: "loam.csi.dev/writeIOPSPerGiB",
  readBytesPerSecondPerGiB: "loam.csi.dev/readBytesPerSecondPerGiB",
  writeBytesPerSecondPerGiB: "loam.csi.dev/writeBytesPerSecondPerGiB",
  ioLimitsMissingCgroup: "loam.csi.dev/ioLimitsMissingCgroup",
} as const;

/** The IO limit keys, absolute and per GiB: the ones ControllerModifyVolume may change on a live volume. */
export const IO_LIMIT_KEYS = [
  PARAMETER_KEYS.readIOPS,
  PARAMETER_KEYS.writeIOPS,
  PARAMETER_KEYS.readBytesPerSecond,
  PARAMETER_KEYS.writeBytesPerSecond,
  PARAMETER_KEYS.readIOPSPerGiB,
  PARAMETER_KEYS.writeIOPSPerGiB,
  PARAMETER_KEYS.readBytesPerSecondPerGiB,
  PARAMETER_KEYS.writeBytesPerSecondPerGiB,
  PARAMETER_KEYS.ioLimitsMissingCgroup,
] as const;

/** Bounds of the IO limits: at least what a device does in one request, at most what none does. */
export const IO_LIMIT_BOUNDS = {
  iops: { min: 1, max: 10_000_000 },
  bytes: { min: 4096, max: 1_000_000_000_000 },
  iopsPerGiB: { min: 1, max: 1_000_000 },
  bytesPerGiB: { min: 1, max: 100_000_000_000 },
} as const;

/** The ciphers an encrypted volume may use (XTS: the key size is two AES or Serpent keys). */
export const ENCRYPTION_CIPHERS = ["aes-xts-plain64", "serpent-xts-plain64"] as const;
export const ENCRYPTION_KEY_SIZES = ["256", "512"] as const;
export const ENCRYPTION_PBKDFS = ["argon2id", "argon2i", "pbkdf2"] as const;

const integerIn =
  (min: number, max: number, digits = 4) =>
  (value: string): boolean =>
    new RegExp(`^[0-9]{1,${digits}}$`).test(value) && Number(value) >= min && Number(value) <= max;

/** A plain decimal integer within bounds (no sign, no exponent, no unit, no leading zero). */
const boundedInteger =
  ({ min, max }: { min: number; max: number }) =>
  (value: string): boolean =>
    /^[1-9][0-9]{0,14}$/.test(value) && Number(value) >= min && Number(value) <= max;

const range = ({ min, max }: { min: number; max: number }, unit: string): string =>
  `an integer from ${min} to ${max} (${unit}), digits only`;

const ioLimit = (
  key: string,
  bounds: { min: number; max: number },
  unit: string,
  description: string,
): ParameterDefinition => ({
  key,
  type: "integer",
  defaultValue: "(none: unlimited)",
  allowed: range(bounds, unit),
  description: `${description} Enforced through the pod's cgroup (docs/iolimits.md); ControllerModifyVolume may change it.`,
  metadata: false,
  check: boundedInteger(bounds),
});

const oneOf =
  (values: readonly string[]) =>
  (value: string): boolean =>
    values.includes(value);

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
  {
    key: PARAMETER_KEYS.encryption,
    type: "string",
    defaultValue: "(none: not encrypted)",
    allowed: "luks2",
    description:
      "Encrypts the volume at rest with LUKS2 (dm-crypt): the node formats and opens it at NodeStageVolume with the passphrase in the node-stage secret's key `encryptionPassphrase` (docs/encryption.md).",
    metadata: false,
    check: (value) => value === "luks2",
  },
  {
    key: PARAMETER_KEYS.encryptionCipher,
    type: "string",
    defaultValue: "aes-xts-plain64",
    allowed: ENCRYPTION_CIPHERS.join(" or "),
    description: "Encrypted volumes: the data cipher (cryptsetup luksFormat --cipher).",
    metadata: false,
    check: oneOf(ENCRYPTION_CIPHERS),
  },
  {
    key: PARAMETER_KEYS.encryptionKeySize,
    type: "integer",
    defaultValue: "512",
    allowed: "256 or 512 (bits; XTS splits it into two keys: 512 is AES-256)",
    description: "Encrypted volumes: the volume key size (cryptsetup luksFormat --key-size).",
    metadata: false,
    check: oneOf(ENCRYPTION_KEY_SIZES),
  },
  {
    key: PARAMETER_KEYS.encryptionPbkdf,
    type: "string",
    defaultValue: "argon2id",
    allowed: ENCRYPTION_PBKDFS.join(", "),
    description:
      "Encrypted volumes: the function that turns the passphrase into the keyslot's key (cryptsetup --pbkdf).",
    metadata: false,
    check: oneOf(ENCRYPTION_PBKDFS),
  },
  {
    key: PARAMETER_KEYS.encryptionPbkdfMemory,
    type: "integer",
    defaultValue: "cryptsetup's benchmark (up to 1048576 KiB, at most half the node's memory)",
    allowed: "32 to 4194304 (KiB); argon2i and argon2id only",
    description:
      "Encrypted volumes: the memory each unlock of an argon2 keyslot uses (cryptsetup --pbkdf-memory). Set it below the node container's memory limit.",
    metadata: false,
    check: integerIn(32, 4194304, 7),
  },
  {
    key: PARAMETER_KEYS.encryptionIterTime,
    type: "integer",
    defaultValue: "2000 (cryptsetup's)",
    allowed: "1 to 60000 (milliseconds)",
    description:
      "Encrypted volumes: how long one unlock should take on the formatting node (cryptsetup --iter-time); lower is faster to stage and cheaper to guess.",
    metadata: false,
    check: integerIn(1, 60000, 5),
  },
  ioLimit(PARAMETER_KEYS.readIOPS, IO_LIMIT_BOUNDS.iops, "read requests per second", "Read IOPS limit of the volume."),
  ioLimit(
    PARAMETER_KEYS.writeIOPS,
    IO_LIMIT_BOUNDS.iops,
    "write requests per second",
    "Write IOPS limit of the volume.",
  ),
  ioLimit(
    PARAMETER_KEYS.readBytesPerSecond,
    IO_LIMIT_BOUNDS.bytes,
    "bytes per second",
    "Read throughput limit of the volume.",
  ),
  ioLimit(
    PARAMETER_KEYS.writeBytesPerSecond,
    IO_LIMIT_BOUNDS.bytes,
    "bytes per second",
    "Write throughput limit of the volume.",
  ),
  ioLimit(
    PARAMETER_KEYS.readIOPSPerGiB,
    IO_LIMIT_BOUNDS.iopsPerGiB,
    "read requests per second per GiB",
    "Read IOPS limit per GiB of the volume's size (rounded up; follows expansion). Not with readIOPS.",
  ),
  ioLimit(
    PARAMETER_KEYS.writeIOPSPerGiB,
    IO_LIMIT_BOUNDS.iopsPerGiB,
    "write requests per second per GiB",
    "Write IOPS limit per GiB of the volume's size (rounded up; follows expansion). Not with writeIOPS.",
  ),
  ioLimit(
    PARAMETER_KEYS.readBytesPerSecondPerGiB,
    IO_LIMIT_BOUNDS.bytesPerGiB,
    "bytes per second per GiB",
    "Read throughput limit per GiB of the volume's size (follows expansion). Not with readBytesPerSecond.",
  ),
  ioLimit(
    PARAMETER_KEYS.writeBytesPerSecondPerGiB,
    IO_LIMIT_BOUNDS.bytesPerGiB,
    "bytes per second per GiB",
    "Write throughput limit per GiB of the volume's size (follows expansion). Not with writeBytesPerSecond.",
  ),
  {
    key: PARAMETER_KEYS.ioLimitsMissingCgroup,
    type: "string",
    defaultValue: "fail",
    allowed: "fail or warn; only with an IO limit",
    description:
      "What NodePublishVolume does when the workload's cgroup cannot be found: fail (the publish fails, so a limit is never silently missing) or warn (publish, log a warning, count it in loam_io_limit_missing_cgroup_total).",
    metadata: false,
    check: oneOf(["fail", "warn"]),
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
  checkEncryptionOptions(result.shaping, field);
  checkIoLimits(result.shaping, field);
  return result;
}

/** The encryption options make sense only together with the encryption key, and argon2's memory only with argon2. */
function checkEncryptionOptions(shaping: Readonly<Record<string, string>>, field: string): void {
  const options = Object.keys(shaping).filter(
    (k) => k.startsWith(PARAMETER_KEYS.encryption) && k !== PARAMETER_KEYS.encryption,
  );
  if (options.length > 0 && shaping[PARAMETER_KEYS.encryption] === undefined) {
    throw invalidArgument(
      `${field}["${options[0]}"] needs ${field}["${PARAMETER_KEYS.encryption}"]: "luks2"; the encryption options apply only to encrypted volumes`,
    );
  }
  const pbkdf = shaping[PARAMETER_KEYS.encryptionPbkdf];
  if (shaping[PARAMETER_KEYS.encryptionPbkdfMemory] !== undefined && pbkdf === "pbkdf2") {
    throw invalidArgument(
      `${field}["${PARAMETER_KEYS.encryptionPbkdfMemory}"] applies to argon2i and argon2id only, not to ${field}["${PARAMETER_KEYS.encryptionPbkdf}"] "pbkdf2"`,
    );
  }
}

/** Pairs that cannot both be set: an absolute limit and its per-GiB form. */
const IO_LIMIT_PAIRS: ReadonlyArray<readonly [string, string]> = [
  [PARAMETER_KEYS.readIOPS, PARAMETER_KEYS.readIOPSPerGiB],
  [PARAMETER_KEYS.writeIOPS, PARAMETER_KEYS.writeIOPSPerGiB],
  [PARAMETER_KEYS.readBytesPerSecond, PARAMETER_KEYS.readBytesPerSecondPerGiB],
  [PARAMETER_KEYS.writeBytesPerSecond, PARAMETER_KEYS.writeBytesPerSecondPerGiB],
];

/** An absolute limit and its per-GiB form exclude each other; the missing-cgroup policy needs a limit. */
export function checkIoLimits(shaping: Readonly<Record<string, string>>, field: string): void {
  for (const [absolute, perGiB] of IO_LIMIT_PAIRS) {
    if (shaping[absolute] !== undefined && shaping[perGiB] !== undefined) {
      throw invalidArgument(
        `${field}["${absolute}"] and ${field}["${perGiB}"] are both set; set one: the absolute limit or the limit per GiB of the volume's size`,
      );
    }
  }
  const policy = PARAMETER_KEYS.ioLimitsMissingCgroup;
  if (
    shaping[policy] !== undefined &&
    !IO_LIMIT_PAIRS.some(([a, b]) => shaping[a] !== undefined || shaping[b] !== undefined)
  ) {
    throw invalidArgument(`${field}["${policy}"] needs an IO limit (${IO_LIMIT_PAIRS.flat().join(", ")})`);
  }
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

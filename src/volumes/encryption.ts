/**
 * Encrypted volumes (LUKS2, docs/encryption.md): what a volume's StorageClass asked for, as
 * the node reads it back from the LV's parameter tag, the name of its dm-crypt mapping, and
 * the secret key that holds its passphrase. The passphrase itself is a Buffer handed to
 * cryptsetup on its standard input, never put in argv, a log line or an error.
 */
import { invalidArgument } from "./errors.js";
import { PARAMETER_KEYS } from "./parameters.js";

/** The key of the node-stage (and node-expand) secret that holds a volume's passphrase. */
export const PASSPHRASE_KEY = "encryptionPassphrase";

/** cryptsetup's limit on a key file read from standard input (--keyfile-size-max default: 8 MiB). */
const MAX_PASSPHRASE_BYTES = 8 * 1024 * 1024;

export interface EncryptionSpec {
  type: "luks2";
  cipher: string;
  keySizeBits: number;
  pbkdf: string;
  /** argon2 memory in KiB; cryptsetup's benchmark decides when absent. */
  pbkdfMemoryKiB?: number;
  /** Milliseconds one unlock should take; cryptsetup's 2000 when absent. */
  iterTimeMs?: number;
}

/** The encryption a set of validated shaping parameters asks for, or undefined for a plain volume. */
export function encryptionOf(shaping: Readonly<Record<string, string>>): EncryptionSpec | undefined {
  if (shaping[PARAMETER_KEYS.encryption] !== "luks2") return undefined;
  const spec: EncryptionSpec = {
    type: "luks2",
    cipher: shaping[PARAMETER_KEYS.encryptionCipher] ?? "aes-xts-plain64",
    keySizeBits: Number(shaping[PARAMETER_KEYS.encryptionKeySize] ?? "512"),
    pbkdf: shaping[PARAMETER_KEYS.encryptionPbkdf] ?? "argon2id",
  };
  const memory = shaping[PARAMETER_KEYS.encryptionPbkdfMemory];
  if (memory !== undefined) spec.pbkdfMemoryKiB = Number(memory);
  const iterTime = shaping[PARAMETER_KEYS.encryptionIterTime];
  if (iterTime !== undefined) spec.iterTimeMs = Number(iterTime);
  return spec;
}

/**
 * The encryption recorded in an LV's parameter tag (parameters.ts fingerprint(): a JSON list
 * of [key, value] pairs). A tag that does not parse is a plain volume's: loam wrote every tag
 * it reads, and volumes from before encryption carry no encryption key.
 */
export function encryptionOfFingerprint(text: string): EncryptionSpec | undefined {
  let pairs: unknown;
  try {
    pairs = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(pairs)) return undefined;
  const shaping: Record<string, string> = {};
  for (const pair of pairs) {
    if (Array.isArray(pair) && typeof pair[0] === "string" && typeof pair[1] === "string") shaping[pair[0]] = pair[1];
  }
  return encryptionOf(shaping);
}

/** The dm-crypt mapping an encrypted volume is opened as: /dev/mapper/<this>. LV names are at most 127 characters, dm's limit. */
export function mappingName(volumeId: string): string {
  return `loam-${volumeId}`.slice(0, 127);
}

export function mappingPath(volumeId: string): string {
  return `/dev/mapper/${mappingName(volumeId)}`;
}

/**
 * The passphrase from a request's secrets: INVALID_ARGUMENT naming the key (and where
 * Kubernetes takes it from) when it is missing or empty. `secretParameter` is the
 * StorageClass parameter that names the secret (node-stage or node-expand).
 */
export function passphraseFrom(
  secrets: Readonly<Record<string, string>>,
  volumeId: string,
  secretParameter: string,
): Buffer {
  const value = secrets[PASSPHRASE_KEY];
  if (value === undefined || value === "") {
    const keys = Object.keys(secrets);
    throw invalidArgument(
      `volume ${volumeId} is encrypted (LUKS2) and the request's secrets have no non-empty "${PASSPHRASE_KEY}" key` +
        (keys.length > 0 ? ` (they have ${keys.length} other key(s))` : " (they are empty)") +
        `; put the passphrase under "${PASSPHRASE_KEY}" in the Secret that the StorageClass's ${secretParameter}-name and ${secretParameter}-namespace parameters name`,
    );
  }
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > MAX_PASSPHRASE_BYTES) {
    throw invalidArgument(
      `the "${PASSPHRASE_KEY}" secret of volume ${volumeId} is longer than 8 MiB, cryptsetup's limit`,
    );
  }
  return bytes;
}

/** The StorageClass parameter prefixes of the secrets Kubernetes sends to NodeStageVolume and NodeExpandVolume. */
export const NODE_STAGE_SECRET = "csi.storage.k8s.io/node-stage-secret";
export const NODE_EXPAND_SECRET = "csi.storage.k8s.io/node-expand-secret";

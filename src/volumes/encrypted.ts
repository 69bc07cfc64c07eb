/**
 * An encrypted volume on this node (LUKS2 over dm-crypt, docs/encryption.md): the node's
 * rules for its mapping. Stage opens the LV's LUKS header as /dev/mapper/loam-<id>, and
 * formats one only on an LV that holds nothing (the same "never over data" rule as a
 * filesystem), under the format-in-progress mark from before luksFormat until the filesystem
 * on the mapping is made; a volume still marked is loam's own unfinished work (a crash
 * between luksFormat and mkfs), closed, wiped and formatted again. A wrong passphrase opens
 * nothing and changes nothing. Unstage closes the mapping; a busy one stays open. The
 * passphrase travels as bytes to cryptsetup's standard input only.
 */
import { CommandExitError } from "../exec/index.js";
import { CRYPTSETUP_EXIT } from "../host/crypt.js";
import { type EncryptionSpec, PASSPHRASE_KEY, mappingName, mappingPath } from "./encryption.js";
import { VolumeError, failedPrecondition } from "./errors.js";
import {
  FORMAT_TIMEOUT_MS,
  type FormatMark,
  type HostCallOptions,
  type NodeHost,
  hostFailure,
  hostStep,
} from "./node-host.js";
import type { Volume } from "./volume.js";

export type EncryptedVolume = Pick<Volume, "id" | "devicePath"> & { encryption: EncryptionSpec };

export interface OpenedMapping {
  /** /dev/mapper/loam-<id>. */
  devicePath: string;
  /** True when this call wrote the LUKS header: the mark is on and the mapping holds nothing yet. */
  fresh: boolean;
}

/** The mapping's device node when it is open (a stat, no process: nodes without cryptsetup never start one). */
export async function openMappingDevice(host: NodeHost, id: string): Promise<string | undefined> {
  const found = await host.stat(mappingPath(id)).catch(() => undefined);
  return found?.type === "block-device" ? found.device : undefined;
}

/**
 * Opens the volume's mapping, formatting the LV first only when it is empty (or still
 * carries the mark of loam's own interrupted format).
 */
export async function openEncrypted(
  host: NodeHost,
  volume: EncryptedVolume,
  passphrase: Uint8Array,
  mark: FormatMark,
  options: HostCallOptions,
): Promise<OpenedMapping> {
  const { id, devicePath: lv } = volume;
  const name = mappingName(id);
  const path = mappingPath(id);
  if (mark.marked) {
    // What the LV holds is loam's own unfinished format: start it again from nothing.
    await hostStep(`closing the unfinished mapping ${path} of volume ${id}`, () => host.luksClose(name));
    const look = await host.firstLook(lv);
    await hostStep(`wiping the unfinished format of volume ${id}`, async () => {
      if (look !== "empty") await host.wipeSignatures(lv, { timeoutMs: FORMAT_TIMEOUT_MS });
    });
    await format(host, volume, passphrase);
    await open(host, volume, passphrase, options);
    return { devicePath: path, fresh: true };
  }
  if (await openMappingDevice(host, id)) return { devicePath: path, fresh: false };
  if (await hostStep(`reading whether volume ${id} holds a LUKS header`, () => host.isLuks(lv, options))) {
    await open(host, volume, passphrase, options);
    return { devicePath: path, fresh: false };
  }
  const content = await hostStep(`looking at what volume ${id} holds`, async () =>
    host.probe(lv, options, await host.firstLook(lv)),
  );
  if (content.kind !== "empty") {
    const what = content.kind === "filesystem" ? `a ${content.fsType} filesystem` : content.description;
    throw failedPrecondition(
      `volume ${id} is encrypted (its StorageClass says luks2) but holds ${what}, not a LUKS header; ` +
        "loam never formats over existing data (a clone or restore of an unencrypted volume stays unencrypted: use a class without encryption)",
    );
  }
  await mark.add();
  await format(host, volume, passphrase);
  await open(host, volume, passphrase, options);
  return { devicePath: path, fresh: true };
}

/** luksFormat with its own timeout and never the caller's signal (as mkfs: staging.ts). */
async function format(host: NodeHost, volume: EncryptedVolume, passphrase: Uint8Array): Promise<void> {
  const { cipher, keySizeBits, pbkdf, pbkdfMemoryKiB, iterTimeMs } = volume.encryption;
  await hostStep(`formatting volume ${volume.id} as LUKS2`, () =>
    host.luksFormat(
      volume.devicePath,
      passphrase,
      {
        cipher,
        keySizeBits,
        pbkdf,
        ...(pbkdfMemoryKiB !== undefined ? { pbkdfMemoryKiB } : {}),
        ...(iterTimeMs !== undefined ? { iterTimeMs } : {}),
      },
      { timeoutMs: FORMAT_TIMEOUT_MS },
    ),
  );
}

async function open(
  host: NodeHost,
  volume: EncryptedVolume,
  passphrase: Uint8Array,
  options: HostCallOptions,
): Promise<void> {
  const { id } = volume;
  try {
    await host.luksOpen(volume.devicePath, mappingName(id), passphrase, options);
  } catch (error) {
    if (error instanceof CommandExitError && error.exitCode === CRYPTSETUP_EXIT.noPermission) {
      throw new VolumeError(
        "invalid-argument",
        `the passphrase in the secret's "${PASSPHRASE_KEY}" key does not open volume ${id}'s LUKS2 header ` +
          "(no keyslot accepts it); nothing on the volume was changed. Put the passphrase the volume was formatted with in the node-stage secret",
        { cause: error },
      );
    }
    if (error instanceof CommandExitError && error.exitCode === CRYPTSETUP_EXIT.busy) {
      throw new VolumeError(
        "failed-precondition",
        `volume ${id}'s device ${volume.devicePath} is in use (already mapped under another name, or mounted); ` +
          `loam opens it only as ${mappingPath(id)}: close the other mapping first`,
        { cause: error },
      );
    }
    throw hostFailure(error, `opening volume ${id} as ${mappingPath(id)}`);
  }
}

/**
 * Closes the volume's mapping when it is open. Busy (mounted elsewhere, a published block
 * device still bound, a process holding it open): FAILED_PRECONDITION, and it stays open;
 * the unstage succeeds on a retry once what holds it lets go.
 */
export async function closeEncrypted(host: NodeHost, id: string, options: HostCallOptions): Promise<void> {
  if (!(await openMappingDevice(host, id))) return;
  try {
    await host.luksClose(mappingName(id), options);
  } catch (error) {
    if (error instanceof CommandExitError && error.exitCode === CRYPTSETUP_EXIT.busy) {
      throw new VolumeError(
        "failed-precondition",
        `the encrypted mapping ${mappingPath(id)} of volume ${id} is still in use (mounted or published somewhere, or held open by a process), so it stays open; ` +
          "unpublish the volume or stop what holds it, then unstage again",
        { cause: error },
      );
    }
    throw hostFailure(error, `closing ${mappingPath(id)} of volume ${id}`);
  }
}

/**
 * Grows the open mapping to fill its grown LV. cryptsetup needs the passphrase for a LUKS2
 * mapping whose key is in the kernel keyring (the default): the node-expand secret.
 */
export async function resizeEncrypted(
  host: NodeHost,
  id: string,
  lvSizeBytes: number,
  passphrase: () => Uint8Array,
  options: HostCallOptions,
): Promise<void> {
  const name = mappingName(id);
  const status = await hostStep(`reading ${mappingPath(id)}`, () => host.mappingStatus(name, options));
  if (!status.active) {
    throw failedPrecondition(
      `the encrypted mapping ${mappingPath(id)} of volume ${id} is not open; stage the volume first`,
    );
  }
  if (
    status.offsetSectors !== undefined &&
    status.sizeSectors !== undefined &&
    (status.offsetSectors + status.sizeSectors) * 512 >= lvSizeBytes
  ) {
    return;
  }
  const key = passphrase();
  await hostStep(`growing ${mappingPath(id)} of volume ${id} to its device`, () => host.luksResize(name, key, options));
}

/** What is wrong with an encrypted volume's mapping, for VolumeCondition; undefined when it is open and well. */
export async function mappingProblem(host: NodeHost, id: string): Promise<string | undefined> {
  if (!(await openMappingDevice(host, id))) {
    return `the encrypted mapping ${mappingPath(id)} of volume ${id} is not open (closed, or its open failed)`;
  }
  const status = await host.mappingStatus(mappingName(id)).catch((error: unknown) => error as Error);
  if (status instanceof Error) return `cryptsetup cannot read ${mappingPath(id)}: ${status.message}`;
  if (!status.active)
    return `the encrypted mapping ${mappingPath(id)} of volume ${id} is not active: ${status.summary}`;
  return undefined;
}

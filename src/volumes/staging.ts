/**
 * A volume on this node, the node's rules: stage makes a filesystem only on an empty
 * device and never formats over data (but formats again a volume whose earlier format was
 * interrupted: the format-in-progress mark says so), mounts it once per node (xfs with nouuid), and grows
 * a filesystem it found to fill its device; unstage takes the mount away; expand grows the
 * LV and then the mounted filesystem; stats report usage and condition. Each step first
 * looks at the kernel's mount table and only does what is still missing, so every call is
 * idempotent. Paths arrive resolved and confined; the caller holds the per-volume lock.
 *
 * Why ~450 lines: stage, unstage, expand and stats share the mount-table reading and the
 * device (plain LV or LUKS mapping, `dataDevice`) they act on. The seam for a split is
 * `unmountVolume` with its checks (what is mounted where, whose it is) into its own module,
 * which unstage and unpublish (publishing.ts) both call.
 */
import type { Volume, VolumeCondition } from "./volume.js";
import type { VolumeRead } from "./volumes.js";
import type { FsType, VolumeUse } from "./capabilities.js";
import { alreadyExists, failedPrecondition, notFound } from "./errors.js";
import { isReadOnly, mountAt } from "../host/mountinfo.js";
import { NODE_EXPAND_SECRET, NODE_STAGE_SECRET, mappingPath, passphraseFrom } from "./encryption.js";
import { closeEncrypted, mappingProblem, openEncrypted, resizeEncrypted } from "./encrypted.js";
import { FormatMarks } from "./format-marks.js";
import {
  type DeviceContent,
  FORMAT_TIMEOUT_MS,
  type FormatMark,
  type HostCallOptions,
  type HostMount,
  type NodeEngine,
  type NodeHost,
  checkFlagsMatch,
  deviceNumber,
  hostStep,
} from "./node-host.js";

/** What prepareFilesystem did: made the filesystem, or found this and wrote nothing. */
export type Prepared = { kind: "formatted" } | Exclude<DeviceContent, { kind: "empty" }>;

export type { FormatMark };
export { FORMAT_TIMEOUT_MS };

/**
 * Makes `fsType` on a device that holds nothing; otherwise says what the device holds and
 * leaves it untouched, unless the volume carries the format-in-progress mark.
 *
 * The mark goes on only after the probe found the device empty and comes off only after mkfs
 * finished, so whatever a marked device holds is loam's own unfinished work: it is wiped
 * (wipefs -a, then mkfs with its force flag) and formatted again. That covers every point a
 * crash, a kill or a timeout can stop at: marked but mkfs not started (an empty device), mkfs
 * half way (a partial head that would read as data or a broken filesystem), mkfs done but the
 * mark still on (a filesystem nothing has used yet: the mount comes after the mark is gone).
 * Neither the wipe nor mkfs gets the caller's signal.
 *
 * A new thick LV on extents a deleted volume used is zero in its first 4 KiB (lvcreate's
 * doing) but not at its edges, so emptiness needs a signature probe (blkid -p), which runs
 * before the mark goes on: a device whose edges are zero ("empty") needs no process.
 */
export async function prepareFilesystem(
  host: NodeHost,
  device: string,
  fsType: FsType,
  mark: FormatMark,
  options: HostCallOptions = {},
): Promise<Prepared> {
  const look = await host.firstLook(device);
  if (mark.marked) {
    if (look !== "empty") await host.wipeSignatures(device, { timeoutMs: FORMAT_TIMEOUT_MS });
    await host.makeFilesystem(device, fsType, { timeoutMs: FORMAT_TIMEOUT_MS, force: true });
    await mark.clear();
    return { kind: "formatted" };
  }
  const content = await host.probe(device, options, look);
  if (content.kind !== "empty") return content;
  await mark.add();
  await host.makeFilesystem(device, fsType, { timeoutMs: FORMAT_TIMEOUT_MS });
  await mark.clear();
  return { kind: "formatted" };
}

/**
 * The flags a filesystem is staged with. A clone or restore of an xfs volume carries its
 * source's filesystem UUID; xfs refuses to mount two filesystems with one UUID unless told
 * not to check.
 */
export function stageMountFlags(fsType: string, flags: readonly string[]): readonly string[] {
  return fsType === "xfs" && !flags.includes("nouuid") ? [...flags, "nouuid"] : flags;
}

export interface StageRequest {
  id: string;
  /** The staging path, resolved and confined. */
  staging: string;
  use: VolumeUse;
  /** The fs_type the request named, or undefined when it left the choice to loam. */
  askedFsType: string | undefined;
  /** The node-stage secrets: an encrypted volume's passphrase (encryption.ts PASSPHRASE_KEY). */
  secrets?: Readonly<Record<string, string>>;
}

/** The device a volume's data is on: its LV, or for an encrypted volume the dm-crypt mapping over it. */
export function dataDevice(
  volume: Pick<Volume, "id" | "devicePath" | "encryption">,
): Pick<Volume, "id" | "devicePath"> {
  return volume.encryption
    ? { id: volume.id, devicePath: mappingPath(volume.id) }
    : { id: volume.id, devicePath: volume.devicePath };
}

export interface UsageFigures {
  total: bigint;
  used: bigint;
  available: bigint;
}

export interface VolumeStats {
  bytes?: UsageFigures;
  inodes?: UsageFigures;
  condition: VolumeCondition;
}

/** A mount as findmnt names it: the source, with the mounted directory or node when it is not the root. */
export function describeMount(mount: Pick<HostMount, "source" | "root" | "fsType">): string {
  return `${mount.source}${mount.root === "/" ? "" : `[${mount.root}]`} (${mount.fsType})`;
}

export class VolumeStaging {
  /**
   * Device paths of volumes staged by this process. Publish runs once per pod, and an LVM
   * report costs more than the bind mount itself; the device number is still checked
   * against the staged mount, and a path that no longer resolves falls back to LVM.
   */
  private readonly devices = new Map<string, Pick<Volume, "id" | "devicePath">>();
  /** Format-in-progress marks: which are off, which removals are under way (format-marks.ts). */
  readonly marks: FormatMarks;

  constructor(
    private readonly engine: NodeEngine,
    readonly host: NodeHost,
  ) {
    this.marks = new FormatMarks(engine, (id, options) => this.knownVolume(id, options));
  }

  /**
   * The volume as LVM reports it, or NOT_FOUND. Asked before a request's path is judged, so
   * an unknown volume_id is NOT_FOUND whatever the path (CSI spec); it touches no path.
   */
  async knownVolume(id: string, options: HostCallOptions, read?: VolumeRead): Promise<Volume> {
    const volume = await hostStep(`looking up volume ${id}`, () => this.engine.getVolume(id, options, read));
    if (!volume) throw notFound(`volume ${id} does not exist on this node`);
    return volume;
  }

  /** The volume, active, or NOT_FOUND. */
  async activeVolume(id: string, options: HostCallOptions): Promise<Volume> {
    const volume = await hostStep(`activating volume ${id}`, () => this.engine.ensureActive(id, options));
    this.devices.set(id, dataDevice(volume));
    return volume;
  }

  /**
   * The device of a volume this process staged, or the volume as activeVolume finds it;
   * `neverStaged` when it still carries the mark its lvcreate wrote (a stage takes it off).
   */
  async stagedDevice(
    id: string,
    options: HostCallOptions,
  ): Promise<Pick<Volume, "id" | "devicePath"> & { neverStaged?: boolean }> {
    const known = this.devices.get(id);
    if (known && (await this.host.stat(known.devicePath).catch(() => undefined))?.type === "block-device") return known;
    const volume = await this.activeVolume(id, options);
    return { ...dataDevice(volume), neverStaged: volume.formatting && !volume.encryption };
  }

  async stage(request: StageRequest, options: HostCallOptions): Promise<void> {
    const { id, staging, use, askedFsType: asked } = request;
    const { host } = this;
    // The mount table is read alongside the lookup: each is a wait on the kernel or LVM.
    const [volume, mounts] = await Promise.all([this.activeVolume(id, options), host.mounts()]);
    const existing = mountAt(mounts, staging);
    const { now: mark, afterMount } = this.marks.forStage(volume, options);
    let data: Pick<Volume, "id" | "devicePath"> = volume;
    let fresh = false;
    if (volume.encryption) {
      const passphrase = passphraseFrom(request.secrets ?? {}, id, NODE_STAGE_SECRET);
      const opened = await openEncrypted(host, { ...volume, encryption: volume.encryption }, passphrase, mark, options);
      data = { id, devicePath: opened.devicePath };
      fresh = opened.fresh;
      this.devices.set(id, data);
      // A new raw block volume is done once its mapping is open: nothing goes on top.
      if (fresh && use.access.kind === "block") await hostStep(`unmarking volume ${id}`, () => mark.clear());
    }
    // Block volumes have nothing to mount here: publish binds the device node itself. A new
    // volume's mark (from its lvcreate) comes off first: what is written through the device is data.
    if (use.access.kind === "block") {
      if (volume.formatting && !volume.encryption) await hostStep(`unmarking volume ${id}`, () => mark.clear());
      return;
    }
    const access = use.access;
    const device = await deviceNumber(host, data);
    if (existing) {
      if (existing.majorMinor !== device) {
        throw alreadyExists(
          `staging_target_path ${staging} already has ${existing.source} (${existing.fsType}) mounted, not volume ${id}`,
        );
      }
      if (asked && existing.fsType !== asked) {
        throw alreadyExists(
          `volume ${id} is staged at ${staging} as ${existing.fsType}; this request asks for ${asked}`,
        );
      }
      checkFlagsMatch(existing, access.mountFlags, `volume ${id} is staged at ${staging}`);
      // Staged and still marked: the format finished (loam mounts after mkfs) and its removal did not.
      this.marks.staged(volume);
      return;
    }
    await hostStep(`creating ${staging}`, () => host.makeDirectory(staging));
    // A mapping this call formatted carries the mark and holds nothing of anyone's: mkfs runs as on a marked volume.
    const content = await hostStep(`making ${access.fsType} on volume ${id} if it is empty`, () =>
      prepareFilesystem(
        host,
        data.devicePath,
        access.fsType,
        fresh ? { ...afterMount, marked: true } : afterMount,
        options,
      ),
    );
    let fsType: string;
    switch (content.kind) {
      case "formatted":
        fsType = access.fsType;
        break;
      case "filesystem":
        if (asked && content.fsType !== asked) {
          throw failedPrecondition(
            `volume ${id} already holds a ${content.fsType} filesystem but ${asked} was asked for; loam never reformats existing data`,
          );
        }
        fsType = content.fsType;
        break;
      case "other":
        throw failedPrecondition(
          `volume ${id} holds ${content.description}, not a filesystem; loam never formats over existing data`,
        );
    }
    const flags = stageMountFlags(fsType, access.mountFlags);
    const readonly = use.mode === "single-node-reader-only";
    await hostStep(`mounting volume ${id} at ${staging}`, () =>
      host.mountFilesystem(data.devicePath, staging, fsType, flags, { readonly, signal: options.signal }),
    );
    if (content.kind === "filesystem" && !readonly) {
      // A volume restored into a larger LV (or grown while unstaged) gets a filesystem as large as its device.
      await hostStep(`growing the filesystem of volume ${id}`, () =>
        host.growFilesystem({ fsType, device: data.devicePath, mountPoint: staging }, options),
      );
    }
  }

  /** kubelet made the staging directory and removes it; this only takes the volume's mount away. */
  async unstage(id: string, staging: string, options: HostCallOptions): Promise<void> {
    // A removal still under way finishes first, so an unstaged volume's tags are final.
    await this.marks.quiet(id);
    await this.unmountVolume(id, staging, "staging_target_path", options);
    // An encrypted volume's mapping closes once nothing uses it (encrypted.ts); a plain volume has none.
    await closeEncrypted(this.host, id, options);
    this.devices.delete(id);
  }

  /**
   * Unmounts this volume from path, layer by layer from the top, and nothing else: each
   * layer is unmounted only when it is the volume's filesystem (the mount's device number is
   * the LV's, also through a bind of its staging path) or its device node bound onto a file
   * (stat of the path shows the LV's device). Nothing mounted at path: nothing to do (so a
   * volume deleted since, or never staged, is OK and kubelet can clean up). On top of the
   * stack something else: FAILED_PRECONDITION naming it, NOT_FOUND when the volume does not
   * exist; it stays mounted, and so does the volume when it lies beneath.
   */
  async unmountVolume(id: string, path: string, field: string, options: HostCallOptions): Promise<void> {
    const { host } = this;
    let top = mountAt(await hostStep("reading the mount table", () => host.mounts()), path);
    if (!top) return;
    const device = await this.volumeDevice(id, options);
    let unmounted = 0;
    for (let attempts = 0; top; attempts += 1) {
      if (device === "unknown") {
        throw notFound(
          `volume ${id} does not exist on this node; ${field} ${path} holds ${describeMount(top)}, which loam leaves mounted`,
        );
      }
      if (!(await this.isVolumeMount(top, path, device))) {
        throw failedPrecondition(await this.foreignMountMessage(id, path, field, device, top, unmounted));
      }
      if (attempts >= 64) throw failedPrecondition(`${field} ${path} still has mounts after 64 unmounts`);
      const layer = top;
      // Only the layer judged here: when another one came on top meanwhile, it is judged next.
      const done = await hostStep(`unmounting volume ${id} from ${path}`, async () => {
        try {
          return await host.unmount(path, layer.id, options);
        } catch (error) {
          // Gone between the look and umount (an outside umount): that layer is done.
          if (mountAt(await host.mounts(), path)?.id !== layer.id) return false;
          throw error;
        }
      });
      if (done) unmounted += 1;
      top = mountAt(await hostStep("reading the mount table", () => host.mounts()), path);
    }
  }

  /**
   * The volume's "major:minor" as its device node says, without activating it: "inactive"
   * when LVM knows it but its node is missing (nothing mounted can be it), "unknown" when LVM
   * does not know it.
   */
  private async volumeDevice(id: string, options: HostCallOptions): Promise<string> {
    const { host } = this;
    const nodeOf = async (path: string): Promise<string | undefined> => {
      const found = await host.stat(path).catch(() => undefined);
      return found?.type === "block-device" ? found.device : undefined;
    };
    const known = this.devices.get(id);
    const cached = known && (await nodeOf(known.devicePath));
    if (cached) return cached;
    const volume = await hostStep(`looking up volume ${id}`, () =>
      this.engine.getVolume(id, options, { current: false }),
    );
    if (!volume) return "unknown";
    return (await nodeOf(dataDevice(volume).devicePath)) ?? "inactive";
  }

  /** Whether the mount on top at path is the volume whose device is `device`. */
  private async isVolumeMount(mount: HostMount, path: string, device: string): Promise<boolean> {
    if (mount.majorMinor === device) return true;
    const found = await this.host.stat(path).catch(() => undefined);
    return found?.type === "block-device" && found.device === device;
  }

  private async foreignMountMessage(
    id: string,
    path: string,
    field: string,
    device: string,
    top: HostMount,
    unmounted: number,
  ): Promise<string> {
    const stack = (await this.host.mounts()).filter((m) => m.mountPoint === path);
    const beneath = stack.slice(0, -1).some((m) => m.majorMinor === device);
    const what = device === "inactive" ? `volume ${id} (which is not active)` : `volume ${id}`;
    return [
      `${field} ${path} holds ${describeMount(top)}, not ${what}`,
      beneath ? `; volume ${id} is mounted beneath it` : "",
      unmounted > 0 ? `; ${unmounted} mount(s) of volume ${id} above it were unmounted` : "",
      `; loam unmounts only the volume it is asked about and leaves ${top.source} mounted (unmount it by hand if it does not belong there)`,
    ].join("");
  }

  /**
   * Grows the LV when a range asks for more, then the filesystem mounted at volumePath (a
   * block volume has none); resolves with the volume's size.
   */
  async expand(
    id: string,
    volumePath: string,
    use: VolumeUse | undefined,
    range: { requiredBytes: bigint; limitBytes: bigint } | undefined,
    options: HostCallOptions,
    secrets: Readonly<Record<string, string>> = {},
  ): Promise<number> {
    const { host } = this;
    let volume = await this.activeVolume(id, options);
    const found = await host.stat(volumePath).catch(() => undefined);
    if (!found) throw notFound(`volume_path ${volumePath} does not exist`);
    const block = use ? use.access.kind === "block" : found.type === "block-device";
    const data = dataDevice(volume);
    const device = await deviceNumber(host, data);
    let mount: HostMount | undefined;
    if (!block) {
      mount = mountAt(await host.mounts(), volumePath);
      if (!mount || mount.majorMinor !== device) {
        throw failedPrecondition(
          `volume ${id} is not mounted at volume_path ${volumePath}, so its filesystem cannot be grown`,
        );
      }
    } else if (found.type === "block-device" && found.device !== device) {
      throw failedPrecondition(`volume_path ${volumePath} is the device node of another volume, not of ${id}`);
    }
    if (range && (range.requiredBytes > 0n || range.limitBytes > 0n)) {
      volume = await this.engine.expandVolume(
        id,
        { requiredBytes: range.requiredBytes, limitBytes: range.limitBytes },
        options,
      );
    }
    if (volume.encryption) {
      const size = volume.sizeBytes;
      await resizeEncrypted(host, id, size, () => passphraseFrom(secrets, id, NODE_EXPAND_SECRET), options);
    }
    if (mount) {
      const fs = mount;
      await hostStep(`growing the ${fs.fsType} filesystem of volume ${id}`, () =>
        host.growFilesystem({ fsType: fs.fsType, device: data.devicePath, mountPoint: volumePath }, options),
      );
    }
    return volume.sizeBytes;
  }

  /**
   * Usage of what is at volumePath and every problem found with it; NOT_FOUND when the path
   * does not exist. The volume is the one knownVolume found (so it exists).
   */
  async stats(volume: Volume, volumePath: string): Promise<VolumeStats> {
    const { host } = this;
    const { id } = volume;
    const found = await host.stat(volumePath).catch(() => undefined);
    if (!found) throw notFound(`volume_path ${volumePath} does not exist`);
    const problems: string[] = [];
    if (volume.condition.abnormal) problems.push(volume.condition.message);
    if (volume.encryption) {
      const problem = await mappingProblem(host, id);
      if (problem) problems.push(problem);
    }
    const device = await deviceNumber(host, dataDevice(volume)).catch(() => undefined);
    const stats: Omit<VolumeStats, "condition"> = {};
    if (found.type === "block-device") {
      if (device && found.device !== device) problems.push(`${volumePath} is not the device node of volume ${id}`);
      stats.bytes = { total: BigInt(volume.sizeBytes), used: 0n, available: 0n };
    } else {
      const mount = mountAt(await host.mounts(), volumePath);
      if (!mount) problems.push(`nothing is mounted at ${volumePath}`);
      else if (device && mount.majorMinor !== device)
        problems.push(`${volumePath} holds ${mount.source}, not volume ${id}`);
      else {
        const fs = await hostStep(`reading filesystem usage of ${volumePath}`, () => host.filesystemUsage(volumePath));
        stats.bytes = { total: fs.totalBytes, used: fs.usedBytes, available: fs.availableBytes };
        stats.inodes = { total: fs.totalInodes, used: fs.usedInodes, available: fs.freeInodes };
        if (!isReadOnly(mount) && mount.superOptions.includes("ro")) {
          // ext4's errors=remount-ro turns the filesystem read-only under a read-write mount.
          problems.push(`the filesystem at ${volumePath} went read-only (a filesystem error forced it)`);
        }
      }
    }
    return {
      ...stats,
      condition: {
        abnormal: problems.length > 0,
        message: problems.length > 0 ? problems.join("; ") : "volume is healthy",
      },
    };
  }
}

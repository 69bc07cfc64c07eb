/**
 * InMemoryNodeHostStandIn: a stand-in for the machine under the Node service (the NodeHost
 * interface of src/volumes/node-host.ts), for fast tests of stage and publish decisions. It
 * keeps a mount table, directories and files in memory; device nodes come from the LVM
 * stand-in (an active LV's /dev/<vg>/<lv>, a device-mapper node behind it), and what a device
 * holds is what tests set or what mkfs wrote; a mounted LV is open in the LVM stand-in (lvremove
 * and deactivation refuse it) until its last mount goes. mkfs, wipefs, mount and grow only
 * change this model; every call is recorded, and a call can be made to fail, or held, before
 * it takes effect. A held call given a signal (the caller's) rejects with an AbortError when
 * that signal fires, as a real command is killed. The host and VM suites stay the truth for
 * real devices and mounts.
 */
import type { CommandExitError } from "../../src/exec/index.js";
import { HostCommandError } from "../../src/host/errors.js";
import type {
  DeviceContent,
  FilesystemUsage,
  FirstLook,
  HostCallOptions,
  HostFormatOptions,
  HostMount,
  HostMountOptions,
  MappingStatus,
  NodeHost,
  PathInfo,
} from "../../src/volumes/node-host.js";
import type { FsType } from "../../src/volumes/capabilities.js";
import type { InMemoryLvmStandIn } from "./in-memory-lvm.js";

export type HostMethod = keyof NodeHost;

export interface HostCall {
  method: HostMethod;
  args: readonly unknown[];
}

interface Device {
  majorMinor: string;
  content: DeviceContent;
  /** What the device's edges look like; "zero-head" is a new thick LV over old blocks. */
  look: FirstLook;
}

const aborted = (): Error => Object.assign(new Error("the command was cancelled and killed"), { name: "AbortError" });

/** The gate, or an AbortError as soon as the signal fires (a real command is killed then). */
function untilAborted(gate: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return gate;
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(aborted());
    signal.addEventListener("abort", onAbort, { once: true });
    gate.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

let mountIds = 100;

/**
 * A mount as the kernel lists it, with a new mount id: per-mount options first ("rw"/"ro"),
 * then the flags; the whole filesystem unless `root` says otherwise.
 */
function entry(
  partial: Omit<HostMount, "superOptions" | "root" | "id"> & { superOptions?: string[]; root?: string },
): HostMount {
  return { superOptions: ["rw"], root: "/", ...partial, id: (mountIds += 1) };
}

export class InMemoryNodeHostStandIn implements NodeHost {
  readonly calls: HostCall[] = [];
  readonly mountTable: HostMount[] = [];
  readonly directories = new Set<string>();
  readonly files = new Set<string>();
  /** Device nodes bound onto files (publish of a block volume): the mount → the node's major:minor. */
  private readonly boundDevices = new Map<HostMount, string>();
  private readonly devices = new Map<string, Device>();
  private readonly failures = new Map<HostMethod, Error[]>();
  private readonly holds = new Map<HostMethod, { arrived: () => void; gate: Promise<void> }>();
  private minors = 0;

  constructor(private readonly lvm: InMemoryLvmStandIn) {}

  // ---- test controls -------------------------------------------------------------------

  /** Sets what an LV's device holds (and how its first bytes look). */
  setContent(
    vg: string,
    lv: string,
    content: DeviceContent,
    look: FirstLook = content.kind === "empty" ? "empty" : "data",
  ): void {
    const device = this.device(`/dev/${vg}/${lv}`);
    device.content = content;
    device.look = look;
  }

  contentOf(vg: string, lv: string): DeviceContent {
    return this.device(`/dev/${vg}/${lv}`).content;
  }

  majorMinorOf(vg: string, lv: string): string {
    return this.device(`/dev/${vg}/${lv}`).majorMinor;
  }

  /**
   * Mounts something loam did not make at path, on top of whatever is there (a tmpfs unless
   * told otherwise); with `device`, a device node bound onto a file, as `mount --bind /dev/X path` does.
   */
  mountOther(path: string, what: Partial<Omit<HostMount, "mountPoint">> & { device?: string } = {}): void {
    const { device, ...fields } = what;
    const mount = entry({
      majorMinor: "0:99",
      fsType: "tmpfs",
      source: "tmpfs",
      mountOptions: ["rw"],
      ...fields,
      mountPoint: path,
    });
    this.mountTable.push(mount);
    if (device) this.boundDevices.set(mount, device);
  }

  /** The mounts stacked at path, bottom first. */
  mountsAt(path: string): HostMount[] {
    return this.mountTable.filter((m) => m.mountPoint === path);
  }

  /** The next call of `method` fails with `error` (a HostCommandError for a command that exits non-zero). */
  failNext(method: HostMethod, error: Error): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), error]);
  }

  /**
   * Holds the next call of `method` before it takes effect: `reached` resolves when it
   * arrives, `release()` lets it go on, `fail(error)` fails it (a killed command).
   */
  pauseBefore(method: HostMethod): { reached: Promise<void>; release: () => void; fail: (error: Error) => void } {
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    let release!: () => void;
    let fail!: (error: Error) => void;
    const gate = new Promise<void>((resolve, reject) => {
      release = resolve;
      fail = reject;
    });
    this.holds.set(method, { arrived, gate });
    return { reached, release, fail };
  }

  /** A command's non-zero exit as the host layer reports it. */
  static commandFailure(argv: readonly string[], exitCode: number, stderr: string): CommandExitError {
    return new HostCommandError(argv, exitCode, stderr);
  }

  methods(): HostMethod[] {
    return this.calls.map((c) => c.method);
  }

  /** Methods that change the machine (not the looks: mounts, stat, realpath, firstLook, probe, filesystemUsage). */
  changes(): HostMethod[] {
    const looks: HostMethod[] = ["mounts", "stat", "realpath", "firstLook", "probe", "filesystemUsage"];
    return this.methods().filter((m) => !looks.includes(m));
  }

  // ---- NodeHost ------------------------------------------------------------------------

  async mounts(): Promise<HostMount[]> {
    await this.enter("mounts", []);
    return this.mountTable.map((m) => ({ ...m, mountOptions: [...m.mountOptions], superOptions: [...m.superOptions] }));
  }

  async stat(path: string): Promise<PathInfo> {
    await this.enter("stat", [path]);
    const device = await this.deviceAt(path);
    if (device) return { type: "block-device", device: device.majorMinor };
    const top = this.mountTable.findLast((m) => m.mountPoint === path);
    const bound = top && this.boundDevices.get(top);
    if (bound) return { type: "block-device", device: bound };
    if (this.directories.has(path) || this.mountTable.some((m) => m.mountPoint === path)) return { type: "directory" };
    if (this.files.has(path)) return { type: "other" };
    throw Object.assign(new Error(`ENOENT: no such file or directory, stat '${path}'`), { code: "ENOENT" });
  }

  async realpath(path: string): Promise<string> {
    await this.enter("realpath", [path]);
    const device = await this.deviceAt(path);
    if (device) return `/dev/dm-${device.majorMinor.split(":")[1]}`;
    if (this.directories.has(path) || this.files.has(path)) return path;
    throw Object.assign(new Error(`ENOENT: no such file or directory, realpath '${path}'`), { code: "ENOENT" });
  }

  async makeDirectory(path: string): Promise<void> {
    await this.enter("makeDirectory", [path]);
    this.directories.add(path);
  }

  async makeFile(path: string): Promise<void> {
    await this.enter("makeFile", [path]);
    this.files.add(path);
  }

  async removeDirectory(path: string): Promise<boolean> {
    await this.enter("removeDirectory", [path]);
    const prefix = `${path}/`;
    if ([...this.directories, ...this.files].some((p) => p.startsWith(prefix))) return false;
    this.directories.delete(path);
    return true;
  }

  async removeFile(path: string): Promise<void> {
    await this.enter("removeFile", [path]);
    this.files.delete(path);
  }

  async firstLook(device: string): Promise<FirstLook> {
    await this.enter("firstLook", [device]);
    return (await this.deviceAt(device))?.look ?? "data";
  }

  async probe(device: string, _options?: unknown, look?: FirstLook): Promise<DeviceContent> {
    await this.enter("probe", [device, look]);
    const found = await this.deviceAt(device);
    if (!found) throw new HostCommandError(["blkid", "-p", device], 2, `${device}: No such file or directory`);
    return found.content;
  }

  async makeFilesystem(
    device: string,
    fsType: FsType,
    options: Partial<HostFormatOptions> & HostCallOptions = {},
  ): Promise<void> {
    const force = options.force ?? false;
    await this.enter("makeFilesystem", [device, fsType, { force }], options.signal);
    const found = await this.deviceAt(device);
    if (!found) throw new HostCommandError([`mkfs.${fsType}`, device], 1, `${device}: No such file or directory`);
    // Without a force flag mkfs refuses any signature it finds (mkfs.xfs through libblkid).
    if (found.content.kind !== "empty" && !force) {
      throw new HostCommandError(
        [`mkfs.${fsType}`, device],
        1,
        `mkfs.${fsType}: ${device} appears to contain an existing filesystem`,
      );
    }
    found.content = { kind: "filesystem", fsType };
    found.look = "data";
  }

  async wipeSignatures(device: string, options: Partial<HostFormatOptions> & HostCallOptions = {}): Promise<void> {
    await this.enter("wipeSignatures", [device], options.signal);
    const found = await this.deviceAt(device);
    if (!found)
      throw new HostCommandError(
        ["wipefs", "-a", device],
        1,
        `wipefs: error: ${device}: probing initialization failed`,
      );
    // wipefs erases the signatures; other bytes stay, so the head is zero but the edges need not be.
    found.content = { kind: "empty" };
    found.look = "zero-head";
  }

  async growFilesystem(target: { fsType: string; device: string; mountPoint: string }): Promise<void> {
    await this.enter("growFilesystem", [target]);
  }

  async filesystemUsage(path: string): Promise<FilesystemUsage> {
    await this.enter("filesystemUsage", [path]);
    const mount = this.mountTable.findLast((m) => m.mountPoint === path);
    if (!mount) throw new Error(`statfs ${path}: not mounted`);
    return {
      totalBytes: 1000n,
      usedBytes: 100n,
      availableBytes: 900n,
      totalInodes: 64n,
      usedInodes: 4n,
      freeInodes: 60n,
    };
  }

  async mountFilesystem(
    device: string,
    target: string,
    fsType: string,
    flags: readonly string[],
    options: HostMountOptions = {},
  ): Promise<void> {
    await this.enter("mountFilesystem", [device, target, fsType, flags, { readonly: options.readonly ?? false }]);
    const found = await this.deviceAt(device);
    if (!found)
      throw new HostCommandError(
        ["mount", device, target],
        32,
        `mount: ${target}: special device ${device} does not exist.`,
      );
    if (found.content.kind !== "filesystem" || found.content.fsType !== fsType) {
      throw new HostCommandError(
        ["mount", device, target],
        32,
        `mount: ${target}: wrong fs type, bad option, bad superblock on ${device}.`,
      );
    }
    this.mountTable.push(
      entry({
        majorMinor: found.majorMinor,
        mountPoint: target,
        fsType,
        source: device,
        mountOptions: [options.readonly ? "ro" : "rw", ...flags],
      }),
    );
    this.setOpen(device, true);
  }

  async bindMount(
    source: string,
    target: string,
    perMountFlags: readonly string[],
    options: HostMountOptions = {},
  ): Promise<void> {
    await this.enter("bindMount", [source, target, perMountFlags, { readonly: options.readonly ?? false }]);
    const mode = options.readonly ? "ro" : "rw";
    const from = this.mountTable.findLast((m) => m.mountPoint === source);
    if (from) {
      this.mountTable.push(entry({ ...from, mountPoint: target, mountOptions: [mode, ...perMountFlags] }));
      return;
    }
    const device = await this.deviceAt(source);
    if (!device)
      throw new HostCommandError(
        ["mount", "--bind", source, target],
        32,
        `mount: ${target}: special device ${source} does not exist.`,
      );
    // A device node bound onto a file: mountinfo shows devtmpfs with the node as its root,
    // stat of the target shows the device.
    const mount = entry({
      majorMinor: "0:5",
      root: `/dm-${device.majorMinor.split(":")[1]}`,
      mountPoint: target,
      fsType: "devtmpfs",
      source: "udev",
      mountOptions: [mode, ...perMountFlags],
    });
    this.mountTable.push(mount);
    this.boundDevices.set(mount, device.majorMinor);
  }

  async unmount(target: string, mountId: number): Promise<boolean> {
    await this.enter("unmount", [target, mountId]);
    const top = this.mountTable.findLastIndex((m) => m.mountPoint === target);
    if (top < 0 || this.mountTable[top]?.id !== mountId) return false;
    const [gone] = this.mountTable.splice(top, 1);
    // The filesystem's last mount (its staging mount or a bind of it) is gone: the LV is closed.
    if (gone && !this.mountTable.some((m) => m.majorMinor === gone.majorMinor)) this.setOpen(gone.source, false);
    return true;
  }

  // ---- the model -----------------------------------------------------------------------

  private async enter(method: HostMethod, args: readonly unknown[], signal?: AbortSignal): Promise<void> {
    this.calls.push({ method, args });
    const queued = this.failures.get(method);
    const failure = queued?.shift();
    if (failure) throw failure;
    const hold = this.holds.get(method);
    if (hold) {
      this.holds.delete(method);
      hold.arrived();
      await untilAborted(hold.gate, signal);
    }
    if (signal?.aborted) throw aborted();
    await Promise.resolve();
  }

  /** Marks the LV behind /dev/<vg>/<lv> open or closed in the LVM stand-in, as the kernel's open count would. */
  private setOpen(device: string, open: boolean): void {
    const lv = /^\/dev\/([^/]+)\/([^/]+)$/.exec(device);
    if (lv?.[1] && lv[2] && this.lvm.lv(lv[1], lv[2])) this.lvm.setOpen(lv[1], lv[2], open);
  }

  /** The device node at path: /dev/<vg>/<lv> of an active LV, or the /dev/dm-N it resolves to. */
  private async deviceAt(path: string): Promise<Device | undefined> {
    const dm = /^\/dev\/dm-(\d+)$/.exec(path);
    if (dm) return [...this.devices.values()].find((d) => d.majorMinor === `253:${dm[1]}`);
    if (!(await this.lvm.isBlockDevice(path))) return undefined;
    return this.device(path);
  }

  private device(path: string): Device {
    let found = this.devices.get(path);
    if (!found) {
      // A new LV: lvcreate zeroed its first 4 KiB; a thin LV reads zeros everywhere.
      found = { majorMinor: `253:${this.minors++}`, content: { kind: "empty" }, look: "zero-head" };
      this.devices.set(path, found);
    }
    return found;
  }

  // ---- LUKS: not modelled (encrypted volumes are tested on real dm-crypt in the VM) ----------

  async isLuks(device: string): Promise<boolean> {
    await this.enter("isLuks", [device]);
    return false;
  }

  async luksFormat(device: string): Promise<void> {
    await this.enter("luksFormat", [device]);
    throw new Error("the node host stand-in does not model LUKS");
  }

  async luksOpen(device: string, name: string): Promise<void> {
    await this.enter("luksOpen", [device, name]);
    throw new Error("the node host stand-in does not model LUKS");
  }

  async luksClose(name: string): Promise<boolean> {
    await this.enter("luksClose", [name]);
    return false;
  }

  async luksResize(name: string): Promise<void> {
    await this.enter("luksResize", [name]);
    throw new Error("the node host stand-in does not model LUKS");
  }

  async mappingStatus(name: string): Promise<MappingStatus> {
    await this.enter("mappingStatus", [name]);
    return { active: false, summary: `/dev/mapper/${name} is inactive.`, inUse: false };
  }
}

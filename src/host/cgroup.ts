/**
 * IO limits in the kernel's cgroups (docs/iolimits.md): which cgroup hierarchy holds the io
 * controller (v2's unified one, or v1's blkio), the cgroups of a workload (a Kubernetes pod by
 * its UID under kubelet's systemd or cgroupfs driver and any QoS class, or a Nomad
 * allocation's tasks), and the limit files for one device: v2 `io.max`, v1
 * `blkio.throttle.{read,write}_{bps,iops}_device`. Devices are named by "major:minor" as
 * `stat` gives them (mountinfo.ts majorMinorOf, right for minors of 256 and more).
 *
 * v1's throttling is not hierarchical (measured on this kernel: a parent's limit does not slow
 * a child's writes), so on v1 the pod's cgroup and every cgroup below it get the rule; the
 * containers' cgroups appear after NodePublishVolume, which is why the node re-applies
 * periodically (src/volumes/io-limiting.ts). v2's io.max on the pod's cgroup covers its children.
 */
import { open, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** The same four limits as the domain's IoLimits (structurally); absent is unlimited. */
export interface CgroupIoLimits {
  readIops?: number;
  writeIops?: number;
  readBytesPerSecond?: number;
  writeBytesPerSecond?: number;
}

export type CgroupHierarchy =
  { version: 2; root: string } | { version: 1; root: string } | { version: "none"; root: string; reason: string };

/** The workload a publish is for. */
export type Workload = { kind: "pod"; uid: string } | { kind: "nomad"; alloc: string };

const UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

/**
 * The workload a target path belongs to: kubelet's `pods/<uid>/volumes/kubernetes.io~csi/...`
 * (filesystem) and `.../volumeDevices/publish/<pv>/<uid>` (block), Nomad's
 * `.../per-alloc/<alloc id>/...`; undefined for any other path.
 */
export function workloadOfTargetPath(target: string): Workload | undefined {
  const pod = new RegExp(`/pods/(${UUID})/volumes/`).exec(target);
  if (pod?.[1]) return { kind: "pod", uid: pod[1].toLowerCase() };
  const block = new RegExp(`/volumeDevices/publish/[^/]+/(${UUID})$`).exec(target);
  if (block?.[1]) return { kind: "pod", uid: block[1].toLowerCase() };
  const nomad = new RegExp(`/per-alloc/(${UUID})/`).exec(target);
  if (nomad?.[1]) return { kind: "nomad", alloc: nomad[1].toLowerCase() };
  return undefined;
}

/** True when a text is a pod UID as Kubernetes writes it. */
export function isPodUid(text: string): boolean {
  return new RegExp(`^${UUID}$`).test(text);
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

/**
 * Where the io controller is: v2 when `root` is a cgroup2 mount whose cgroup.controllers lists
 * io, v1 when `root/blkio` has the throttle files; otherwise none, with the reason.
 */
export async function detectHierarchy(root = "/sys/fs/cgroup"): Promise<CgroupHierarchy> {
  const controllers = await readFile(join(root, "cgroup.controllers"), "utf8").catch(() => undefined);
  if (controllers !== undefined) {
    if (controllers.split(/\s+/).includes("io")) return { version: 2, root };
    return { version: "none", root, reason: `${root} is cgroup v2 but its cgroup.controllers lacks io` };
  }
  const blkio = join(root, "blkio");
  if (await exists(join(blkio, "blkio.throttle.write_bps_device"))) return { version: 1, root: blkio };
  return {
    version: "none",
    root,
    reason: `${root} has neither cgroup v2 with the io controller nor a cgroup v1 blkio hierarchy with blkio.throttle.* files`,
  };
}

/** The pod's cgroup, relative to the hierarchy's root, under each kubelet driver and QoS class. */
export function podCgroupCandidates(uid: string): string[] {
  const under = uid.replaceAll("-", "_");
  return [
    // cgroupfs driver: Guaranteed, Burstable, BestEffort
    `kubepods/pod${uid}`,
    `kubepods/burstable/pod${uid}`,
    `kubepods/besteffort/pod${uid}`,
    // systemd driver
    `kubepods.slice/kubepods-pod${under}.slice`,
    `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${under}.slice`,
    `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${under}.slice`,
  ];
}

const listDirs = async (dir: string): Promise<string[]> =>
  (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);

/**
 * A bounded search for cgroups whose name matches, for layouts the fixed candidates miss (a
 * kubelet --cgroup-root, kind's nested kubelet.slice): breadth first, at most `depth` levels.
 */
async function search(root: string, matches: (name: string) => boolean, depth: number): Promise<string[]> {
  const found: string[] = [];
  let level = [root];
  for (let d = 0; d < depth && level.length > 0; d++) {
    const next: string[] = [];
    for (const dir of level) {
      for (const name of await listDirs(dir)) {
        if (matches(name)) found.push(join(dir, name));
        else next.push(join(dir, name));
      }
    }
    if (found.length > 0) return found;
    level = next;
  }
  return found;
}

/**
 * The workload's own cgroups (absolute paths): a pod's one cgroup, or the cgroup of each task of
 * a Nomad allocation (v2 `nomad.slice/[share.slice|reserve.slice/]<alloc>.<task>.scope`, v1
 * `nomad/<alloc>.<task>`). Empty when none exists (yet).
 */
export async function workloadCgroups(hierarchy: { root: string }, workload: Workload): Promise<string[]> {
  const { root } = hierarchy;
  if (workload.kind === "pod") {
    for (const candidate of podCgroupCandidates(workload.uid)) {
      if (await exists(join(root, candidate))) return [join(root, candidate)];
    }
    const under = workload.uid.replaceAll("-", "_");
    return search(root, (name) => name === `pod${workload.uid}` || name.endsWith(`-pod${under}.slice`), 5);
  }
  const prefix = `${workload.alloc}.`;
  return search(root, (name) => name.startsWith(prefix), 4);
}

/** A cgroup and every cgroup below it, parents first. */
export async function withDescendants(dir: string): Promise<string[]> {
  const all = [dir];
  for (let i = 0; i < all.length; i++) {
    const current = all[i];
    for (const name of await listDirs(current)) all.push(join(current, name));
  }
  return all;
}

const V1_FILES: Record<keyof CgroupIoLimits, string> = {
  readIops: "blkio.throttle.read_iops_device",
  writeIops: "blkio.throttle.write_iops_device",
  readBytesPerSecond: "blkio.throttle.read_bps_device",
  writeBytesPerSecond: "blkio.throttle.write_bps_device",
};

const V2_KEYS: Record<keyof CgroupIoLimits, string> = {
  readIops: "riops",
  writeIops: "wiops",
  readBytesPerSecond: "rbps",
  writeBytesPerSecond: "wbps",
};

const NAMES = Object.keys(V2_KEYS) as Array<keyof CgroupIoLimits>;

/** The io.max line for a device: every limit named, `max` for the absent ones (which removes them). */
export function ioMaxLine(device: string, limits: CgroupIoLimits): string {
  return `${device} ${NAMES.map((n) => `${V2_KEYS[n]}=${limits[n] ?? "max"}`).join(" ")}`;
}

/** A write to a kernel file that must exist (never created), in one write call as the kernel wants it. */
async function writeKernelFile(path: string, text: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.write(text);
  } finally {
    await handle.close();
  }
}

/**
 * Sets the device's limits in one cgroup: absent limits are removed (v2 `max`, v1 `0`). Rejects
 * with the file's error (ENOENT: the controller is not enabled there, or the cgroup is gone).
 */
export async function writeLimits(
  hierarchy: CgroupHierarchy,
  dir: string,
  device: string,
  limits: CgroupIoLimits,
): Promise<void> {
  if (hierarchy.version === "none") throw new Error(hierarchy.reason);
  if (hierarchy.version === 2) {
    await writeKernelFile(join(dir, "io.max"), ioMaxLine(device, limits));
    return;
  }
  for (const name of NAMES) await writeKernelFile(join(dir, V1_FILES[name]), `${device} ${limits[name] ?? 0}`);
}

/** The device's limits as the cgroup's files hold them now ({} when none). */
export async function readLimits(hierarchy: CgroupHierarchy, dir: string, device: string): Promise<CgroupIoLimits> {
  const limits: CgroupIoLimits = {};
  if (hierarchy.version === "none") return limits;
  if (hierarchy.version === 2) {
    const text = await readFile(join(dir, "io.max"), "utf8");
    const line = text.split("\n").find((l) => l.startsWith(`${device} `));
    for (const part of line?.split(" ").slice(1) ?? []) {
      const [key, value] = part.split("=");
      const name = NAMES.find((n) => V2_KEYS[n] === key);
      if (name && value !== undefined && value !== "max") limits[name] = Number(value);
    }
    return limits;
  }
  for (const name of NAMES) {
    const text = await readFile(join(dir, V1_FILES[name]), "utf8");
    const line = text.split("\n").find((l) => l.startsWith(`${device} `));
    if (line) limits[name] = Number(line.split(" ")[1]);
  }
  return limits;
}

/** The cgroups a workload's rule is written to: on v1 each one below the workload's too (not hierarchical). */
export async function limitTargets(hierarchy: CgroupHierarchy, cgroups: readonly string[]): Promise<string[]> {
  if (hierarchy.version !== 1) return [...cgroups];
  return (await Promise.all(cgroups.map((dir) => withDescendants(dir)))).flat();
}

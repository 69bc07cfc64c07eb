/**
 * The node's IO limits (docs/iolimits.md): at NodePublishVolume the workload's cgroup gets the
 * volume's limits for the device the workload writes to (the LV, or its dm-crypt mapping);
 * NodeUnpublishVolume removes them; a node expansion re-applies per-GiB limits at the new
 * size; `reconcile` re-applies every published volume's limits from the mount table, at start
 * (after a restart of loam), periodically (v1's containers appear after the publish and
 * need their own rule, and a ControllerModifyVolume's new limits arrive in the LV's tag) and
 * on demand. `inForce` is what the metrics and `loam status` show.
 */
import { rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../log.js";
import {
  type CgroupHierarchy,
  type Workload,
  detectHierarchy,
  limitTargets,
  workloadCgroups,
  workloadOfTargetPath,
  writeLimits,
} from "../host/cgroup.js";
import { failedPrecondition } from "./errors.js";
import { type IoLimits, describeLimits, limitsFor } from "./io-limits.js";
import { mappingPath } from "./encryption.js";
import type { HostMount, PathInfo } from "./node-host.js";
import type { Volume } from "./volume.js";

/** The cgroup operations the limiter uses (src/host/cgroup.ts; a test may give a root of recorded trees). */
export interface CgroupAccess {
  hierarchy(): Promise<CgroupHierarchy>;
  workloadCgroups(hierarchy: CgroupHierarchy, workload: Workload): Promise<string[]>;
  limitTargets(hierarchy: CgroupHierarchy, cgroups: readonly string[]): Promise<string[]>;
  writeLimits(hierarchy: CgroupHierarchy, dir: string, device: string, limits: IoLimits): Promise<void>;
}

/** The kernel's cgroups under `root` (default /sys/fs/cgroup). */
export function kernelCgroups(root = "/sys/fs/cgroup"): CgroupAccess {
  // Kept once found: a hierarchy does not go away; "none" is looked at again (cgroups mounted later).
  let found: CgroupHierarchy | undefined;
  return {
    hierarchy: async () => {
      if (found) return found;
      const detected = await detectHierarchy(root);
      if (detected.version !== "none") found = detected;
      return detected;
    },
    workloadCgroups,
    limitTargets,
    writeLimits,
  };
}

/** One publish's limits, as written. */
export interface LimitInForce {
  volumeId: string;
  target: string;
  device: string;
  workload: Workload;
  limits: IoLimits;
  /** The cgroups written (empty: none found, policy warn). */
  cgroups: string[];
}

/** What the node writes for `loam status`: the limits in force, next to its socket. */
export interface IoLimitReport {
  schema: 1;
  writtenAt: string;
  missingCgroups: number;
  inForce: LimitInForce[];
}

export function ioLimitReportPathOf(socketPath: string): string {
  return `${dirname(socketPath)}/loam-io-limits.json`;
}

export interface IoLimiterHost {
  mounts(): Promise<HostMount[]>;
  stat(path: string): Promise<PathInfo>;
}

export interface IoLimiterEngine {
  listVolumes(): Promise<readonly Volume[]>;
  getVolume(id: string): Promise<Volume | undefined>;
}

export class VolumeIoLimiter {
  private readonly published = new Map<string, LimitInForce>();
  /** Publishes whose workload had no cgroup and whose policy said warn. */
  missingCgroups = 0;

  constructor(
    private readonly cgroups: CgroupAccess,
    private readonly log?: Logger,
    /** Where the limits in force are written after each change, for `loam status` (ioLimitReportPathOf). */
    private readonly reportPath?: string,
  ) {}

  /** The report `loam status` reads. */
  report(): IoLimitReport {
    return {
      schema: 1,
      writtenAt: new Date().toISOString(),
      missingCgroups: this.missingCgroups,
      inForce: this.inForce(),
    };
  }

  private async saveReport(): Promise<void> {
    if (this.reportPath === undefined) return;
    const text = `${JSON.stringify(this.report(), null, 2)}\n`;
    if (text === this.lastReport) return;
    const temporary = `${this.reportPath}.${process.pid}.tmp`;
    try {
      await writeFile(temporary, text);
      await rename(temporary, this.reportPath);
      this.lastReport = text;
    } catch (error) {
      this.log?.warn("IO limit report not written", { path: this.reportPath, error: (error as Error).message });
    }
  }

  private lastReport = "";

  /** The limits in force, one entry per published target. */
  inForce(): LimitInForce[] {
    return [...this.published.values()];
  }

  /**
   * Applies the volume's limits for a publish at `target` (a no-op for a volume without
   * limits, which also clears an earlier entry there). `podUid` is csi.storage.k8s.io/pod.uid
   * when kubelet sent it; otherwise the target path names the workload. A workload without a
   * cgroup fails the publish (FAILED_PRECONDITION) unless the volume's policy is warn.
   */
  async apply(volume: Volume, device: string, target: string, podUid?: string, background = false): Promise<void> {
    const spec = volume.ioLimits;
    if (!spec) {
      await this.remove(target);
      return;
    }
    const limits = limitsFor(spec, volume.sizeBytes);
    const workload: Workload | undefined = podUid ? { kind: "pod", uid: podUid } : workloadOfTargetPath(target);
    const hierarchy = await this.cgroups.hierarchy();
    let problem: string | undefined;
    let cgroups: string[] = [];
    if (hierarchy.version === "none") problem = hierarchy.reason;
    else if (!workload) {
      problem = `target_path ${target} names no pod or Nomad allocation and the request has no csi.storage.k8s.io/pod.uid (the CSIDriver needs podInfoOnMount: true)`;
    } else {
      cgroups = await this.cgroups.workloadCgroups(hierarchy, workload);
      if (cgroups.length === 0) {
        problem = `no cgroup of ${workload.kind === "pod" ? `pod ${workload.uid}` : `Nomad allocation ${workload.alloc}`} under ${hierarchy.root} (looked for kubelet's systemd and cgroupfs layouts and every QoS class)`;
      }
    }
    if (problem !== undefined) {
      if (spec.missingCgroup === "fail") {
        throw failedPrecondition(
          `volume ${volume.id} has IO limits (${describeLimits(limits)}) and they cannot be applied: ${problem}; ` +
            'set the StorageClass parameter loam.csi.dev/ioLimitsMissingCgroup: "warn" to publish without them',
        );
      }
      if (!background) this.missingCgroups++;
      if (!background)
        this.log?.warn("volume published without its IO limits", { volumeId: volume.id, target, problem });
      if (workload) this.published.set(target, { volumeId: volume.id, target, device, workload, limits, cgroups: [] });
      if (!background) await this.saveReport();
      return;
    }
    const written = await this.cgroups.limitTargets(hierarchy, cgroups);
    for (const dir of written) await this.cgroups.writeLimits(hierarchy, dir, device, limits);
    this.published.set(target, {
      volumeId: volume.id,
      target,
      device,
      workload: workload as Workload,
      limits,
      cgroups: written,
    });
    this.log?.debug("IO limits applied", { volumeId: volume.id, target, limits: describeLimits(limits) });
    if (!background) await this.saveReport();
  }

  /** Removes the limits written for a publish at `target`; a cgroup already gone is fine. */
  async remove(target: string): Promise<void> {
    const entry = this.published.get(target);
    if (!entry) return;
    const hierarchy = await this.cgroups.hierarchy();
    for (const dir of entry.cgroups) {
      await this.cgroups.writeLimits(hierarchy, dir, entry.device, {}).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT" && error.code !== "ENODEV") throw error;
      });
    }
    this.published.delete(target);
    await this.saveReport();
  }

  /**
   * Re-applies the limits of every published volume: the mount table names the targets
   * (kubelet's and Nomad's paths), the volumes' devices say which volume each is. Failures are
   * logged, not thrown: this runs in the background. Returns how many publishes got limits.
   */
  async reconcile(engine: IoLimiterEngine, host: IoLimiterHost, onlyVolume?: string): Promise<number> {
    // The mount table first: a node with nothing published to a workload reads no LVM state.
    const published = (await host.mounts()).filter((m) => workloadOfTargetPath(m.mountPoint) !== undefined);
    if (published.length === 0 && this.published.size === 0) return 0;
    const volumes = (await engine.listVolumes()).filter((v) => onlyVolume === undefined || v.id === onlyVolume);
    const byDevice = new Map<string, Volume>();
    for (const volume of volumes) {
      for (const path of volume.encryption ? [volume.devicePath, mappingPath(volume.id)] : [volume.devicePath]) {
        const found = await host.stat(path).catch(() => undefined);
        if (found?.type === "block-device") byDevice.set(found.device, volume);
      }
    }
    let applied = 0;
    const seen = new Set<string>();
    for (const mount of published) {
      let device = mount.majorMinor;
      if (!byDevice.has(device) && (mount.fsType === "devtmpfs" || mount.fsType === "tmpfs")) {
        const held = await host.stat(mount.mountPoint).catch(() => undefined);
        if (held?.type === "block-device") device = held.device;
      }
      const volume = byDevice.get(device);
      if (!volume) continue;
      seen.add(mount.mountPoint);
      try {
        await this.apply(volume, device, mount.mountPoint, undefined, true);
        if (volume.ioLimits) applied++;
      } catch (error) {
        this.log?.warn("IO limits not re-applied", {
          volumeId: volume.id,
          target: mount.mountPoint,
          error: (error as Error).message,
        });
      }
    }
    for (const [target, entry] of this.published) {
      if (!seen.has(target) && (onlyVolume === undefined || entry.volumeId === onlyVolume))
        this.published.delete(target);
    }
    return applied;
  }
}

/** Reconciles now and then every `intervalMs` until stopped; one pass at a time. */
export function reconcileEvery(
  limiter: VolumeIoLimiter,
  engine: IoLimiterEngine,
  host: IoLimiterHost,
  intervalMs: number,
  log?: Logger,
): { stop: () => Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const pass = (): void => {
    running = running
      .then(() => limiter.reconcile(engine, host))
      .catch((error: unknown) => log?.warn("IO limit reconcile failed", { error: (error as Error).message }));
  };
  pass();
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

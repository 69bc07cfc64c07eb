/**
 * The IO limits in force (docs/iolimits.md), read from the node's limiter at each scrape:
 * per volume and limit, the value written to its workloads' cgroups; how many cgroups carry
 * it; and how many publishes went on without limits because no cgroup was found (policy warn).
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { IO_LIMIT_NAMES } from "../volumes/io-limits.js";
import type { VolumeIoLimiter } from "../volumes/io-limiting.js";

const LIMIT_LABEL = {
  readIops: "read_iops",
  writeIops: "write_iops",
  readBytesPerSecond: "read_bytes_per_second",
  writeBytesPerSecond: "write_bytes_per_second",
} as const;

export function watchIoLimits(registry: Registry, limiter: VolumeIoLimiter): void {
  const registers = [registry];
  const limit = new Gauge({
    name: "loam_volume_io_limit",
    help: "An IO limit in force for a published volume, as written to its workloads' cgroups (io.max or blkio.throttle.*); absent: unlimited.",
    labelNames: ["volume_id", "limit"],
    registers,
    collect: () => {
      limit.reset();
      for (const entry of limiter.inForce()) {
        if (entry.cgroups.length === 0) continue;
        for (const name of IO_LIMIT_NAMES) {
          const value = entry.limits[name];
          if (value !== undefined) limit.set({ volume_id: entry.volumeId, limit: LIMIT_LABEL[name] }, value);
        }
      }
    },
  });
  const cgroups = new Gauge({
    name: "loam_volume_io_limit_cgroups",
    help: "How many cgroups carry the volume's IO limits (0: published without them, no cgroup found).",
    labelNames: ["volume_id"],
    registers,
    collect: () => {
      cgroups.reset();
      const counts = new Map<string, number>();
      for (const entry of limiter.inForce()) {
        counts.set(entry.volumeId, (counts.get(entry.volumeId) ?? 0) + entry.cgroups.length);
      }
      for (const [volume_id, count] of counts) cgroups.set({ volume_id }, count);
    },
  });
  const missing = new Counter({
    name: "loam_io_limit_missing_cgroup_total",
    help: "Publishes of a volume with IO limits whose workload's cgroup was not found and whose policy (ioLimitsMissingCgroup) is warn.",
    registers,
    collect: () => {
      missing.reset();
      missing.inc(limiter.missingCgroups);
    },
  });
}

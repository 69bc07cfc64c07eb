/** Doctor's IO limit check: whether the kernel's io controller (cgroup v2) or blkio (v1) is there for loam to write limits to. */
import { type Finding, type HostProbe, ok } from "./findings.js";

const LOSS =
  "volumes whose StorageClass sets IO limits (loam.csi.dev/readIOPS and the rest) fail to publish (or publish unlimited with ioLimitsMissingCgroup: warn)";

export async function checkIoController(host: HostProbe, root = "/sys/fs/cgroup"): Promise<Finding> {
  const check = "io controller";
  const controllers = await host.readText(`${root}/cgroup.controllers`);
  if (controllers !== undefined) {
    if (!controllers.split(/\s+/).includes("io")) {
      return {
        check,
        status: "warn",
        detail: `${root} is cgroup v2 but cgroup.controllers (${controllers.trim() || "empty"}) lacks io: ${LOSS}`,
        fix: "enable the io controller (a kernel with CONFIG_BLK_CGROUP; systemd enables it for kubepods.slice when kubelet asks)",
      };
    }
    const subtree = (await host.readText(`${root}/cgroup.subtree_control`)) ?? "";
    if (!subtree.split(/\s+/).includes("io")) {
      return {
        check,
        status: "warn",
        detail: `cgroup v2 has the io controller but ${root}/cgroup.subtree_control does not enable it for the cgroups below, so pods' cgroups have no io.max: ${LOSS}`,
        fix: `echo +io > ${root}/cgroup.subtree_control (kubelet and systemd normally do this)`,
      };
    }
    return ok(check, "cgroup v2 with the io controller: IO limits are written to io.max (direct and buffered writes)");
  }
  if (await host.exists(`${root}/blkio/blkio.throttle.write_bps_device`)) {
    return ok(
      check,
      "cgroup v1 blkio: IO limits are written to blkio.throttle.* (reads and direct writes; buffered writes are not throttled on v1)",
    );
  }
  return {
    check,
    status: "warn",
    detail: `${root} has neither cgroup v2 with the io controller nor cgroup v1 blkio: ${LOSS}`,
    fix: "mount cgroup v2 at /sys/fs/cgroup (in a container: the host's /sys/fs/cgroup), or the v1 blkio hierarchy at /sys/fs/cgroup/blkio",
  };
}

/** Doctor's directory checks: kubelet's directory and the CSI socket's directory are writable. */
import { dirname } from "node:path";
import { type Finding, type HostProbe, ok } from "./findings.js";

export async function checkKubeletDir(host: HostProbe, dir: string): Promise<Finding> {
  const check = "kubelet directory";
  if (!(await host.exists(dir))) {
    return {
      check,
      status: "warn",
      detail: `${dir} does not exist: no kubelet here, so no volume can be published`,
      fix: "without Kubernetes this is fine; otherwise pass --kubelet-dir with kubelet's --root-dir (and mount it into the container with Bidirectional propagation)",
    };
  }
  if (!(await host.isWritableDir(dir))) {
    return {
      check,
      status: "fail",
      detail: `${dir} is not a writable directory`,
      fix: "run loam as root with the kubelet directory mounted read-write",
    };
  }
  return ok(check, `${dir} writable`);
}

export async function checkSocketDir(host: HostProbe, dir: string): Promise<Finding> {
  const check = "socket directory";
  let existing = dir;
  while (!(await host.exists(existing))) {
    const up = dirname(existing);
    if (up === existing) break;
    existing = up;
  }
  if (await host.isWritableDir(existing)) {
    return ok(check, existing === dir ? `${dir} writable` : `${dir} will be created under ${existing}`);
  }
  return {
    check,
    status: "fail",
    detail: `${existing} is not a writable directory, so ${dir} cannot hold the socket`,
    fix: "mount the plugin directory (e.g. /var/lib/kubelet/plugins/loam.csi.dev) read-write",
  };
}

/**
 * The real-LVM suite, bundled into one file (dist/test/vm/suite.mjs) and run inside the
 * throwaway VM by `npm test`: one long-lived process, because starting Node and loading
 * modules over 9p is slow under software emulation.
 *
 * LOAM_VM_ONLY=controller,robustness runs only those groups (for quick local runs).
 */
import { after, before, describe } from "node:test";
import { Harness } from "./harness.js";
import { controllerTests } from "./controller.vm.js";
import { robustnessTests } from "./robustness.vm.js";
import { goClientTests } from "./go-client.vm.js";
import { deviceClassTests } from "./device-classes.vm.js";
import { snapshotTests } from "./snapshots.vm.js";
import { nodeTests } from "./node.vm.js";
import { observabilityTests } from "./observability.vm.js";
import { sidecarContractTests } from "./sidecar-contract.vm.js";
import { unmountCheckTests } from "./unmount-checks.vm.js";
import { overcommitTests } from "./overcommit.vm.js";
import { formatCrashTests } from "./format-crash.vm.js";
import { thinPoolFullTests } from "./thin-pool-full.vm.js";
import { pathsTests } from "./paths.vm.js";
import { missingPvTests } from "./missing-pv.vm.js";
import { reliabilityTests } from "./reliability.vm.js";
import { etcdTests } from "./etcd.vm.js";
import { clusterTests } from "./cluster.vm.js";
import { encryptionTests } from "./encryption.vm.js";
import { ioLimitTests } from "./iolimits.vm.js";
import { disksTests } from "./disks.vm.js";

/** Each group registers its tests with a getter for the shared harness. */
const GROUPS: Record<string, (h: () => Harness) => void> = {
  controller: controllerTests,
  robustness: robustnessTests,
  "go-client": goClientTests,
  "device-classes": deviceClassTests,
  snapshots: snapshotTests,
  node: nodeTests,
  observability: observabilityTests,
  "sidecar-contract": sidecarContractTests,
  "unmount-checks": unmountCheckTests,
  overcommit: overcommitTests,
  "format-crash": formatCrashTests,
  "thin-pool-full": thinPoolFullTests,
  paths: pathsTests,
  "missing-pv": missingPvTests,
  reliability: reliabilityTests,
  etcd: etcdTests,
  cluster: clusterTests,
  encryption: encryptionTests,
  iolimits: ioLimitTests,
  // Only under scripts/test-disks (two boots over kept NVMe disks); registers nothing otherwise.
  disks: disksTests,
};

const only = (process.env.LOAM_VM_ONLY ?? "").split(",").filter(Boolean);
for (const name of only) {
  if (!GROUPS[name])
    throw new Error(`LOAM_VM_ONLY names unknown group "${name}"; groups: ${Object.keys(GROUPS).join(", ")}`);
}

let harness: Harness | undefined;
const h = (): Harness => {
  if (!harness) throw new Error("the harness did not start");
  return harness;
};

// The disks group makes its own VG on its NVMe disks: alone, it needs no shared harness.
const sharedHarness = !(only.length > 0 && only.every((name) => name === "disks"));

describe("loam on real LVM", () => {
  before(async () => {
    if (sharedHarness) harness = await Harness.start();
  });
  after(async () => {
    await harness?.stop();
  });
  for (const [name, register] of Object.entries(GROUPS)) {
    if (only.length === 0 || only.includes(name)) register(h);
  }
});

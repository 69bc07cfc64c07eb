/**
 * The generated Kubernetes manifests: schema-valid (kubernetes-models' validate(), the
 * Kubernetes OpenAPI schemas), identical to the committed files in deploy/, and shaped the
 * way the distributed topology needs. VolumeSnapshotClass is a CRD kubernetes-models does
 * not carry, so it gets a hand-written shape check instead.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IContainer } from "kubernetes-models/v1/Container";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { CSIDriver } from "kubernetes-models/storage.k8s.io/v1/CSIDriver";
import { StorageClass } from "kubernetes-models/storage.k8s.io/v1/StorageClass";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { PARAMETERS } from "../../src/volumes/parameters.js";
import { CONFIG_FIELDS, readConfigFile, resolveConfig } from "../../src/cli/config.js";
import {
  checkVolumeSnapshotClass,
  renderTopology,
  sidecarArgs,
  type KubernetesObject,
} from "../../src/deploy/manifests.js";
import { SIDECARS, type SidecarName, unknownFlags } from "../../src/deploy/sidecars.js";
import { parseValues } from "../../src/deploy/values.js";
import { VALUES_FILE, generate, runGenerator } from "../../src/deploy/generate.js";

// Tests run from the repository root (npm test, scripts/test).
const ROOT = process.cwd();
const values = parseValues(JSON.parse(await readFile(join(ROOT, VALUES_FILE), "utf8")) as unknown);
// The distributed topology; the cluster topology's files are checked in deploy-cluster.test.ts.
const manifests = renderTopology(values, "distributed");
const objects: KubernetesObject[] = manifests.flatMap((m) => m.objects);
const daemonSet = objects.find((o): o is DaemonSet => o instanceof DaemonSet);
const containers = daemonSet?.spec?.template.spec?.containers ?? [];
const container = (name: string): IContainer => {
  const found = containers.find((c) => c.name === name);
  assert.ok(found, `no container ${name}`);
  return found;
};

describe("generated manifests", () => {
  test("every object validates against the Kubernetes API schemas", () => {
    let validated = 0;
    for (const object of objects) {
      if ("validate" in object && typeof object.validate === "function") {
        assert.doesNotThrow(() => object.validate(), `${object.kind} ${object.metadata?.name ?? ""}`);
        validated++;
      }
    }
    assert.ok(validated >= 15, `only ${validated} objects validated`);
  });

  test("the schema validation rejects a broken object (so the check above can fail)", () => {
    const broken = new DaemonSet(JSON.parse(JSON.stringify(daemonSet)) as ConstructorParameters<typeof DaemonSet>[0]);
    (broken.spec!.template.spec!.containers[0] as unknown as { image: number }).image = 42;
    assert.throws(() => broken.validate(), /image must be string/);
  });

  test("the VolumeSnapshotClass passes the hand-written snapshot.storage.k8s.io/v1 shape check", () => {
    const classes = objects.filter((o) => o.kind === "VolumeSnapshotClass");
    assert.equal(classes.length, 1);
    const vsc = classes[0] as unknown as Record<string, unknown>;
    assert.deepEqual(checkVolumeSnapshotClass(vsc), []);
    assert.equal(vsc.driver, "loam.csi.dev");
    assert.deepEqual(checkVolumeSnapshotClass({ ...vsc, deletionPolicy: "Keep", extra: 1 }), [
      "unknown field extra",
      "deletionPolicy must be Delete or Retain",
    ]);
  });

  test("regenerating from deploy/values.json gives exactly the committed files", async () => {
    const files = await generate(ROOT);
    assert.ok(files.size >= 8);
    for (const [path, text] of files) {
      const committed = await readFile(join(ROOT, path), "utf8").catch(() => "(missing)");
      assert.equal(committed, text, `${path} differs from the generator's output; run npm run manifests`);
    }
  });

  test("the generator's --check exits 1 when a generated file was edited by hand", async () => {
    const root = await mkdtemp(join(tmpdir(), "loam-manifests-"));
    try {
      const files = await generate(ROOT);
      await writeFile(join(root, "placeholder"), "");
      for (const path of [...files.keys(), VALUES_FILE]) {
        const { mkdir } = await import("node:fs/promises");
        await mkdir(join(root, path, ".."), { recursive: true });
        await writeFile(join(root, path), await readFile(join(ROOT, path), "utf8"));
      }
      assert.equal(await runGenerator(["--root", root, "--check"]), 0);
      await writeFile(join(root, "deploy/kubernetes/40-daemonset.yaml"), "edited\n");
      assert.equal(await runGenerator(["--root", root, "--check"]), 1);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test("every sidecar argument is a flag its pinned version accepts", () => {
    const args = sidecarArgs(values);
    for (const name of Object.keys(SIDECARS) as SidecarName[]) {
      const c = container(SIDECARS[name].container);
      assert.deepEqual(c.args, args[name]);
      assert.equal(c.image, values.images[name]);
      assert.deepEqual(
        unknownFlags(SIDECARS[name], c.image ?? "", c.args ?? []),
        [],
        `${name}: flags unknown to ${c.image}`,
      );
    }
    assert.deepEqual(
      unknownFlags(SIDECARS.provisioner, values.images.provisioner, ["--node-deployment", "--no-such-flag"]),
      ["--no-such-flag"],
    );
    assert.deepEqual(
      unknownFlags(SIDECARS.provisioner, "registry.k8s.io/sig-storage/csi-provisioner:v0.0.1", ["--v=2"]),
      ["--v=2"],
      "an unknown version accepts nothing",
    );
  });

  test("the provisioner runs per node with capacity and strict topology; the snapshotter per node", () => {
    const provisioner = container("csi-provisioner");
    for (const flag of [
      "--node-deployment",
      "--enable-capacity",
      "--strict-topology",
      "--extra-create-metadata",
      "--capacity-ownerref-level=1",
    ]) {
      assert.ok(provisioner.args?.includes(flag), flag);
    }
    assert.ok(
      !provisioner.args?.some((a) => a.startsWith("--feature-gates")),
      "Topology is on by default in csi-provisioner v5",
    );
    const provisionerEnv = (provisioner.env ?? []).map((e) => e.name);
    assert.deepEqual(provisionerEnv.sort(), ["NAMESPACE", "NODE_NAME", "POD_NAME"]);
    const snapshotter = container("csi-snapshotter");
    assert.ok(snapshotter.args?.includes("--node-deployment"));
    assert.deepEqual(
      (snapshotter.env ?? []).map((e) => e.name),
      ["NODE_NAME"],
    );
    assert.ok(container("csi-resizer").args?.includes("--leader-election"));
  });

  test("loam is privileged, sees /dev and the kubelet directory with Bidirectional propagation, and enters the host's namespaces", () => {
    const loam = container("loam");
    assert.equal(loam.securityContext?.privileged, true);
    const mounts = loam.volumeMounts ?? [];
    assert.equal(mounts.find((m) => m.mountPath === values.kubeletDir)?.mountPropagation, "Bidirectional");
    assert.ok(mounts.some((m) => m.mountPath === "/dev"));
    assert.ok(loam.args?.includes("--config=/etc/loam/config.json"));
    assert.equal(daemonSet?.spec?.template.spec?.hostPID, true);
    for (const c of containers.filter((c) => c.name !== "loam")) {
      assert.notEqual(c.securityContext?.privileged, true, `${c.name} must not be privileged`);
      assert.ok(!(c.volumeMounts ?? []).some((m) => m.mountPropagation === "Bidirectional"), c.name);
    }
    const registrar = container("node-driver-registrar");
    assert.ok(
      registrar.args?.includes(`--kubelet-registration-path=${values.kubeletDir}/plugins/loam.csi.dev/csi.sock`),
    );
  });

  test("the CSIDriver: no attach, pod info on mount, storage capacity, fsGroupPolicy File, Persistent only", () => {
    const driver = objects.find((o): o is CSIDriver => o instanceof CSIDriver);
    assert.deepEqual(driver?.spec, {
      attachRequired: false,
      podInfoOnMount: true,
      storageCapacity: true,
      fsGroupPolicy: "File",
      volumeLifecycleModes: ["Persistent"],
    });
    assert.equal(driver?.metadata?.name, values.driverName);
  });

  test("StorageClasses: thick xfs, thin, striped, raid1 and encrypted, all WaitForFirstConsumer with expansion", () => {
    const classes = objects.filter((o): o is StorageClass => o instanceof StorageClass);
    assert.deepEqual(
      classes.map((c) => c.metadata?.name),
      ["loam-xfs", "loam-thin", "loam-striped", "loam-raid1", "loam-encrypted"],
    );
    // The encrypted class names its passphrase Secret for stage and expansion (docs/encryption.md).
    assert.deepEqual(classes[4]?.parameters, {
      "csi.storage.k8s.io/fstype": "ext4",
      "loam.csi.dev/deviceClass": "thick",
      "loam.csi.dev/encryption": "luks2",
      "loam.csi.dev/encryptionPbkdfMemory": "262144",
      "csi.storage.k8s.io/node-stage-secret-name": "loam-encryption",
      "csi.storage.k8s.io/node-stage-secret-namespace": "loam-system",
      "csi.storage.k8s.io/node-expand-secret-name": "loam-encryption",
      "csi.storage.k8s.io/node-expand-secret-namespace": "loam-system",
    });
    for (const sc of classes) {
      assert.equal(sc.volumeBindingMode, "WaitForFirstConsumer");
      assert.equal(sc.allowVolumeExpansion, true);
      assert.equal(sc.provisioner, "loam.csi.dev");
    }
    assert.equal(classes[2]?.parameters?.["loam.csi.dev/stripes"], "2");
    assert.equal(classes[3]?.parameters?.["loam.csi.dev/mirrors"], "1");
    assert.equal(classes[1]?.parameters?.["loam.csi.dev/deviceClass"], "thin");
  });

  test("every StorageClass parameter is one loam accepts (or fstype and the node secret references, which the provisioner and kubelet consume)", () => {
    const accepted = new Set(PARAMETERS.map((p) => p.key));
    for (const sc of objects.filter((o): o is StorageClass => o instanceof StorageClass)) {
      for (const key of Object.keys(sc.parameters ?? {})) {
        assert.ok(
          accepted.has(key) ||
            key === "csi.storage.k8s.io/fstype" ||
            /^csi\.storage\.k8s\.io\/node-(stage|expand)-secret-/.test(key),
          `${sc.metadata?.name}: ${key} is not in PARAMETERS`,
        );
      }
    }
  });

  test("RBAC: one ClusterRole per API-using sidecar, no wildcards, capacity objects only in loam's namespace", () => {
    const clusterRoles = objects.filter((o): o is ClusterRole => o instanceof ClusterRole);
    assert.deepEqual(clusterRoles.map((r) => r.metadata?.name).sort(), [
      "loam-external-provisioner",
      "loam-external-resizer",
      "loam-external-snapshotter",
    ]);
    const roles = objects.filter((o): o is Role => o instanceof Role);
    for (const rule of [...clusterRoles, ...roles].flatMap((r) => r.rules ?? [])) {
      assert.ok(
        !rule.verbs.includes("*") && !(rule.resources ?? []).includes("*") && !(rule.apiGroups ?? []).includes("*"),
      );
    }
    const clusterResources = clusterRoles.flatMap((r) => r.rules ?? []).flatMap((r) => r.resources ?? []);
    assert.ok(!clusterResources.includes("csistoragecapacities"), "capacity objects are namespaced; a Role suffices");
    assert.ok(!clusterResources.includes("secrets"), "loam uses no secrets");
    const provisionerRole = roles.find((r) => r.metadata?.name === "loam-external-provisioner");
    assert.ok(provisionerRole?.rules?.some((r) => r.resources?.includes("csistoragecapacities")));
    assert.ok(provisionerRole?.rules?.some((r) => r.resources?.includes("pods") && r.verbs.join() === "get"));
    const pvRule = clusterRoles
      .find((r) => r.metadata?.name === "loam-external-provisioner")
      ?.rules?.find((r) => r.resources?.includes("persistentvolumes"));
    assert.ok(pvRule?.verbs.includes("patch"), "csi-provisioner v5 patches PVs");
  });

  test("the node ConfigMap holds a JSON config whose keys are loam node settings", () => {
    const map = objects.find((o): o is ConfigMap => o instanceof ConfigMap);
    const config = JSON.parse(map?.data?.["config.json"] ?? "{}") as Record<string, unknown>;
    for (const key of Object.keys(config)) {
      assert.ok(
        (CONFIG_FIELDS as string[]).includes(key) || key === "deviceClasses",
        `${key} is not a NodeConfig field`,
      );
    }
    assert.equal(config.endpoint, "unix:///csi/csi.sock");
    assert.deepEqual(config.deviceClasses, values.deviceClasses);
    assert.deepEqual((config.lvmCommandPrefix as string[]).slice(0, 2), ["nsenter", "--target=1"]);
  });

  test("loam node's own config loader accepts the ConfigMap's config.json with its device classes", async () => {
    const map = objects.find((o): o is ConfigMap => o instanceof ConfigMap);
    const dir = await mkdtemp(join(tmpdir(), "loam-configmap-"));
    try {
      const path = join(dir, "config.json");
      await writeFile(path, map?.data?.["config.json"] ?? "");
      const config = resolveConfig(await readConfigFile(path), { nodeId: "node-1" });
      assert.deepEqual(
        config.deviceClasses.map((c) => [c.name, c.type, c.default]),
        [
          ["thick", "thick", true],
          ["thin", "thin", false],
        ],
      );
      assert.equal(config.endpoint, "unix:///csi/csi.sock");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The cluster topology's manifests (deploy/kubernetes/cluster/): a controller Deployment with
 * external-provisioner in its central mode and capacity from GetCapacity, a node DaemonSet
 * with only node-driver-registrar and livenessprobe, loam's arguments read by loam's own
 * parsers (`loam controller`, `loam node`), and RBAC derived from what each sidecar's
 * arguments make it do.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IPolicyRule } from "kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { StorageClass } from "kubernetes-models/storage.k8s.io/v1/StorageClass";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { parseControllerArgs } from "../../src/cli/controller.js";
import { loadNodeConfig } from "../../src/cli/node.js";
import { TOPOLOGY_DIRS, renderManifests, renderTopology, type KubernetesObject } from "../../src/deploy/manifests.js";
import { SIDECARS, type SidecarName, unknownFlags } from "../../src/deploy/sidecars.js";
import { type Values, parseValues } from "../../src/deploy/values.js";
import { VALUES_FILE, generate } from "../../src/deploy/generate.js";

const ROOT = process.cwd();
const raw = JSON.parse(await readFile(join(ROOT, VALUES_FILE), "utf8")) as Record<string, unknown>;
const values = parseValues(raw);
const withCluster = (cluster: Record<string, unknown>): Values => parseValues({ ...raw, cluster });

function flagValue(args: readonly string[] | undefined, flag: string): string | undefined {
  return args?.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3);
}

interface Rendered {
  objects: KubernetesObject[];
  deployment: Deployment;
  daemonSet: DaemonSet;
  pod: IPodSpec;
  nodePod: IPodSpec;
  container: (pod: IPodSpec, name: string) => IContainer;
}

function render(v: Values): Rendered {
  const objects = renderTopology(v, "cluster").flatMap((f) => f.objects);
  const deployment = objects.find((o): o is Deployment => o instanceof Deployment);
  const daemonSet = objects.find((o): o is DaemonSet => o instanceof DaemonSet);
  assert.ok(deployment && daemonSet, "the cluster topology has a Deployment and a DaemonSet");
  const pod = deployment.spec?.template.spec;
  const nodePod = daemonSet.spec?.template.spec;
  assert.ok(pod && nodePod);
  return {
    objects,
    deployment,
    daemonSet,
    pod,
    nodePod,
    container: (p, name) => {
      const found = p.containers.find((c) => c.name === name);
      assert.ok(found, `no container ${name}`);
      return found;
    },
  };
}

const cluster = render(values);
const { container, pod, nodePod } = cluster;

describe("cluster topology manifests", () => {
  test("every object validates against the Kubernetes API schemas", () => {
    let validated = 0;
    for (const object of cluster.objects) {
      if ("validate" in object && typeof object.validate === "function") {
        assert.doesNotThrow(() => object.validate(), `${object.kind} ${object.metadata?.name ?? ""}`);
        validated++;
      }
    }
    assert.ok(validated >= 16, `only ${validated} objects validated`);
  });

  test("its files go to deploy/kubernetes/cluster/, beside the distributed ones, and npm run manifests renders both", async () => {
    const files = renderManifests(values).map((m) => m.file);
    assert.ok(files.includes("kubernetes/40-daemonset.yaml"));
    assert.ok(files.includes("kubernetes/cluster/40-daemonset.yaml"));
    assert.ok(files.includes("kubernetes/cluster/45-controller.yaml"));
    const generated = [...(await generate(ROOT)).keys()];
    for (const topology of ["distributed", "cluster"] as const) {
      const dir = join("deploy", TOPOLOGY_DIRS[topology]);
      const committed = (await readdir(join(ROOT, dir))).filter((f) => f.endsWith(".yaml")).map((f) => join(dir, f));
      assert.deepEqual(
        committed.sort(),
        generated.filter((path) => path.startsWith(`${dir}/`) && !path.slice(dir.length + 1).includes("/")).sort(),
        `${dir}: every committed manifest is one the generator writes (no leftovers) and every one is committed`,
      );
    }
    const distributedOnly = renderManifests({ ...values, topologies: ["distributed"] }).map((m) => m.file);
    assert.ok(!distributedOnly.some((f) => f.startsWith("kubernetes/cluster/")));
  });

  test("the controller Deployment: replicas from the values (2 by default), spread across nodes, a disruption budget", () => {
    assert.equal(cluster.deployment.spec?.replicas, 2);
    const term = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm;
    assert.equal(term?.topologyKey, "kubernetes.io/hostname");
    assert.deepEqual(term?.labelSelector?.matchLabels, cluster.deployment.spec?.selector.matchLabels);
    const three = render(withCluster({ ...(raw.cluster as object), replicas: 3 }));
    assert.equal(three.deployment.spec?.replicas, 3);
    const defaults = { etcd: (raw.cluster as { etcd: unknown }).etcd };
    assert.equal(render(withCluster(defaults)).deployment.spec?.replicas, 2);
    const budget = cluster.objects.find((o): o is PodDisruptionBudget => o instanceof PodDisruptionBudget);
    assert.deepEqual(budget?.spec?.selector?.matchLabels, cluster.deployment.spec?.selector.matchLabels);
    const single = render(withCluster({ ...(raw.cluster as object), replicas: 1 }));
    assert.ok(!single.objects.some((o) => o instanceof PodDisruptionBudget), "no budget that would block every drain");
  });

  test("external-provisioner runs centrally: no --node-deployment, capacity from GetCapacity owned by the Deployment, strict topology, leader election", () => {
    const args = container(pod, "csi-provisioner").args ?? [];
    assert.ok(!args.includes("--node-deployment"));
    for (const flag of [
      "--enable-capacity",
      "--capacity-ownerref-level=2",
      "--strict-topology",
      "--leader-election",
      "--leader-election-namespace=$(NAMESPACE)",
    ]) {
      assert.ok(args.includes(flag), flag);
    }
    // The owner walk needs the pod's name and namespace.
    const env = (container(pod, "csi-provisioner").env ?? []).map((e) => e.name).sort();
    assert.deepEqual(env, ["NAMESPACE", "POD_NAME"]);
    for (const name of ["csi-resizer", "csi-snapshotter"]) {
      const sidecar = container(pod, name).args ?? [];
      assert.ok(sidecar.includes("--leader-election"), `${name} is leader-elected`);
      assert.ok(!sidecar.includes("--node-deployment"), `${name} runs centrally`);
    }
  });

  test("the sidecars wait longer than loam waits for a node agent", () => {
    const slow = render(withCluster({ ...(raw.cluster as object), nodeTimeoutSeconds: 300 }));
    for (const r of [cluster, slow]) {
      const nodeTimeout = Number(flagValue(r.container(r.pod, "loam").args, "node-timeout-seconds"));
      for (const name of ["csi-provisioner", "csi-resizer", "csi-snapshotter"]) {
        const timeout = Number(flagValue(r.container(r.pod, name).args, "timeout")?.replace(/s$/, ""));
        assert.ok(
          timeout > nodeTimeout,
          `${name} --timeout ${timeout}s must exceed --node-timeout-seconds ${nodeTimeout}`,
        );
      }
    }
  });

  test("every sidecar argument in both pods is a flag its pinned version accepts", () => {
    let checked = 0;
    for (const spec of [pod, nodePod]) {
      for (const name of Object.keys(SIDECARS) as SidecarName[]) {
        const c = spec.containers.find((x) => x.name === SIDECARS[name].container);
        if (!c) continue;
        checked++;
        assert.deepEqual(unknownFlags(SIDECARS[name], c.image ?? "", c.args ?? []), [], `${c.name}: unknown flags`);
      }
    }
    assert.equal(checked, 6);
  });

  test("the node DaemonSet runs the agent with node-driver-registrar and livenessprobe only, and mounts no API token", () => {
    assert.deepEqual(
      nodePod.containers.map((c) => c.name),
      ["loam", "node-driver-registrar", "livenessprobe"],
    );
    assert.equal(nodePod.automountServiceAccountToken, false);
    assert.equal(nodePod.hostPID, true);
    const loam = container(nodePod, "loam");
    assert.equal(loam.securityContext?.privileged, true);
    assert.equal(loam.volumeMounts?.find((m) => m.mountPath === values.kubeletDir)?.mountPropagation, "Bidirectional");
    assert.deepEqual(pod.containers.map((c) => c.name).sort(), [
      "csi-provisioner",
      "csi-resizer",
      "csi-snapshotter",
      "livenessprobe",
      "loam",
    ]);
  });

  test("loam controller's own parser accepts the rendered arguments and reads the values' settings from them", () => {
    const args = container(pod, "loam").args ?? [];
    assert.equal(args[0], "controller");
    const config = parseControllerArgs(args.slice(1));
    assert.deepEqual(config.etcd, {
      endpoints: values.cluster?.etcd.endpoints,
      ca: "/etc/loam-etcd/ca.crt",
      cert: "/etc/loam-etcd/tls.crt",
      key: "/etc/loam-etcd/tls.key",
    });
    assert.equal(config.socketPath, "/csi/csi.sock");
    assert.equal(config.placement, values.cluster?.placement);
    assert.equal(config.nodeTimeoutSeconds, values.cluster?.nodeTimeoutSeconds);
    assert.equal(config.driverName, values.driverName);
    assert.equal(config.logLevel, values.logLevel);
    assert.equal(config.metricsAddress, ":9976");
    assert.throws(() => parseControllerArgs([...args.slice(1), "--no-such-flag=1"]), /no-such-flag/);
  });

  test("loam node's own loader accepts the rendered arguments with the ConfigMap's file: an agent of the values' etcd", async () => {
    const map = cluster.objects.find((o): o is ConfigMap => o instanceof ConfigMap);
    const dir = await mkdtemp(join(tmpdir(), "loam-cluster-node-"));
    try {
      await writeFile(join(dir, "config.json"), map?.data?.["config.json"] ?? "");
      const args = (container(nodePod, "loam").args ?? []).map((a) =>
        a.replace(/^--config=.*/, `--config=${join(dir, "config.json")}`).replace("$(NODE_NAME)", "node-1"),
      );
      assert.equal(args[0], "node");
      const config = await loadNodeConfig(args.slice(1));
      assert.deepEqual(config.clusterEtcdEndpoints, values.cluster?.etcd.endpoints);
      assert.deepEqual(
        [config.etcdCa, config.etcdCert, config.etcdKey],
        ["/etc/loam-etcd/ca.crt", "/etc/loam-etcd/tls.crt", "/etc/loam-etcd/tls.key"],
      );
      assert.equal(config.nodeId, "node-1");
      assert.equal(config.endpoint, "unix:///csi/csi.sock");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the controller serves CSI on a socket in an emptyDir the sidecars share, and needs no privilege or host path", () => {
    const loam = container(pod, "loam");
    const endpoint = flagValue(loam.args, "endpoint");
    assert.match(endpoint ?? "", /^unix:\/\/\//);
    const socketDir = (endpoint ?? "").slice("unix://".length).replace(/\/[^/]+$/, "");
    const mountOf = (c: IContainer) => c.volumeMounts?.find((m) => m.mountPath === socketDir)?.name;
    const volume = mountOf(loam);
    assert.ok(pod.volumes?.find((v) => v.name === volume)?.emptyDir, "the socket directory is an emptyDir");
    for (const c of pod.containers) {
      assert.equal(mountOf(c), volume, `${c.name} mounts the socket directory`);
      if (c.name !== "loam") assert.ok(c.args?.includes(`--csi-address=${socketDir}/csi.sock`), c.name);
      assert.notEqual(c.securityContext?.privileged, true, `${c.name} is not privileged`);
    }
    assert.ok(!pod.volumes?.some((v) => v.hostPath), "no host path in the controller pod");
    assert.notEqual(pod.hostPID, true);
  });

  test("etcd TLS: with a Secret both pods mount it and pass its files; with http endpoints neither does", () => {
    for (const spec of [pod, nodePod]) {
      const loam = container(spec, "loam");
      const volume = spec.volumes?.find((v) => v.secret?.secretName === values.cluster?.etcd.tlsSecret);
      assert.ok(volume, "the Secret is a volume of the pod");
      const mount = loam.volumeMounts?.find((m) => m.name === volume.name);
      assert.equal(mount?.readOnly, true);
      for (const [flag, key] of [
        ["etcd-ca", "ca.crt"],
        ["etcd-cert", "tls.crt"],
        ["etcd-key", "tls.key"],
      ] as const) {
        assert.equal(flagValue(loam.args, flag), `${mount?.mountPath}/${key}`);
      }
      // The node pod mounts its ConfigMap read-only at /etc/loam: no mount point can be made inside it.
      for (const other of loam.volumeMounts ?? []) {
        if (other !== mount) assert.ok(!mount?.mountPath.startsWith(`${other.mountPath}/`), other.mountPath);
      }
    }
    const plain = render(withCluster({ etcd: { endpoints: ["http://etcd.loam-system.svc:2379"] } }));
    for (const spec of [plain.pod, plain.nodePod]) {
      const loam = plain.container(spec, "loam");
      assert.ok(!loam.args?.some((a) => a.startsWith("--etcd-c") || a.startsWith("--etcd-key")), "no TLS flags");
      assert.ok(!spec.volumes?.some((v) => v.secret), "no Secret volume");
    }
  });

  test("RBAC: bound to the controller only; each sidecar may do what its arguments make it do", () => {
    const bindings = cluster.objects.filter(
      (o): o is ClusterRoleBinding | RoleBinding => o instanceof ClusterRoleBinding || o instanceof RoleBinding,
    );
    assert.ok(bindings.length >= 6);
    for (const b of bindings) {
      assert.deepEqual(
        b.subjects?.map((s) => s.name),
        [pod.serviceAccountName],
        `${b.metadata?.name} binds the controller's account`,
      );
    }
    assert.notEqual(nodePod.serviceAccountName, pod.serviceAccountName);
    const rules = (kind: "ClusterRole" | "Role", sidecar: string): IPolicyRule[] =>
      cluster.objects
        .filter((o): o is ClusterRole | Role => o instanceof (kind === "Role" ? Role : ClusterRole))
        .find((r) => r.metadata?.name === `loam-external-${sidecar}`)?.rules ?? [];
    const allows = (list: IPolicyRule[], group: string, resource: string, verbs: string[]): boolean =>
      verbs.every((verb) =>
        list.some(
          (r) =>
            (r.apiGroups ?? []).includes(group) && (r.resources ?? []).includes(resource) && r.verbs.includes(verb),
        ),
      );
    const sidecars = { provisioner: "csi-provisioner", resizer: "csi-resizer", snapshotter: "csi-snapshotter" };
    for (const [sidecar, name] of Object.entries(sidecars)) {
      const args = container(pod, name).args ?? [];
      const namespaced = rules("Role", sidecar);
      const all = [...rules("ClusterRole", sidecar), ...namespaced];
      assert.ok(all.length > 0, `${sidecar} has roles`);
      for (const rule of all) {
        assert.ok(!rule.verbs.includes("*") && !(rule.resources ?? []).includes("*"), `${sidecar}: no wildcards`);
      }
      if (args.includes("--leader-election")) {
        assert.ok(
          allows(namespaced, "coordination.k8s.io", "leases", ["get", "create", "update"]),
          `${sidecar} is leader-elected: it needs its Lease`,
        );
      }
      assert.ok(allows(all, "", "events", ["create", "patch"]), `${sidecar} records events`);
    }
    const provisioner = rules("ClusterRole", "provisioner");
    const provisionerNs = rules("Role", "provisioner");
    assert.ok(allows(provisioner, "", "persistentvolumes", ["create", "delete", "patch", "watch"]));
    assert.ok(allows(provisioner, "", "persistentvolumeclaims", ["get", "list", "watch", "update"]));
    // Central mode with strict topology and capacity: it reads every node's topology.
    assert.ok(allows(provisioner, "", "nodes", ["get", "list", "watch"]));
    assert.ok(allows(provisioner, "storage.k8s.io", "csinodes", ["get", "list", "watch"]));
    assert.ok(allows(provisioner, "storage.k8s.io", "storageclasses", ["get", "list", "watch"]));
    assert.ok(allows(provisionerNs, "storage.k8s.io", "csistoragecapacities", ["create", "update", "delete", "list"]));
    // --capacity-ownerref-level=2 walks pod → ReplicaSet → Deployment.
    const level = Number(flagValue(container(pod, "csi-provisioner").args, "capacity-ownerref-level"));
    assert.equal(level, 2);
    assert.ok(allows(provisionerNs, "", "pods", ["get"]));
    assert.ok(allows(provisionerNs, "apps", "replicasets", ["get"]));
    assert.ok(allows(rules("ClusterRole", "resizer"), "", "persistentvolumeclaims/status", ["patch"]));
    const snapshotter = rules("ClusterRole", "snapshotter");
    assert.ok(allows(snapshotter, "snapshot.storage.k8s.io", "volumesnapshotcontents", ["update", "patch", "watch"]));
    assert.ok(allows(snapshotter, "snapshot.storage.k8s.io", "volumesnapshotcontents/status", ["update", "patch"]));
    assert.ok(allows(snapshotter, "snapshot.storage.k8s.io", "volumesnapshotclasses", ["get", "list", "watch"]));
  });

  test("the distributed topology's RBAC is unchanged: no replicasets or provisioner Lease", () => {
    const roles = renderTopology(values, "distributed")
      .flatMap((f) => f.objects)
      .filter((o): o is Role => o instanceof Role);
    const provisioner = roles.find((r) => r.metadata?.name === "loam-external-provisioner");
    assert.ok(
      !provisioner?.rules?.some((r) => r.resources?.includes("replicasets") || r.resources?.includes("leases")),
    );
  });

  test("StorageClasses are the same in both topologies", () => {
    const classes = (topology: "distributed" | "cluster") =>
      renderTopology(values, topology)
        .flatMap((f) => f.objects)
        .filter((o): o is StorageClass => o instanceof StorageClass)
        .map((sc) => JSON.parse(JSON.stringify(sc)) as unknown);
    assert.deepEqual(classes("cluster"), classes("distributed"));
  });
});

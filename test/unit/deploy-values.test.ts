/**
 * The values file the manifest generator reads: the committed one is valid, and each kind
 * of mistake fails with an error that names the field.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseValues } from "../../src/deploy/values.js";
import { parseImage } from "../../src/deploy/sidecars.js";
import { VALUES_FILE, runGenerator } from "../../src/deploy/generate.js";

const committed = JSON.parse(await readFile(join(process.cwd(), VALUES_FILE), "utf8")) as Record<string, unknown>;
/** The values file as edited by the tests: loose enough to break on purpose. */
interface RawValues {
  [key: string]: unknown;
  images: Record<string, string>;
  deviceClasses: Array<Record<string, unknown>>;
  storageClasses: Array<Record<string, unknown>>;
  resources: { loam: { requests: Record<string, string> } };
}
const copy = (): RawValues => JSON.parse(JSON.stringify(committed)) as RawValues;

function rejects(change: (v: RawValues) => void, message: RegExp): void {
  const values = copy();
  change(values);
  assert.throws(() => parseValues(values), message);
}

describe("values file", () => {
  test("the committed deploy/values.json is valid", () => {
    const values = parseValues(committed);
    assert.equal(values.namespace, "loam-system");
    assert.equal(values.deviceClasses.length, 2);
  });

  test("an unknown key is refused, naming it and the allowed keys", () => {
    rejects((v) => (v.colour = "red"), /^ValuesError: colour: unknown key; allowed keys here: namespace, /);
    rejects((v) => (v.images.registrar = "x:1"), /^ValuesError: images\.registrar: unknown key/);
    rejects((v) => (v.deviceClasses[0].size = 1), /^ValuesError: deviceClasses\[0\]\.size: unknown key/);
  });

  test("a bad image reference names the image field", () => {
    rejects(
      (v) => (v.images.loam = "Not An Image"),
      /^ValuesError: images\.loam: "Not An Image" is not an image reference/,
    );
    rejects((v) => (v.images.loam = "ghcr.io/loam-csi/loam"), /images\.loam: .* must be pinned with a tag or a digest/);
    rejects((v) => (v.images.loam = "ghcr.io/loam-csi/loam:latest"), /images\.loam: .*:latest/);
  });

  test("a sidecar version whose flags are unknown is refused, naming the field and the known versions", () => {
    rejects(
      (v) => (v.images.provisioner = "registry.k8s.io/sig-storage/csi-provisioner:v9.9.9"),
      /images\.provisioner: .* tagged v9\.9\.9.*known: v5\.2\.0/,
    );
  });

  test("a mirrored sidecar image keeps a known tag and is accepted", () => {
    const values = copy();
    values.images.provisioner = "mirror.example.com:5000/k8s/csi-provisioner:v5.2.0";
    assert.equal(parseValues(values).images.provisioner, "mirror.example.com:5000/k8s/csi-provisioner:v5.2.0");
  });

  test("a device class without a volume group names deviceClasses[i].volumeGroup", () => {
    rejects((v) => delete v.deviceClasses[1].volumeGroup, /^ValuesError: deviceClasses\[1\]\.volumeGroup: is required/);
    rejects(
      (v) => (v.deviceClasses[0].volumeGroup = "bad vg"),
      /deviceClasses\[0\]\.volumeGroup: "bad vg" is not an LVM volume group name/,
    );
  });

  test("device class mistakes name the field: thin without pool, thin with stripes, two defaults, duplicate names", () => {
    rejects(
      (v) => delete v.deviceClasses[1].thinPool,
      /deviceClasses\[1\]\.thinPool: is required for a thin device class/,
    );
    rejects(
      (v) => (v.deviceClasses[1].stripes = 2),
      /deviceClasses\[1\]\.stripes: applies to thick device classes only/,
    );
    rejects(
      (v) => (v.deviceClasses[1].default = true),
      /deviceClasses: exactly one device class must have "default": true/,
    );
    rejects((v) => (v.deviceClasses[1].name = "thick"), /deviceClasses\[1\]\.name: "thick" is used by two/);
    rejects((v) => (v.deviceClasses[0].type = "raid"), /deviceClasses\[0\]\.type: "raid" is not one of thick, thin/);
    rejects((v) => (v.deviceClasses = []), /deviceClasses: needs at least one/);
    rejects(
      (v) => (v.deviceClasses[0].dataThresholdPercent = 80),
      /deviceClasses\[0\]\.dataThresholdPercent: applies to thin device classes only/,
    );
    rejects(
      (v) => (v.deviceClasses[1].overprovisionRatio = 0.5),
      /deviceClasses\[1\]\.overprovisionRatio: must be a number from 1 to 100/,
    );
    rejects(
      (v) => (v.deviceClasses[0].stripeSize = "48Ki"),
      /deviceClasses\[0\]\.stripeSize: "48Ki" is not a power of two/,
    );
  });

  test("StorageClass mistakes name the field", () => {
    rejects(
      (v) => (v.storageClasses[0].deviceClass = "fast"),
      /storageClasses\[0\]\.deviceClass: "fast" is not one of the device classes: thick, thin/,
    );
    rejects((v) => (v.storageClasses[1].stripes = 2), /storageClasses\[1\]\.stripes: device class "thin" is thin/);
    rejects((v) => (v.storageClasses[3].stripes = 2), /storageClasses\[3\]\.mirrors: cannot be combined with stripes/);
    rejects(
      (v) => (v.storageClasses[0].fsType = "btrfs"),
      /storageClasses\[0\]\.fsType: "btrfs" is not one of xfs, ext4/,
    );
    rejects(
      (v) => (v.storageClasses[0].stripeSize = "64Ki"),
      /storageClasses\[0\]\.stripeSize: needs stripes of 2 or more/,
    );
  });

  test("Kubernetes-typed fields are checked with the API schema and the error names the field", () => {
    rejects(
      (v) => (v.tolerations = [{ key: "a", operator: 5 }]),
      /^ValuesError: tolerations\[0\]\.operator: must be string/,
    );
    rejects(
      (v) => (v.tolerations = [{ key: "a", effect: "NoSchedule", tolerate: true }]),
      /tolerations\[0\]\.tolerate: unknown key/,
    );
    rejects((v) => (v.resources.loam.requests.cpu = "lots"), /^ValuesError: resources\.loam\.requests\.cpu: /);
    rejects((v) => (v.nodeSelector = { "bad key!": "x" }), /nodeSelector\["bad key!"\]: is not a Kubernetes label key/);
    rejects((v) => (v.kubeletDir = "var/lib/kubelet"), /kubeletDir: "var\/lib\/kubelet" must be an absolute path/);
    rejects((v) => (v.namespace = "Loam_System"), /namespace: "Loam_System" is not a Kubernetes namespace name/);
  });

  test("cluster topology mistakes name the field: missing block, bad etcd URL, https without a TLS Secret, mixed schemes", () => {
    type Cluster = { replicas?: unknown; placement?: unknown; etcd: { endpoints: unknown; tlsSecret?: string } };
    const cluster = (v: RawValues): Cluster => v.cluster as Cluster;
    rejects((v) => delete v.cluster, /^ValuesError: cluster: is required when topologies has "cluster"/);
    rejects((v) => (cluster(v).etcd.endpoints = []), /cluster\.etcd\.endpoints: needs at least one etcd endpoint/);
    rejects(
      (v) => (cluster(v).etcd.endpoints = ["etcd:2379"]),
      /cluster\.etcd\.endpoints\[0\]: "etcd:2379" is not an etcd client URL; expected http\(s\):\/\/HOST:PORT/,
    );
    rejects(
      (v) => (cluster(v).etcd.endpoints = ["https://etcd:99999"]),
      /cluster\.etcd\.endpoints\[0\]: .* is not an etcd client URL/,
    );
    rejects((v) => delete cluster(v).etcd.tlsSecret, /cluster\.etcd\.tlsSecret: is required for https endpoints/);
    rejects(
      (v) => (cluster(v).etcd.endpoints = ["http://etcd-0:2379"]),
      /cluster\.etcd\.tlsSecret: applies to https endpoints only/,
    );
    rejects(
      (v) => (cluster(v).etcd.endpoints = ["http://etcd-0:2379", "https://etcd-1:2379"]),
      /cluster\.etcd\.endpoints: mixes http and https/,
    );
    rejects((v) => (cluster(v).replicas = 0), /cluster\.replicas: must be a whole number from 1 to 9/);
    rejects((v) => (cluster(v).placement = "random"), /cluster\.placement: "random" is not one of spread, binpack/);
    rejects(
      (v) => ((cluster(v).etcd as Record<string, unknown>).user = "root"),
      /cluster\.etcd\.user: unknown key; allowed keys here: endpoints, tlsSecret/,
    );
    rejects((v) => (v.topologies = ["cluster", "cluster"]), /topologies: names a topology twice/);
    rejects((v) => (v.topologies = ["k3s"]), /topologies\[0\]: "k3s" is not one of distributed, cluster/);
    rejects((v) => (v.topologies = []), /topologies: needs at least one topology/);
  });

  test("without topologies only the distributed topology is rendered, and then no cluster block is needed", () => {
    const values = copy();
    delete values.topologies;
    delete values.cluster;
    assert.deepEqual(parseValues(values).topologies, ["distributed"]);
    const plain = copy();
    (plain.cluster as { etcd: Record<string, unknown> }).etcd = { endpoints: ["http://127.0.0.1:2379"] };
    const cluster = parseValues(plain).cluster;
    assert.deepEqual(cluster?.etcd, { endpoints: ["http://127.0.0.1:2379"] });
    delete (plain.cluster as Record<string, unknown>).replicas;
    assert.equal(parseValues(plain).cluster?.replicas, 2, "two controller replicas by default");
  });

  test("the generator exits 2 and prints the field when the values file is broken", async () => {
    const root = await mkdtemp(join(tmpdir(), "loam-values-"));
    const stderr: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    try {
      const values = copy();
      delete values.deviceClasses[0].volumeGroup;
      await mkdir(join(root, "deploy"));
      await writeFile(join(root, VALUES_FILE), JSON.stringify(values));
      process.stderr.write = (chunk: string | Uint8Array): boolean => (stderr.push(String(chunk)), true);
      const code = await runGenerator(["--root", root, "--check"]);
      process.stderr.write = write;
      assert.equal(code, 2);
      assert.match(stderr.join(""), /deploy\/values\.json: deviceClasses\[0\]\.volumeGroup: is required/);
    } finally {
      process.stderr.write = write;
      await rm(root, { recursive: true, force: true });
    }
  });

  test("parseImage splits registry, path, tag and digest", () => {
    assert.deepEqual(parseImage("registry.k8s.io/sig-storage/csi-provisioner:v5.2.0"), {
      registry: "registry.k8s.io",
      path: "sig-storage/csi-provisioner",
      tag: "v5.2.0",
    });
    assert.deepEqual(parseImage("localhost:5000/loam:dev"), { registry: "localhost:5000", path: "loam", tag: "dev" });
    assert.deepEqual(parseImage("library/busybox:1.36"), { path: "library/busybox", tag: "1.36" });
    const digest = `sha256:${"a".repeat(64)}`;
    assert.deepEqual(parseImage(`ghcr.io/x/loam@${digest}`), { registry: "ghcr.io", path: "x/loam", digest });
    for (const bad of ["", "UPPER/case:1", "a b:1", "x:", "ghcr.io/x/loam@sha256:abc", "x//y:1"])
      assert.equal(parseImage(bad), undefined, bad);
  });
});

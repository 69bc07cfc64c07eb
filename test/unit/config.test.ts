import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, resolveConfig } from "../../src/cli/config.js";
import { loadNodeConfig } from "../../src/cli/node.js";

const base = { volumeGroup: "vg0", nodeId: "node-1" };

test("defaults: driver loam.csi.dev, topology key, socket 0600, kubelet dir", () => {
  const config = resolveConfig(base);
  assert.equal(config.driverName, "loam.csi.dev");
  assert.equal(config.topologyKey, "topology.loam.csi.dev/node");
  assert.equal(config.socketMode, "0600");
  assert.equal(config.kubeletDir, "/var/lib/kubelet");
});

test("every bad value is refused with the name of its field", () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ volumeGroup: "" }, "volumeGroup"],
    [{ volumeGroup: "vg 0;rm" }, "volumeGroup"],
    [{ endpoint: "tcp://0.0.0.0:1" }, "endpoint"],
    [{ endpoint: "unix://relative.sock" }, "endpoint"],
    [{ nodeId: "bad node" }, "nodeId"],
    [{ driverName: "Not_A_Domain" }, "driverName"],
    [{ topologyKey: "has space/x" }, "topologyKey"],
    [{ kubeletDir: "var/lib/kubelet" }, "kubeletDir"],
    [{ socketMode: "0644x" }, "socketMode"],
    [{ socketMode: "0400" }, "socketMode"],
    [{ socketMode: "0666" }, "socketMode"],
    [{ socketMode: "0777" }, "socketMode"],
    [{ socketMode: "0670" }, "socketMode"],
    [{ socketMode: "0700" }, "socketMode"],
    [{ socketMode: "0604" }, "socketMode"],
    [{ maxVolumesPerNode: -1 }, "maxVolumesPerNode"],
    [{ lvmTimeoutSeconds: 0 }, "lvmTimeoutSeconds"],
    [{ logLevel: "loud" }, "logLevel"],
    [{ lvmCommandPrefix: ["nsenter", ""] }, "lvmCommandPrefix[1]"],
  ];
  for (const [layer, field] of cases) {
    assert.throws(
      () => resolveConfig(base, layer),
      (error: unknown) => error instanceof ConfigError && error.field === field,
      `${JSON.stringify(layer)} should fail on ${field}`,
    );
  }
});

test("socketMode: 0600, 0640 and 0660 are accepted; a wider mode is refused saying what is allowed", () => {
  for (const mode of ["0600", "0640", "0660", "660"])
    assert.equal(resolveConfig(base, { socketMode: mode }).socketMode, mode);
  assert.throws(
    () => resolveConfig(base, { socketMode: "0666" }),
    (error: unknown) =>
      error instanceof ConfigError &&
      /"0666" must be 0600, 0640 or 0660 \(read-write for the owner/.test(error.message),
  );
});

test("flags override the config file, and the file's unknown keys and wrong types are refused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "loam-config-"));
  const good = join(dir, "good.json");
  await writeFile(good, JSON.stringify({ volumeGroup: "vgfile", nodeId: "n1", maxVolumesPerNode: 7 }));
  const config = await loadNodeConfig(["--config", good, "--volume-group", "vgflag"]);
  assert.equal(config.volumeGroup, "vgflag");
  assert.equal(config.maxVolumesPerNode, 7);

  const unknown = join(dir, "unknown.json");
  await writeFile(unknown, JSON.stringify({ volumeGroup: "vg", volumGroup: "typo" }));
  await assert.rejects(loadNodeConfig(["--config", unknown]), /volumGroup: unknown setting/);

  const wrongType = join(dir, "type.json");
  await writeFile(wrongType, JSON.stringify({ volumeGroup: "vg", maxVolumesPerNode: "7" }));
  await assert.rejects(loadNodeConfig(["--config", wrongType]), /maxVolumesPerNode: must be an integer/);

  await assert.rejects(
    loadNodeConfig(["--volume-group", "vg", "--max-volumes-per-node", "lots"]),
    /maxVolumesPerNode: must be a whole number/,
  );
  await assert.rejects(loadNodeConfig(["--volume-group", "vg", "--no-such-flag", "1"]), /flags: Unknown option/);
});

test("--cluster-resync-seconds: 60 by default; a whole number from 1 to 3600 by flag; anything else refused", async () => {
  assert.equal((await loadNodeConfig(["--volume-group", "vg"])).clusterResyncSeconds, 60);
  const set = await loadNodeConfig(["--volume-group", "vg", "--cluster-resync-seconds", "10"]);
  assert.equal(set.clusterResyncSeconds, 10);
  await assert.rejects(
    loadNodeConfig(["--volume-group", "vg", "--cluster-resync-seconds", "0"]),
    /clusterResyncSeconds: 0 is out of range; allowed: 1 to 3600/,
  );
  await assert.rejects(
    loadNodeConfig(["--volume-group", "vg", "--cluster-resync-seconds", "often"]),
    /clusterResyncSeconds: must be a whole number/,
  );
});

test("--gc and --gc-grace-seconds: report by default after 600 s; delete and a grace by flag; anything else refused", async () => {
  const defaults = await loadNodeConfig(["--volume-group", "vg"]);
  assert.equal(defaults.gc, "report");
  assert.equal(defaults.gcGraceSeconds, 600);
  const set = await loadNodeConfig(["--volume-group", "vg", "--gc", "delete", "--gc-grace-seconds", "30"]);
  assert.equal(set.gc, "delete");
  assert.equal(set.gcGraceSeconds, 30);
  await assert.rejects(
    loadNodeConfig(["--volume-group", "vg", "--gc", "purge"]),
    /gc: "purge" is not a garbage collection mode; allowed: report, delete/,
  );
  await assert.rejects(
    loadNodeConfig(["--volume-group", "vg", "--gc-grace-seconds", "soon"]),
    /gcGraceSeconds: must be a whole number/,
  );
});

/**
 * `loam controller` as a real process on real etcd, three node agents over the in-memory engine
 * stand-in, and `loam csi` pointed at the controller's socket: the standalone path of cluster
 * mode (create, list, expand, snapshot, restore, delete on any node), and the codes the
 * Controller service answers for bad requests.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import { NodeAgent } from "../../src/cluster/agent.js";
import { Registry } from "../../src/cluster/registry.js";
import { runCsi } from "../../src/cli/csi.js";
import { CsiClient } from "../../src/csi/client.js";
import { Controller, Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { GiB } from "../../src/volumes/size.js";
import { EtcdCluster } from "../support/etcd.js";
import { InMemoryEngineStandIn } from "../support/engine-stand-in.js";

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));
const KEY = "topology.loam.csi.dev/node";

async function csi(endpoint: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCsi(["--endpoint", endpoint, ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: {},
  });
  return { code, stdout, stderr };
}

describe("loam controller (a real process) with node agents on real etcd", () => {
  let etcd: EtcdCluster;
  let dir: string;
  let endpoint: string;
  let controller: ChildProcess;
  let client: Etcd3;
  const agents: NodeAgent[] = [];
  const engines = new Map<string, InMemoryEngineStandIn>();

  before(async () => {
    etcd = await EtcdCluster.start(1);
    dir = await mkdtemp(join(tmpdir(), "loam-cluster-csi-"));
    endpoint = `unix://${join(dir, "controller.sock")}`;
    client = new Etcd3({ hosts: etcd.endpoints });
    for (const id of ["node-a", "node-b", "node-c"]) {
      const engine = new InMemoryEngineStandIn([
        { name: "default", type: "thick", default: true, totalBytes: 4 * GiB },
        { name: "thin", type: "thin", default: false, totalBytes: 8 * GiB },
      ]);
      engines.set(id, engine);
      const agent = new NodeAgent({
        registry: new Registry(client),
        nodeId: id,
        segments: { [KEY]: id },
        engine,
        version: "test",
      });
      await agent.start();
      agents.push(agent);
    }
    controller = spawn(
      process.execPath,
      [
        BIN,
        "controller",
        "--etcd-endpoints",
        etcd.endpoints.join(","),
        "--endpoint",
        endpoint,
        "--metrics-address",
        "",
        "--log-level",
        "error",
        "--node-timeout-seconds",
        "5",
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    for (let i = 0; i < 100; i++) {
      if ((await csi(endpoint, "probe")).code === 0) return;
      await sleep(100);
    }
    throw new Error("loam controller did not start");
  });

  after(async () => {
    controller.kill("SIGTERM");
    if (controller.exitCode === null) await new Promise((resolve) => controller.once("exit", resolve));
    await Promise.all(agents.map((a) => a.stop()));
    client.close();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("the controller advertises the Controller service and expansion; probe answers while etcd does", async () => {
    const caps = await csi(endpoint, "controller-capabilities");
    assert.equal(caps.code, 0, caps.stderr);
    for (const rpc of ["CREATE_DELETE_VOLUME", "EXPAND_VOLUME", "GET_CAPACITY", "VOLUME_CONDITION", "CLONE_VOLUME"]) {
      assert.match(caps.stdout, new RegExp(rpc));
    }
    const plugin = await csi(endpoint, "capabilities");
    assert.match(plugin.stdout, /CONTROLLER_SERVICE/);
  });

  test("loam csi creates, lists, expands, snapshots, restores and deletes volumes on the cluster's nodes", async () => {
    const made = await csi(
      endpoint,
      "--json",
      "create-volume",
      "--name",
      "standalone-1",
      "--size",
      "1Gi",
      "--parameter",
      "loam.csi.dev/deviceClass=thin",
      "--topology",
      `${KEY}=node-b`,
    );
    assert.equal(made.code, 0, made.stderr);
    const volume = (
      JSON.parse(made.stdout) as {
        volume: { volumeId: string; accessibleTopology: { segments: Record<string, string> }[] };
      }
    ).volume;
    assert.deepEqual(volume.accessibleTopology, [{ segments: { [KEY]: "node-b" } }]);
    assert.equal(engines.get("node-b")?.volumes.get(volume.volumeId)?.sizeBytes, GiB);

    const listed = await csi(endpoint, "list-volumes");
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(volume.volumeId));

    const grown = await csi(endpoint, "controller-expand", "--volume-id", volume.volumeId, "--size", "2Gi");
    assert.equal(grown.code, 0, grown.stderr);
    assert.match(grown.stdout, /the node grows the filesystem/);
    assert.equal(engines.get("node-b")?.volumes.get(volume.volumeId)?.sizeBytes, 2 * GiB);

    const snap = await csi(
      endpoint,
      "--json",
      "create-snapshot",
      "--name",
      "standalone-snap",
      "--source-volume-id",
      volume.volumeId,
    );
    assert.equal(snap.code, 0, snap.stderr);
    const snapshotId = (JSON.parse(snap.stdout) as { snapshot: { snapshotId: string } }).snapshot.snapshotId;
    const restored = await csi(
      endpoint,
      "--json",
      "create-volume",
      "--name",
      "standalone-restored",
      "--from-snapshot",
      snapshotId,
    );
    assert.equal(restored.code, 0, restored.stderr);
    const restoredVolume = (JSON.parse(restored.stdout) as { volume: { volumeId: string } }).volume;
    assert.ok(engines.get("node-b")?.volumes.has(restoredVolume.volumeId), "restored on the snapshot's node");

    for (const [rpc, flag, id] of [
      ["delete-volume", "--volume-id", restoredVolume.volumeId],
      ["delete-snapshot", "--snapshot-id", snapshotId],
      ["delete-volume", "--volume-id", volume.volumeId],
    ] as const) {
      const run = await csi(endpoint, rpc, flag, id);
      assert.equal(run.code, 0, run.stderr);
    }
    assert.equal(engines.get("node-b")?.volumes.size, 0);
  });

  test("bad requests get the code CSI names and say what is allowed", async () => {
    const grpc = new CsiClient(endpoint);
    const code = async (promise: Promise<unknown>): Promise<string> => {
      try {
        await promise;
        return "OK";
      } catch (error) {
        return `${(error as { code: number }).code} ${(error as Error).message}`;
      }
    };
    const mount = {
      accessType: { case: "mount" as const, value: { fsType: "xfs", mountFlags: [], volumeMountGroup: "" } },
      accessMode: { mode: 1 },
    };
    // 3 INVALID_ARGUMENT, 5 NOT_FOUND, 8 RESOURCE_EXHAUSTED, 11 OUT_OF_RANGE
    assert.match(
      await code(grpc.call(Controller, "createVolume", { name: "", volumeCapabilities: [mount] })),
      /^3 .*name is required/,
    );
    assert.match(
      await code(
        grpc.call(Controller, "createVolume", {
          name: "x1",
          volumeCapabilities: [mount],
          parameters: { "loam.csi.dev/placement": "random" },
        }),
      ),
      /^3 .*allowed: spread or binpack/,
    );
    assert.match(
      await code(
        grpc.call(Controller, "createVolume", {
          name: "x2",
          volumeCapabilities: [mount],
          accessibilityRequirements: { requisite: [{ segments: { [KEY]: "no-such-node" } }], preferred: [] },
        }),
      ),
      /^8 .*no registered node matches the requisite topology/,
    );
    assert.match(
      await code(
        grpc.call(Controller, "createVolume", {
          name: "x3",
          volumeCapabilities: [mount],
          capacityRange: { requiredBytes: 64n * BigInt(GiB), limitBytes: 0n },
        }),
      ),
      /^8 .*best candidate, node node-\w, has \d+ bytes free/,
    );
    assert.match(
      await code(
        grpc.call(Controller, "createVolume", {
          name: "x4",
          volumeCapabilities: [mount],
          parameters: { "loam.csi.dev/deviceClass": "nvme" },
        }),
      ),
      /^3 .*classes offered: default, thin/,
    );
    assert.match(
      await code(
        grpc.call(Controller, "createVolume", {
          name: "x5",
          volumeCapabilities: [mount],
          volumeContentSource: { type: { case: "volume", value: { volumeId: "nope" } } },
        }),
      ),
      /^5 .*source volume nope does not exist/,
    );
    assert.match(
      await code(
        grpc.call(Controller, "controllerExpandVolume", {
          volumeId: "nope",
          capacityRange: { requiredBytes: BigInt(GiB), limitBytes: 0n },
        }),
      ),
      /^5 /,
    );
    assert.match(await code(grpc.call(Controller, "controllerGetVolume", { volumeId: "nope" })), /^5 /);
    assert.match(await code(grpc.call(Controller, "deleteVolume", { volumeId: "nope" })), /^OK/);
    assert.match(await code(grpc.call(Identity, "probe", {})), /^OK/);
    grpc.close();
  });

  test("ControllerExpandVolume of a block volume asks for node expansion only when it is encrypted (its LUKS mapping grows on the node)", async () => {
    const grpc = new CsiClient(endpoint);
    const block = { accessType: { case: "block" as const, value: {} }, accessMode: { mode: 1 } };
    const grown: Record<string, boolean> = {};
    for (const [name, parameters] of [
      ["block-plain", {}],
      ["block-luks", { "loam.csi.dev/encryption": "luks2" }],
    ] as const) {
      const { volume } = await grpc.call(Controller, "createVolume", {
        name,
        capacityRange: { requiredBytes: BigInt(GiB) / 4n, limitBytes: 0n },
        volumeCapabilities: [block],
        parameters,
      });
      const answer = await grpc.call(Controller, "controllerExpandVolume", {
        volumeId: volume?.volumeId ?? "",
        capacityRange: { requiredBytes: BigInt(GiB) / 2n, limitBytes: 0n },
        volumeCapability: block,
      });
      grown[name] = answer.nodeExpansionRequired;
      await grpc.call(Controller, "deleteVolume", { volumeId: volume?.volumeId ?? "" });
    }
    assert.deepEqual(grown, { "block-plain": false, "block-luks": true });
    grpc.close();
  });

  test("ControllerModifyVolume (issue 17): offered, changes IO limits, names the keys that cannot change", async () => {
    const caps = await csi(endpoint, "controller-capabilities");
    assert.match(caps.stdout, /MODIFY_VOLUME/);
    const grpc = new CsiClient(endpoint);
    const { volume } = await grpc.call(Controller, "createVolume", {
      name: "modify-me",
      capacityRange: { requiredBytes: BigInt(GiB) / 4n, limitBytes: 0n },
      volumeCapabilities: [{ accessType: { case: "mount", value: { fsType: "ext4" } }, accessMode: { mode: 1 } }],
      parameters: {},
      mutableParameters: { "loam.csi.dev/writeIOPS": "100" },
    });
    const volumeId = volume?.volumeId ?? "";
    await grpc.call(Controller, "controllerModifyVolume", {
      volumeId,
      mutableParameters: { "loam.csi.dev/writeIOPS": "200" },
    });
    await assert.rejects(
      grpc.call(Controller, "controllerModifyVolume", {
        volumeId,
        mutableParameters: { "loam.csi.dev/mirrors": "1", "loam.csi.dev/writeIOPS": "300" },
      }),
      (error: { code: number; details: string }) =>
        error.code === 3 && /cannot change on an existing volume: "loam.csi.dev\/mirrors"/.test(error.details),
    );
    await grpc.call(Controller, "deleteVolume", { volumeId });
    grpc.close();
  });

  test("GetCapacity answers per topology segment from the ledgers", async () => {
    const grpc = new CsiClient(endpoint);
    const all = await grpc.call(Controller, "getCapacity", {});
    const one = await grpc.call(Controller, "getCapacity", { accessibleTopology: { segments: { [KEY]: "node-a" } } });
    assert.equal(one.availableCapacity, BigInt(4 * GiB));
    assert.ok(all.availableCapacity >= 3n * BigInt(4 * GiB) - BigInt(GiB), `all: ${all.availableCapacity}`);
    const thin = await grpc.call(Controller, "getCapacity", {
      parameters: { "loam.csi.dev/deviceClass": "thin" },
      accessibleTopology: { segments: { [KEY]: "node-c" } },
    });
    assert.equal(thin.availableCapacity, BigInt(8 * GiB));
    grpc.close();
  });
});

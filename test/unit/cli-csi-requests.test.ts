/**
 * What `loam csi` puts on the wire, checked with a stand-in CSI server that records each
 * request and answers with canned replies (the real server cannot create volumes on a
 * host without device-mapper). Also the size and output helpers.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  Controller,
  Node,
  VolumeCapability_AccessMode_Mode,
  type CreateVolumeRequest,
  type ListVolumesRequest,
  type NodeExpandVolumeRequest,
  type NodePublishVolumeRequest,
  type NodeStageVolumeRequest,
  type GetCapacityRequest,
} from "../../src/gen/csi/v1/csi_pb.js";
import { addService } from "../../src/csi/service.js";
import { createLogger } from "../../src/log.js";
import { runCsi } from "../../src/cli/csi.js";
import { parseSize } from "../../src/cli/csi/flags.js";
import { humanBytes, keyValues, table } from "../../src/cli/csi-output.js";

const GiB = 1024n ** 3n;

describe("loam csi requests, against a stand-in CSI server that records them", () => {
  let dir: string;
  let endpoint: string;
  const server = new Server();
  const seen: Array<{ method: string; request: MessageShape<DescMessage> }> = [];
  const volumeIds = ["v1", "v2", "v3", "v4", "v5"];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "loam-csi-standin-"));
    endpoint = `unix://${join(dir, "csi.sock")}`;
    const logger = createLogger("error", () => undefined);
    addService(
      server,
      Controller,
      {
        createVolume: (request: CreateVolumeRequest) => {
          seen.push({ method: "createVolume", request });
          return Promise.resolve({
            volume: {
              volumeId: "lv-1",
              capacityBytes: request.capacityRange?.requiredBytes ?? 0n,
              accessibleTopology: [{ segments: { "topology.loam.csi.dev/node": "n1" } }],
            },
          });
        },
        listVolumes: (request: ListVolumesRequest) => {
          seen.push({ method: "listVolumes", request });
          const start = request.startingToken === "" ? 0 : Number(request.startingToken);
          const end = Math.min(volumeIds.length, start + (request.maxEntries || volumeIds.length));
          return Promise.resolve({
            entries: volumeIds.slice(start, end).map((volumeId) => ({ volume: { volumeId, capacityBytes: GiB } })),
            nextToken: end < volumeIds.length ? String(end) : "",
          });
        },
        getCapacity: (request: GetCapacityRequest) => {
          seen.push({ method: "getCapacity", request });
          return Promise.resolve({ availableCapacity: 3n * GiB + GiB / 2n, maximumVolumeSize: 2n * GiB });
        },
      },
      { logger },
    );
    addService(
      server,
      Node,
      {
        nodeStageVolume: (request: NodeStageVolumeRequest) => {
          seen.push({ method: "nodeStageVolume", request });
          return Promise.resolve({});
        },
        nodePublishVolume: (request: NodePublishVolumeRequest) => {
          seen.push({ method: "nodePublishVolume", request });
          return Promise.resolve({});
        },
        nodeExpandVolume: (request: NodeExpandVolumeRequest) => {
          seen.push({ method: "nodeExpandVolume", request });
          return Promise.resolve({ capacityBytes: request.capacityRange?.requiredBytes ?? 0n });
        },
      },
      { logger },
    );
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(endpoint, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
    );
  });

  after(async () => {
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  async function csi(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    const code = await runCsi(["--endpoint", endpoint, ...args], {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      env: {},
    });
    return { code, stdout, stderr };
  }

  function last<T>(method: string): T {
    const found = seen.filter((s) => s.method === method).at(-1);
    assert.ok(found, `no ${method} request was received`);
    return found.request as T;
  }

  test("create-volume sends name, capacity range, parameters, capability, source and topology", async () => {
    const run = await csi(
      "create-volume",
      "--name",
      "pvc-1",
      "--size",
      "1Gi",
      "--limit",
      "2G",
      "--parameter",
      "deviceClass=thin",
      "--parameter",
      "stripes=2",
      "--fs-type",
      "ext4",
      "--mount-flag",
      "noatime",
      "--access-mode",
      "single-node-single-writer",
      "--from-snapshot",
      "snap-9",
      "--topology",
      "topology.loam.csi.dev/node=n1",
    );
    assert.equal(run.code, 0, run.stderr);
    const request = last<CreateVolumeRequest>("createVolume");
    assert.equal(request.name, "pvc-1");
    assert.equal(request.capacityRange?.requiredBytes, GiB);
    assert.equal(request.capacityRange?.limitBytes, 2_000_000_000n);
    assert.deepEqual(request.parameters, { deviceClass: "thin", stripes: "2" });
    const capability = request.volumeCapabilities[0];
    assert.equal(capability?.accessType.case, "mount");
    assert.equal(capability?.accessType.value?.$typeName, "csi.v1.VolumeCapability.MountVolume");
    if (capability?.accessType.case === "mount") {
      assert.equal(capability.accessType.value.fsType, "ext4");
      assert.deepEqual(capability.accessType.value.mountFlags, ["noatime"]);
    }
    assert.equal(capability?.accessMode?.mode, VolumeCapability_AccessMode_Mode.SINGLE_NODE_SINGLE_WRITER);
    assert.equal(request.volumeContentSource?.type.case, "snapshot");
    assert.deepEqual(request.accessibilityRequirements?.requisite[0]?.segments, { "topology.loam.csi.dev/node": "n1" });
    assert.match(run.stdout, /volume id:\s+lv-1/);
    assert.match(run.stdout, /capacity:\s+1 GiB \(1073741824 bytes\)/);
  });

  test("create-volume --block sends a block capability with single-node-writer by default", async () => {
    const run = await csi("create-volume", "--name", "raw", "--size", "64Mi", "--block");
    assert.equal(run.code, 0, run.stderr);
    const request = last<CreateVolumeRequest>("createVolume");
    assert.equal(request.volumeCapabilities[0]?.accessType.case, "block");
    assert.equal(request.volumeCapabilities[0]?.accessMode?.mode, VolumeCapability_AccessMode_Mode.SINGLE_NODE_WRITER);
  });

  test("list-volumes follows next_token across pages of --max-entries", async () => {
    const before = seen.filter((s) => s.method === "listVolumes").length;
    const run = await csi("--json", "list-volumes", "--max-entries", "2");
    assert.equal(run.code, 0, run.stderr);
    const reply = JSON.parse(run.stdout) as { entries: Array<{ volume: { volumeId: string } }>; nextToken: string };
    assert.deepEqual(
      reply.entries.map((e) => e.volume.volumeId),
      volumeIds,
    );
    assert.equal(reply.nextToken, "");
    const calls = seen
      .filter((s) => s.method === "listVolumes")
      .slice(before)
      .map((s) => s.request as ListVolumesRequest);
    assert.deepEqual(
      calls.map((c) => [c.maxEntries, c.startingToken]),
      [
        [2, ""],
        [2, "2"],
        [2, "4"],
      ],
    );
  });

  test("list-volumes --single-page prints one page and the next token", async () => {
    const run = await csi("list-volumes", "--max-entries", "2", "--single-page");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^VOLUME ID\s+CAPACITY\s+TOPOLOGY\s+CONDITION$/m);
    assert.match(run.stdout, /^v1\s+1 GiB/m);
    assert.doesNotMatch(run.stdout, /^v3/m);
    assert.match(run.stdout, /next token: 2$/m);
  });

  test("get-capacity sends parameters and topology and prints humanized sizes", async () => {
    const run = await csi(
      "get-capacity",
      "--parameter",
      "deviceClass=thick",
      "--topology",
      "topology.loam.csi.dev/node=n1",
    );
    assert.equal(run.code, 0, run.stderr);
    const request = last<GetCapacityRequest>("getCapacity");
    assert.deepEqual(request.parameters, { deviceClass: "thick" });
    assert.deepEqual(request.accessibleTopology?.segments, { "topology.loam.csi.dev/node": "n1" });
    assert.equal(request.volumeCapabilities.length, 0, "no capability unless one is asked for");
    assert.match(run.stdout, /available:\s+3\.5 GiB \(3758096384 bytes\)/);
    assert.match(run.stdout, /maximum volume size:\s+2 GiB/);
  });

  test("stage and publish send paths, capability and read-only", async () => {
    assert.equal(
      (
        await csi(
          "stage",
          "--volume-id",
          "lv-1",
          "--staging-path",
          "/var/lib/kubelet/s",
          "--fs-type",
          "xfs",
          "--mount-flag",
          "nodiscard",
        )
      ).code,
      0,
    );
    const stage = last<NodeStageVolumeRequest>("nodeStageVolume");
    assert.equal(stage.stagingTargetPath, "/var/lib/kubelet/s");
    assert.equal(stage.volumeCapability?.accessType.case, "mount");
    assert.equal(
      (
        await csi(
          "publish",
          "--volume-id",
          "lv-1",
          "--staging-path",
          "/var/lib/kubelet/s",
          "--target-path",
          "/var/lib/kubelet/t",
          "--readonly",
        )
      ).code,
      0,
    );
    const publish = last<NodePublishVolumeRequest>("nodePublishVolume");
    assert.equal(publish.targetPath, "/var/lib/kubelet/t");
    assert.equal(publish.stagingTargetPath, "/var/lib/kubelet/s");
    assert.equal(publish.readonly, true);
  });

  test("expand sends the new size as required bytes and prints the capacity", async () => {
    const run = await csi("expand", "--volume-id", "lv-1", "--volume-path", "/var/lib/kubelet/t", "--size", "512Mi");
    assert.equal(run.code, 0, run.stderr);
    const request = last<NodeExpandVolumeRequest>("nodeExpandVolume");
    assert.equal(request.volumePath, "/var/lib/kubelet/t");
    assert.equal(request.capacityRange?.requiredBytes, 512n * 1024n * 1024n);
    assert.match(run.stdout, /capacity: 512 MiB/);
  });

  test("an RPC the stand-in does not implement prints UNIMPLEMENTED and exits 1", async () => {
    const run = await csi("delete-snapshot", "--snapshot-id", "s1");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^loam csi delete-snapshot: UNIMPLEMENTED: /);
  });
});

describe("loam csi sizes and output", () => {
  test("parseSize reads Kubernetes quantities (the grammar's own table is in quantity.test.ts)", () => {
    assert.equal(parseSize("512Mi"), 512n * 1024n * 1024n);
    assert.equal(parseSize("1Gi"), GiB);
    assert.equal(parseSize("1G"), 1_000_000_000n);
    assert.equal(parseSize("1k"), 1000n);
    assert.equal(parseSize("4096"), 4096n);
    assert.equal(parseSize("1.5Gi"), GiB + GiB / 2n);
    assert.throws(() => parseSize("2TiB"), /^Error: --size "2TiB" is not a size; allowed: .*Ki, Mi, Gi/);
    assert.throws(() => parseSize("1K", "limit"), /--limit "1K" is not a size/);
    assert.throws(() => parseSize("-1"), /--size "-1" is negative/);
    assert.throws(() => parseSize("9999999999999999999Pi"), /larger than an int64/);
  });

  test("humanBytes uses binary units with up to two decimals", () => {
    assert.equal(humanBytes(0n), "0 B");
    assert.equal(humanBytes(1023n), "1023 B");
    assert.equal(humanBytes(1024n), "1 KiB");
    assert.equal(humanBytes(268435456n), "256 MiB");
    assert.equal(humanBytes(1610612736n), "1.5 GiB");
    assert.equal(humanBytes(1_000_000_000n), "953.67 MiB");
  });

  test("keyValues aligns values and skips undefined rows; table pads columns", () => {
    assert.equal(
      keyValues([
        ["a", "1"],
        ["long key", "2"],
        ["gone", undefined],
      ]),
      "a:         1\nlong key:  2",
    );
    assert.equal(
      table(
        ["ID", "SIZE"],
        [
          ["v1", "1 GiB"],
          ["volume-2", "2 GiB"],
        ],
      ),
      "ID        SIZE\nv1        1 GiB\nvolume-2  2 GiB",
    );
  });
});

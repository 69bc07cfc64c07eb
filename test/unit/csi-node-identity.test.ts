/**
 * CSI Node and Identity over the in-memory LVM stand-in, through loam's real gRPC server.
 * Node rows cover what is decided before any host command runs (the fast server's host
 * runner fails any mount or mkfs): required fields, capabilities, path confinement under
 * kubelet's directory, volumes that are missing or still being populated. Mounting and
 * formatting stay with the host and VM suites.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import {
  Controller,
  Identity,
  Node,
  NodeServiceCapability_RPC_Type as NodeRpc,
  PluginCapability_Service_Type as ServiceType,
  VolumeCapability_AccessMode_Mode as Mode,
} from "../../src/gen/csi/v1/csi_pb.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { MiB } from "../../src/volumes/size.js";
import { lvmFailure } from "../support/in-memory-lvm.js";
import { DRIVER_NAME, NODE_ID, TOPOLOGY_KEY, type TestCsi, VG, startCsi, thickClass } from "../support/engine.js";
import { type Row, block, checkRow, mount } from "../support/rpc-table.js";

let csi: TestCsi;
const volume = lvNameFor("node-volume");
const cloning = lvNameFor("node-cloning");
const missing = lvNameFor("node-missing");
/** Paths below the server's kubelet directory (known once it has started). */
const under = (...parts: string[]): string => join(csi.kubeletDir, ...parts);

before(async () => {
  csi = await startCsi({ maxVolumesPerNode: 7 });
  const create = (name: string, extra: object = {}) =>
    csi.client.call(Controller, "createVolume", {
      name,
      capacityRange: { requiredBytes: BigInt(8 * MiB), limitBytes: 0n },
      volumeCapabilities: [mount()],
      parameters: {},
      ...extra,
    });
  await create("node-volume");
  // A clone whose copy failed: its LV carries the populating mark until a retry completes it.
  csi.lvm.failNext("copyLv", lvmFailure(["dd"], ["dd: error reading '/dev/loamfx/x': Input/output error"], 1));
  await assert.rejects(
    create("node-cloning", { volumeContentSource: { type: { case: "volume", value: { volumeId: volume } } } }),
  );
  await symlink("/tmp", join(csi.kubeletDir, "escape"));
  await mkdir(join(csi.kubeletDir, "not-a-mount"));
});
after(async () => {
  await csi.stop();
});

type Outcome = { code: status; message: RegExp } | { ok: true };
const fails = (code: status, message: RegExp): Outcome => ({ code, message });
const invalid = (message: RegExp): Outcome => fails(status.INVALID_ARGUMENT, message);
const refusedPath = (field: string, why: RegExp): Outcome =>
  invalid(new RegExp(`^${field} ".*" is refused: ${why.source}; it must lie under `));

function rows<K extends keyof (typeof Node)["method"]>(
  method: K,
  table: Array<[string, () => Row<typeof Node, K>["request"], Outcome]>,
): void {
  describe(`Node ${method}`, () => {
    for (const [name, request, outcome] of table) {
      test(name, () =>
        checkRow(csi.client, Node, method, {
          name,
          request: request(),
          ...("code" in outcome ? { code: outcome.code, message: outcome.message } : {}),
        }),
      );
    }
  });
}

const stage = (extra: object = {}) => ({
  volumeId: volume,
  stagingTargetPath: under("stage", "globalmount"),
  volumeCapability: mount(),
  ...extra,
});
rows("nodeStageVolume", [
  ["without volume_id", () => stage({ volumeId: "" }), invalid(/^volume_id is required$/)],
  ["without staging_target_path", () => stage({ stagingTargetPath: "" }), invalid(/^staging_target_path is required$/)],
  [
    "without volume_capability",
    () => ({ volumeId: volume, stagingTargetPath: under("s") }),
    invalid(/^volume_capability is required$/),
  ],
  [
    "with a capability without access_type",
    () => stage({ volumeCapability: { accessMode: { mode: Mode.SINGLE_NODE_WRITER } } }),
    invalid(/^volume_capability.access_type is required: set either mount or block$/),
  ],
  [
    "with a multi-node access mode",
    () => stage({ volumeCapability: mount("xfs", Mode.MULTI_NODE_SINGLE_WRITER) }),
    invalid(/^volume_capability.access_mode MULTI_NODE_SINGLE_WRITER is not supported/),
  ],
  [
    "with an unsupported fs_type",
    () => stage({ volumeCapability: mount("btrfs") }),
    invalid(/^volume_capability.mount.fs_type "btrfs" is not supported; allowed: /),
  ],
  [
    "with a refused mount flag",
    () => stage({ volumeCapability: mount("xfs", Mode.SINGLE_NODE_WRITER, { mountFlags: ["nosuid,exec"] }) }),
    invalid(/^volume_capability.mount.mount_flags contains "exec", which loam does not pass to mount/),
  ],
  [
    "with a volume_mount_group",
    () => stage({ volumeCapability: mount("xfs", Mode.SINGLE_NODE_WRITER, { volumeMountGroup: "1000" }) }),
    invalid(/^volume_capability.mount.volume_mount_group is not supported: loam does not offer VOLUME_MOUNT_GROUP$/),
  ],
  [
    "with a relative staging path",
    () => stage({ stagingTargetPath: "var/lib/kubelet/x" }),
    refusedPath("staging_target_path", /"var\/lib\/kubelet\/x" is not an absolute path/),
  ],
  [
    "with a '..' segment",
    () => stage({ stagingTargetPath: `${under("a")}/../../etc` }),
    refusedPath("staging_target_path", /".*" contains a "\.\." segment/),
  ],
  [
    "outside kubelet's directory",
    () => stage({ stagingTargetPath: "/etc/loam-stage" }),
    refusedPath("staging_target_path", /"\/etc\/loam-stage" is not under .*/),
  ],
  [
    "at kubelet's directory itself",
    () => stage({ stagingTargetPath: under() }),
    refusedPath("staging_target_path", /".*" is not under .*/),
  ],
  [
    "through a symlink leading out",
    () => stage({ stagingTargetPath: under("escape", "stage") }),
    refusedPath("staging_target_path", /".*" resolves to \/tmp\/stage, which is not under .*/),
  ],
  [
    "with control characters",
    () => stage({ stagingTargetPath: under("a\nb") }),
    refusedPath("staging_target_path", /contains control characters/),
  ],
  [
    "of a volume that does not exist",
    () => stage({ volumeId: missing }),
    fails(status.NOT_FOUND, /^volume node-missing-\w+ does not exist on this node$/),
  ],
  [
    "of a volume still being populated",
    () => stage({ volumeId: cloning }),
    fails(
      status.UNAVAILABLE,
      /^volume node-cloning-\w+ is still being populated from its source; try again when CreateVolume has returned$/,
    ),
  ],
]);

rows("nodeUnstageVolume", [
  ["without volume_id", () => ({ volumeId: "", stagingTargetPath: under("s") }), invalid(/^volume_id is required$/)],
  [
    "without staging_target_path",
    () => ({ volumeId: volume, stagingTargetPath: "" }),
    invalid(/^staging_target_path is required$/),
  ],
  [
    "outside kubelet's directory",
    () => ({ volumeId: volume, stagingTargetPath: "/mnt" }),
    refusedPath("staging_target_path", /"\/mnt" is not under .*/),
  ],
]);

const publish = (extra: object = {}) => ({
  volumeId: volume,
  stagingTargetPath: under("stage", "globalmount"),
  targetPath: under("pods", "p1", "mount"),
  volumeCapability: mount(),
  readonly: false,
  ...extra,
});
rows("nodePublishVolume", [
  ["without volume_id", () => publish({ volumeId: "" }), invalid(/^volume_id is required$/)],
  [
    "without staging_target_path",
    () => publish({ stagingTargetPath: "" }),
    invalid(/^staging_target_path is required$/),
  ],
  ["without target_path", () => publish({ targetPath: "" }), invalid(/^target_path is required$/)],
  [
    "without volume_capability",
    () => ({ volumeId: volume, stagingTargetPath: under("s"), targetPath: under("t") }),
    invalid(/^volume_capability is required$/),
  ],
  [
    "with a multi-node access mode",
    () => publish({ volumeCapability: mount("ext4", Mode.MULTI_NODE_MULTI_WRITER) }),
    invalid(/access_mode MULTI_NODE_MULTI_WRITER is not supported/),
  ],
  [
    "with a target outside kubelet's directory",
    () => publish({ targetPath: "/root/target" }),
    refusedPath("target_path", /"\/root\/target" is not under .*/),
  ],
  [
    "with a staging path outside kubelet's directory",
    () => publish({ stagingTargetPath: "/root/stage" }),
    refusedPath("staging_target_path", /"\/root\/stage" is not under .*/),
  ],
  [
    "with both paths outside: the staging path is named",
    () => publish({ stagingTargetPath: "/a", targetPath: "/b" }),
    refusedPath("staging_target_path", /"\/a" is not under .*/),
  ],
  [
    "a block volume read-only",
    () => publish({ volumeCapability: block(), readonly: true }),
    invalid(
      /^readonly publish of a raw block volume is refused: the kernel does not stop writes through a read-only bind mount of a device node$/,
    ),
  ],
  [
    "a block volume with a reader-only mode",
    () => publish({ volumeCapability: block(Mode.SINGLE_NODE_READER_ONLY) }),
    invalid(/^readonly publish of a raw block volume is refused/),
  ],
  [
    "of a volume that does not exist",
    () => publish({ volumeId: missing }),
    fails(status.NOT_FOUND, /does not exist on this node/),
  ],
  [
    "of a volume still being populated",
    () => publish({ volumeId: cloning }),
    fails(status.UNAVAILABLE, /still being populated/),
  ],
]);

rows("nodeUnpublishVolume", [
  ["without volume_id", () => ({ volumeId: "", targetPath: under("t") }), invalid(/^volume_id is required$/)],
  ["without target_path", () => ({ volumeId: volume, targetPath: "" }), invalid(/^target_path is required$/)],
  [
    "outside kubelet's directory",
    () => ({ volumeId: volume, targetPath: "/var/tmp" }),
    refusedPath("target_path", /"\/var\/tmp" is not under .*/),
  ],
]);

rows("nodeExpandVolume", [
  ["without volume_id", () => ({ volumeId: "", volumePath: under("t") }), invalid(/^volume_id is required$/)],
  ["without volume_path", () => ({ volumeId: volume, volumePath: "" }), invalid(/^volume_path is required$/)],
  [
    "outside kubelet's directory",
    () => ({ volumeId: volume, volumePath: "/srv" }),
    refusedPath("volume_path", /"\/srv" is not under .*/),
  ],
  [
    "of a volume that does not exist, outside kubelet's directory: the volume is judged first",
    () => ({ volumeId: missing, volumePath: "/srv" }),
    fails(status.NOT_FOUND, /^volume node-missing-\w+ does not exist on this node$/),
  ],
  [
    "with a volume_mount_group",
    () => ({
      volumeId: volume,
      volumePath: under("t"),
      volumeCapability: mount("xfs", Mode.SINGLE_NODE_WRITER, { volumeMountGroup: "5" }),
    }),
    invalid(/^volume_capability.mount.volume_mount_group is not supported/),
  ],
  [
    "of a volume that does not exist",
    () => ({ volumeId: missing, volumePath: under("t") }),
    fails(status.NOT_FOUND, /^volume node-missing-\w+ does not exist on this node$/),
  ],
  [
    "at a path that does not exist",
    () => ({ volumeId: volume, volumePath: under("nothing-here") }),
    fails(status.NOT_FOUND, /^volume_path .*nothing-here does not exist$/),
  ],
]);

rows("nodeGetVolumeStats", [
  ["without volume_id", () => ({ volumeId: "", volumePath: under("t") }), invalid(/^volume_id is required$/)],
  ["without volume_path", () => ({ volumeId: volume, volumePath: "" }), invalid(/^volume_path is required$/)],
  [
    "outside kubelet's directory",
    () => ({ volumeId: volume, volumePath: "/proc" }),
    refusedPath("volume_path", /"\/proc" is not under .*/),
  ],
  [
    "of a volume that does not exist, outside kubelet's directory: the volume is judged first",
    () => ({ volumeId: missing, volumePath: "/proc" }),
    fails(status.NOT_FOUND, /^volume node-missing-\w+ does not exist on this node$/),
  ],
  [
    "of a volume that does not exist, at a path that is not a mount",
    () => ({ volumeId: missing, volumePath: under("not-a-mount") }),
    fails(status.NOT_FOUND, /^volume node-missing-\w+ does not exist on this node$/),
  ],
  [
    "at a path that does not exist",
    () => ({ volumeId: volume, volumePath: under("gone") }),
    fails(status.NOT_FOUND, /^volume_path .*gone does not exist$/),
  ],
]);

describe("Node: what it says about itself", () => {
  test("NodeGetInfo: node id, topology segment and the volume limit", async () => {
    const info = await csi.client.call(Node, "nodeGetInfo", {});
    assert.deepEqual(
      [info.nodeId, info.maxVolumesPerNode, info.accessibleTopology?.segments],
      [NODE_ID, 7n, { [TOPOLOGY_KEY]: NODE_ID }],
    );
  });

  test("NodeGetCapabilities: stage/unstage, expansion, stats, condition, single-node multi-writer", async () => {
    const reply = await csi.client.call(Node, "nodeGetCapabilities", {});
    const rpcs = reply.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : undefined));
    assert.deepEqual(rpcs, [
      NodeRpc.STAGE_UNSTAGE_VOLUME,
      NodeRpc.EXPAND_VOLUME,
      NodeRpc.GET_VOLUME_STATS,
      NodeRpc.VOLUME_CONDITION,
      NodeRpc.SINGLE_NODE_MULTI_WRITER,
    ]);
  });

  test("NodeGetVolumeStats of a volume at a path that is not a mount: abnormal, with what is wrong", async () => {
    const reply = await csi.client.call(Node, "nodeGetVolumeStats", {
      volumeId: volume,
      volumePath: under("not-a-mount"),
    });
    assert.equal(reply.volumeCondition?.abnormal, true);
    assert.match(reply.volumeCondition?.message ?? "", /^nothing is mounted at .*not-a-mount$/);
  });
});

describe("Identity", () => {
  const identityRows: Array<[string, () => Promise<unknown>, (reply: never) => void]> = [
    [
      "GetPluginInfo: the driver name and version",
      () => csi.client.call(Identity, "getPluginInfo", {}),
      (r: { name: string; vendorVersion: string }) =>
        assert.deepEqual([r.name, r.vendorVersion], [DRIVER_NAME, "0.0.0-fast"]),
    ],
    [
      "GetPluginCapabilities: controller service and accessibility constraints, online expansion",
      () => csi.client.call(Identity, "getPluginCapabilities", {}),
      (r: { capabilities: Array<{ type: { case?: string; value?: { type: number } } }> }) =>
        assert.deepEqual(
          r.capabilities.map((c) => [c.type.case, c.type.value?.type]),
          [
            ["service", ServiceType.CONTROLLER_SERVICE],
            ["service", ServiceType.VOLUME_ACCESSIBILITY_CONSTRAINTS],
            ["volumeExpansion", 1],
          ],
        ),
    ],
    [
      "Probe: ready when the volume groups can be read",
      () => csi.client.call(Identity, "probe", {}),
      (r: { ready?: boolean }) => assert.equal(r.ready, true),
    ],
  ];
  for (const [name, run, check] of identityRows) test(name, async () => check((await run()) as never));

  test("Probe: UNAVAILABLE when a volume group cannot be read, with LVM's words", async () => {
    const broken = await startCsi({ classes: [thickClass({ volumeGroup: "gonevg" })] });
    try {
      await checkRow(broken.client, Identity, "probe", {
        name: "probe",
        request: {},
        code: status.UNAVAILABLE,
        message:
          /^volume group\(s\) gonevg cannot be read: lvm fullreport failed with exit code 5: Volume group "gonevg" not found/,
      });
    } finally {
      await broken.stop();
    }
  });

  test(`Probe reads the stand-in, not a real VG (${VG})`, () => {
    assert.ok(csi.lvm.callsOf("reportAll").length > 0);
  });
});

/**
 * CSI Controller over the in-memory LVM stand-in, through loam's real gRPC server: every
 * CreateVolume adopt case, sizes with a content source, required fields, StorageClass
 * parameters, snapshots, clones, paging and capacity by class. Table rows run in order
 * against one server; each row uses names of its own. The VM suite checks real LVM.
 * One file of tables, not one per RPC: the rows share one server and its state builders,
 * and a reader looking for "what does CreateVolume answer when ..." finds every case here.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import {
  Controller,
  ControllerServiceCapability_RPC_Type as Rpc,
  VolumeCapability_AccessMode_Mode as Mode,
} from "../../src/gen/csi/v1/csi_pb.js";
import { runCsi } from "../../src/cli/csi.js";
import { lvNameFor, snapshotLvNameFor } from "../../src/lvm/names.js";
import { MiB } from "../../src/volumes/size.js";
import { lvmFailure } from "../support/in-memory-lvm.js";
import { EXTENT, NODE_ID, THIN_POOL, TOPOLOGY_KEY, type TestCsi, VG, startCsi } from "../support/engine.js";
import { type RequestOf, type Row, block, checkRow, mount } from "../support/rpc-table.js";

const E = EXTENT;
const CLASS = "loam.csi.dev/deviceClass";
const thin = { [CLASS]: "thin" };
const bytes = (n: number): bigint => BigInt(n);

/** The server of the suite running now: each describe gets its own, on a fresh stand-in VG (2 GiB). */
let csi: TestCsi;
function ownServer(): void {
  before(async () => {
    csi = await startCsi();
  });
  after(async () => {
    await csi.stop();
  });
}

const call = <K extends keyof (typeof Controller)["method"]>(method: K, request: RequestOf<typeof Controller, K>) =>
  csi.client.call(Controller, method, request);

function createRequest(
  name: string,
  mib?: number,
  extra: Partial<RequestOf<typeof Controller, "createVolume">> = {},
): RequestOf<typeof Controller, "createVolume"> {
  return {
    name,
    ...(mib === undefined ? {} : { capacityRange: { requiredBytes: bytes(mib * MiB), limitBytes: 0n } }),
    volumeCapabilities: [mount()],
    parameters: {},
    ...extra,
  };
}

const create = (name: string, mib?: number, extra: Partial<RequestOf<typeof Controller, "createVolume">> = {}) =>
  call("createVolume", createRequest(name, mib, extra));
const snapshot = (name: string, sourceVolumeId: string) => call("createSnapshot", { name, sourceVolumeId });
const size = (mib: number) => (reply: { volume?: { capacityBytes: bigint } }) =>
  assert.equal(reply.volume?.capacityBytes, bytes(mib * MiB));
const range = (requiredMiB: number, limitMiB = 0) => ({
  requiredBytes: bytes(requiredMiB * MiB),
  limitBytes: bytes(limitMiB * MiB),
});
const fromSnapshot = (snapshotId: string) => ({ type: { case: "snapshot" as const, value: { snapshotId } } });
const fromVolume = (volumeId: string) => ({ type: { case: "volume" as const, value: { volumeId } } });

describe("CreateVolume: a retried name adopts its volume or is ALREADY_EXISTS", () => {
  ownServer();
  const rows: Array<Row<typeof Controller, "createVolume">> = [
    {
      name: "same name, same size: the same volume",
      before: () => create("adopt-same", 64),
      request: createRequest("adopt-same", 64),
      reply: (r) => assert.equal(r.volume?.volumeId, lvNameFor("adopt-same")),
    },
    {
      name: "same name, no capacity_range: the existing volume",
      before: () => create("adopt-norange", 64),
      request: createRequest("adopt-norange"),
      reply: size(64),
    },
    {
      name: "same name, a smaller required size: the existing (larger) volume",
      before: () => create("adopt-smaller", 64),
      request: createRequest("adopt-smaller", 32),
      reply: size(64),
    },
    {
      name: "same name, a size that rounds to the same extents: the same volume",
      before: () => create("adopt-round", 62),
      request: createRequest("adopt-round", 63),
      reply: size(64),
    },
    {
      name: "same name, a larger size: ALREADY_EXISTS",
      before: () => create("adopt-larger", 64),
      request: createRequest("adopt-larger", 128),
      code: status.ALREADY_EXISTS,
      message:
        /exists with 67108864 bytes, outside this request's range \[required_bytes=134217728, limit_bytes=unset\] \(the computed size would be 134217728\)/,
    },
    {
      name: "same name, a limit below its size: ALREADY_EXISTS",
      before: () => create("adopt-limit", 64),
      request: createRequest("adopt-limit", undefined, { capacityRange: range(16, 32) }),
      code: status.ALREADY_EXISTS,
      message:
        /exists with 67108864 bytes, outside this request's range \[required_bytes=16777216, limit_bytes=33554432\]/,
    },
    {
      name: "same name, another device class: ALREADY_EXISTS",
      before: () => create("adopt-class", 64),
      request: createRequest("adopt-class", 64, { parameters: thin }),
      code: status.ALREADY_EXISTS,
      message: /exists with parameters \[\]; this request asks for \[\["loam.csi.dev\/deviceClass","thin"\]\]/,
    },
    {
      name: "same name, another layout: ALREADY_EXISTS",
      before: () => create("adopt-stripes", 64),
      request: createRequest("adopt-stripes", 64, { parameters: { "loam.csi.dev/stripes": "2" } }),
      code: status.ALREADY_EXISTS,
      message: /exists with parameters/,
    },
    {
      name: "same name, claim metadata differs: the same volume (metadata never makes requests incompatible)",
      before: () => create("adopt-meta", 64, { parameters: { "csi.storage.k8s.io/pvc/name": "one" } }),
      request: createRequest("adopt-meta", 64, { parameters: { "csi.storage.k8s.io/pvc/name": "two" } }),
      reply: size(64),
    },
    {
      name: "same name, now with a content source: ALREADY_EXISTS",
      before: async () => {
        await create("adopt-src", 64, { parameters: thin });
        await create("adopt-src-origin", 64, { parameters: thin });
      },
      request: createRequest("adopt-src", 64, {
        parameters: thin,
        volumeContentSource: fromVolume(lvNameFor("adopt-src-origin")),
      }),
      code: status.ALREADY_EXISTS,
      message: /exists with no content source; this request asks for volume adopt-src-origin-/,
    },
    {
      name: "same name, another content source: ALREADY_EXISTS",
      before: async () => {
        await create("adopt-src2-a", 64, { parameters: thin });
        await create("adopt-src2-b", 64, { parameters: thin });
        await create("adopt-src2", undefined, {
          parameters: thin,
          volumeContentSource: fromVolume(lvNameFor("adopt-src2-a")),
        });
      },
      request: createRequest("adopt-src2", undefined, {
        parameters: thin,
        volumeContentSource: fromVolume(lvNameFor("adopt-src2-b")),
      }),
      code: status.ALREADY_EXISTS,
      message: /exists with volume adopt-src2-a-\w+; this request asks for volume adopt-src2-b-/,
    },
    {
      name: "same name, same content source: the same clone",
      before: async () => {
        await create("adopt-src3-a", 64, { parameters: thin });
        await create("adopt-src3", undefined, {
          parameters: thin,
          volumeContentSource: fromVolume(lvNameFor("adopt-src3-a")),
        });
      },
      request: createRequest("adopt-src3", undefined, {
        parameters: thin,
        volumeContentSource: fromVolume(lvNameFor("adopt-src3-a")),
      }),
      reply: (r) => {
        assert.equal(r.volume?.volumeId, lvNameFor("adopt-src3"));
        assert.equal(r.volume?.contentSource?.type.case, "volume");
      },
    },
    {
      name: "an LV of that name that loam did not make: FAILED_PRECONDITION, untouched",
      before: () => csi.lvm.createLv({ vg: VG, name: lvNameFor("foreign"), sizeBytes: 8 * MiB, tags: [] }),
      request: createRequest("foreign", 8),
      code: status.FAILED_PRECONDITION,
      message: /exists but was not created by loam for "foreign"; refusing to touch it/,
    },
  ];
  for (const row of rows) test(row.name, () => checkRow(csi.client, Controller, "createVolume", row));
});

describe("CreateVolume: size with a snapshot or volume source", () => {
  ownServer();
  const source = lvNameFor("size-src");
  const snap = snapshotLvNameFor("size-snap");
  const thick = lvNameFor("size-thick");
  before(async () => {
    await create("size-src", 64, { parameters: thin });
    csi.lvm.write(VG, source, "source blocks", 16 * MiB);
    await snapshot("size-snap", source);
    await create("size-thick", 64);
    csi.lvm.write(VG, thick, "thick blocks");
  });
  const rows: Array<Row<typeof Controller, "createVolume"> & { content?: string }> = [
    {
      name: "restore, no range: the snapshot's size",
      request: createRequest("r-none", undefined, { parameters: thin, volumeContentSource: fromSnapshot(snap) }),
      reply: size(64),
      content: "source blocks",
    },
    {
      name: "restore, required below the source: the source's size",
      request: createRequest("r-smaller", 8, { parameters: thin, volumeContentSource: fromSnapshot(snap) }),
      reply: size(64),
    },
    {
      name: "restore, required above the source: the larger size",
      request: createRequest("r-larger", 100, { parameters: thin, volumeContentSource: fromSnapshot(snap) }),
      reply: size(100),
      content: "source blocks",
    },
    {
      name: "restore, limit equal to the source: the source's size",
      request: createRequest("r-limit-eq", undefined, {
        parameters: thin,
        volumeContentSource: fromSnapshot(snap),
        capacityRange: range(0, 64),
      }),
      reply: size(64),
    },
    {
      name: "restore, limit below the source: OUT_OF_RANGE",
      request: createRequest("r-limit-low", undefined, {
        parameters: thin,
        volumeContentSource: fromSnapshot(snap),
        capacityRange: range(0, 32),
      }),
      code: status.OUT_OF_RANGE,
      message:
        /limit_bytes \(33554432\) is smaller than the source's 67108864 bytes; a clone or restore is at least as large as its source/,
    },
    {
      name: "restore, required above the limit: OUT_OF_RANGE",
      request: createRequest("r-inverted", undefined, {
        parameters: thin,
        volumeContentSource: fromSnapshot(snap),
        capacityRange: range(200, 100),
      }),
      code: status.OUT_OF_RANGE,
      message: /required_bytes \(209715200\) is larger than capacity_range.limit_bytes \(104857600\)/,
    },
    {
      name: "restore into a thick class: a block copy of the snapshot's size",
      request: createRequest("r-thick", undefined, { volumeContentSource: fromSnapshot(snap) }),
      reply: size(64),
      content: "source blocks",
    },
    {
      name: "clone a thick volume, no range: its size",
      request: createRequest("c-thick", undefined, { volumeContentSource: fromVolume(thick) }),
      reply: size(64),
      content: "thick blocks",
    },
    {
      name: "clone a thick volume, larger: the larger size",
      request: createRequest("c-thick-large", 96, { volumeContentSource: fromVolume(thick) }),
      reply: size(96),
      content: "thick blocks",
    },
    {
      name: "clone a thick volume, limit below it: OUT_OF_RANGE",
      request: createRequest("c-thick-low", undefined, {
        volumeContentSource: fromVolume(thick),
        capacityRange: range(0, 60),
      }),
      code: status.OUT_OF_RANGE,
      message: /smaller than the source's 67108864 bytes/,
    },
    {
      name: "clone a thin volume into its pool: a thin snapshot of its size",
      request: createRequest("c-thin", undefined, { parameters: thin, volumeContentSource: fromVolume(source) }),
      reply: size(64),
      content: "source blocks",
    },
    {
      name: "clone of a volume that does not exist: NOT_FOUND",
      request: createRequest("c-missing", undefined, { volumeContentSource: fromVolume("nosuch-0123456789abcdef") }),
      code: status.NOT_FOUND,
      message: /volume nosuch-0123456789abcdef \(volume_content_source\) does not exist on this node/,
    },
    {
      name: "restore of a snapshot that does not exist: NOT_FOUND",
      request: createRequest("r-missing", undefined, { volumeContentSource: fromSnapshot("snap-nosuch") }),
      code: status.NOT_FOUND,
      message: /snapshot snap-nosuch \(volume_content_source\) does not exist/,
    },
    {
      name: "a volume id given as a snapshot source: NOT_FOUND",
      request: createRequest("r-kind", undefined, { volumeContentSource: fromSnapshot(thick) }),
      code: status.NOT_FOUND,
      message: /snapshot size-thick-\w+ \(volume_content_source\) does not exist/,
    },
    {
      name: "restore with an empty snapshot id: INVALID_ARGUMENT",
      request: createRequest("r-empty", undefined, { volumeContentSource: fromSnapshot("") }),
      code: status.INVALID_ARGUMENT,
      message: /volume_content_source.snapshot.snapshot_id is required/,
    },
    {
      name: "clone with an empty volume id: INVALID_ARGUMENT",
      request: createRequest("c-empty", undefined, { volumeContentSource: fromVolume("") }),
      code: status.INVALID_ARGUMENT,
      message: /volume_content_source.volume.volume_id is required/,
    },
  ];
  for (const row of rows) {
    test(row.name, async () => {
      await checkRow(csi.client, Controller, "createVolume", row);
      if (row.content !== undefined)
        assert.equal(csi.lvm.contentOf(VG, lvNameFor(row.request.name ?? "")), row.content);
    });
  }
  test("a restored thin volume larger than its snapshot is a thin snapshot grown afterwards; a same-size one needs nothing more", () => {
    const made = csi.lvm.callsOf("createThinSnapshot").map((c) => (c.args[0] as { name: string }).name);
    assert.ok(made.includes(lvNameFor("r-larger")) && made.includes(lvNameFor("r-none")));
    const grown = csi.lvm.callsOf("extendLv").map((c) => c.args[1]);
    assert.ok(grown.includes(lvNameFor("r-larger")));
    assert.ok(!grown.includes(lvNameFor("r-none")));
    assert.equal(csi.lvm.lv(VG, lvNameFor("r-larger"))?.origin, snap);
  });
});

describe("Controller: required fields and request checks (INVALID_ARGUMENT names the field)", () => {
  ownServer();
  const created = lvNameFor("fields-volume");
  before(() => create("fields-volume", 8));
  const createRows: Array<Row<typeof Controller, "createVolume">> = [
    {
      name: "CreateVolume without name",
      request: createRequest("", 8),
      code: status.INVALID_ARGUMENT,
      message: /^name is required$/,
    },
    {
      name: "CreateVolume with a 129-character name",
      request: createRequest("n".repeat(129), 8),
      code: status.INVALID_ARGUMENT,
      message: /name is 129 characters long; at most 128 are allowed/,
    },
    {
      name: "CreateVolume with a name loam does not accept",
      request: createRequest("bad/name", 8),
      code: status.INVALID_ARGUMENT,
      message: /name "bad\/name" has characters loam does not accept/,
    },
    {
      name: "CreateVolume without volume_capabilities",
      request: createRequest("f1", 8, { volumeCapabilities: [] }),
      code: status.INVALID_ARGUMENT,
      message: /volume_capabilities is required \(at least one capability\)/,
    },
    {
      name: "CreateVolume with a capability without access_type",
      request: createRequest("f2", 8, { volumeCapabilities: [{ accessMode: { mode: Mode.SINGLE_NODE_WRITER } }] }),
      code: status.INVALID_ARGUMENT,
      message: /volume_capabilities\[0\].access_type is required: set either mount or block/,
    },
    {
      name: "CreateVolume with a capability without access_mode",
      request: createRequest("f3", 8, { volumeCapabilities: [{ accessType: mount().accessType }] }),
      code: status.INVALID_ARGUMENT,
      message: /volume_capabilities\[0\].access_mode UNKNOWN is not supported \(an access mode is required\)/,
    },
    {
      name: "CreateVolume with block and mount capabilities together",
      request: createRequest("f-mixed", 8, { volumeCapabilities: [mount(), block()] }),
      code: status.INVALID_ARGUMENT,
      message:
        /^volume_capabilities\[1\] asks for block access and volume_capabilities\[0\] for mount access; a volume is either a raw block device or a filesystem: ask for one of them$/,
    },
    {
      name: "CreateVolume with a multi-node access mode",
      request: createRequest("f4", 8, { volumeCapabilities: [mount("xfs", Mode.MULTI_NODE_MULTI_WRITER)] }),
      code: status.INVALID_ARGUMENT,
      message:
        /access_mode MULTI_NODE_MULTI_WRITER is not supported \(a local LVM volume can only be reached from the node that holds it\)/,
    },
    {
      name: "CreateVolume with an unsupported fs_type",
      request: createRequest("f5", 8, { volumeCapabilities: [mount("ntfs")] }),
      code: status.INVALID_ARGUMENT,
      message: /volume_capabilities\[0\].mount.fs_type "ntfs" is not supported; allowed: /,
    },
    {
      name: "CreateVolume with a refused mount flag",
      request: createRequest("f6", 8, {
        volumeCapabilities: [mount("xfs", Mode.SINGLE_NODE_WRITER, { mountFlags: ["suid"] })],
      }),
      code: status.INVALID_ARGUMENT,
      message: /volume_capabilities\[0\].mount.mount_flags contains "suid"/,
    },
    {
      name: "CreateVolume with a non-numeric volume_mount_group",
      request: createRequest("f7", 8, {
        volumeCapabilities: [mount("xfs", Mode.SINGLE_NODE_WRITER, { volumeMountGroup: "wheel" })],
      }),
      code: status.INVALID_ARGUMENT,
      message: /mount.volume_mount_group "wheel" must be a numeric group id/,
    },
    {
      name: "CreateVolume with mutable_parameters",
      request: createRequest("f8", 8, { mutableParameters: { a: "b" } }),
      code: status.INVALID_ARGUMENT,
      message: /mutable_parameters are not supported/,
    },
    {
      name: "CreateVolume with a negative required_bytes",
      request: createRequest("f9", undefined, { capacityRange: { requiredBytes: -1n, limitBytes: 0n } }),
      code: status.INVALID_ARGUMENT,
      message: /capacity_range.required_bytes must not be negative \(got -1\)/,
    },
    {
      name: "CreateVolume with a negative limit_bytes",
      request: createRequest("f10", undefined, { capacityRange: { requiredBytes: 0n, limitBytes: -5n } }),
      code: status.INVALID_ARGUMENT,
      message: /capacity_range.limit_bytes must not be negative/,
    },
    {
      name: "CreateVolume with required above limit",
      request: createRequest("f11", undefined, { capacityRange: range(64, 32) }),
      code: status.OUT_OF_RANGE,
      message: /required_bytes \(67108864\) is larger than capacity_range.limit_bytes \(33554432\)/,
    },
    {
      name: "CreateVolume with no whole extent in range",
      request: createRequest("f12", undefined, {
        capacityRange: { requiredBytes: bytes(5 * MiB), limitBytes: bytes(7 * MiB) },
      }),
      code: status.OUT_OF_RANGE,
      message: /no size in \[required_bytes=5242880, limit_bytes=7340032\] is a multiple of the extent size 4194304/,
    },
    {
      name: "CreateVolume above the largest volume",
      request: createRequest("f13", undefined, { capacityRange: { requiredBytes: 2n ** 60n, limitBytes: 0n } }),
      code: status.OUT_OF_RANGE,
      message: /the largest volume loam creates is/,
    },
    {
      name: "CreateVolume larger than the volume group: RESOURCE_EXHAUSTED",
      request: createRequest("f14", 4096),
      code: status.RESOURCE_EXHAUSTED,
      message: /not enough space in volume group loamfx for device class "thick": requested 4294967296 bytes/,
    },
    {
      name: "CreateVolume for another node's topology: RESOURCE_EXHAUSTED",
      request: createRequest("f15", 8, {
        accessibilityRequirements: { requisite: [{ segments: { [TOPOLOGY_KEY]: "other-node" } }], preferred: [] },
      }),
      code: status.RESOURCE_EXHAUSTED,
      message:
        /this node \(topology.loam.csi.dev\/node=fast-node\) is not in the requested topology \{topology.loam.csi.dev\/node=other-node\}/,
    },
    {
      name: "CreateVolume preferring this node: made",
      request: createRequest("f16", 8, {
        accessibilityRequirements: { requisite: [], preferred: [{ segments: { [TOPOLOGY_KEY]: NODE_ID } }] },
      }),
      reply: (r) =>
        assert.deepEqual(
          r.volume?.accessibleTopology.map((t) => t.segments),
          [{ [TOPOLOGY_KEY]: NODE_ID }],
        ),
    },
    {
      name: "CreateVolume of a block volume",
      request: createRequest("f17", 8, { volumeCapabilities: [block()] }),
      reply: size(8),
    },
    { name: "CreateVolume without a size: 1 GiB", request: createRequest("f18"), reply: size(1024) },
    {
      name: "CreateVolume with only a limit: the default size under it",
      request: createRequest("f19", undefined, { capacityRange: { requiredBytes: 0n, limitBytes: bytes(100 * MiB) } }),
      reply: size(100),
    },
  ];
  for (const row of createRows) test(row.name, () => checkRow(csi.client, Controller, "createVolume", row));

  const others: Array<[string, () => Promise<unknown>, status, RegExp]> = [
    [
      "DeleteVolume without volume_id",
      () => call("deleteVolume", { volumeId: "" }),
      status.INVALID_ARGUMENT,
      /^volume_id is required$/,
    ],
    [
      "ControllerGetVolume without volume_id",
      () => call("controllerGetVolume", { volumeId: "" }),
      status.INVALID_ARGUMENT,
      /^volume_id is required$/,
    ],
    [
      "ControllerGetVolume of an unknown id",
      () => call("controllerGetVolume", { volumeId: "nosuch" }),
      status.NOT_FOUND,
      /volume nosuch does not exist on this node/,
    ],
    [
      "ValidateVolumeCapabilities without volume_id",
      () => call("validateVolumeCapabilities", { volumeId: "", volumeCapabilities: [mount()] }),
      status.INVALID_ARGUMENT,
      /^volume_id is required$/,
    ],
    [
      "ValidateVolumeCapabilities without volume_capabilities",
      () => call("validateVolumeCapabilities", { volumeId: created, volumeCapabilities: [] }),
      status.INVALID_ARGUMENT,
      /^volume_capabilities is required$/,
    ],
    [
      "ValidateVolumeCapabilities of an unknown id",
      () => call("validateVolumeCapabilities", { volumeId: "nosuch", volumeCapabilities: [mount()] }),
      status.NOT_FOUND,
      /volume nosuch does not exist/,
    ],
    [
      "CreateSnapshot without name",
      () => call("createSnapshot", { name: "", sourceVolumeId: created }),
      status.INVALID_ARGUMENT,
      /^name is required$/,
    ],
    [
      "CreateSnapshot without source_volume_id",
      () => call("createSnapshot", { name: "s", sourceVolumeId: "" }),
      status.INVALID_ARGUMENT,
      /^source_volume_id is required$/,
    ],
    [
      "CreateSnapshot with an unknown parameter",
      () => call("createSnapshot", { name: "s", sourceVolumeId: created, parameters: { x: "y" } }),
      status.INVALID_ARGUMENT,
      /parameters has unknown key "x"; loam's snapshots take no parameters/,
    ],
    [
      "CreateSnapshot of an unknown volume",
      () => call("createSnapshot", { name: "s", sourceVolumeId: "nosuch" }),
      status.NOT_FOUND,
      /source volume nosuch does not exist on this node/,
    ],
    [
      "CreateSnapshot of a thick volume",
      () => call("createSnapshot", { name: "s", sourceVolumeId: created }),
      status.FAILED_PRECONDITION,
      /is a thick linear volume \(device class "thick"\); snapshots need a thin device class/,
    ],
    [
      "DeleteSnapshot without snapshot_id",
      () => call("deleteSnapshot", { snapshotId: "" }),
      status.INVALID_ARGUMENT,
      /^snapshot_id is required$/,
    ],
    [
      "GetSnapshot without snapshot_id",
      () => call("getSnapshot", { snapshotId: "" }),
      status.INVALID_ARGUMENT,
      /^snapshot_id is required$/,
    ],
    [
      "GetSnapshot of an unknown id",
      () => call("getSnapshot", { snapshotId: "snap-nosuch" }),
      status.NOT_FOUND,
      /snapshot snap-nosuch does not exist on this node/,
    ],
    [
      "ListVolumes with a negative max_entries",
      () => call("listVolumes", { maxEntries: -1 }),
      status.INVALID_ARGUMENT,
      /max_entries must not be negative \(got -1\)/,
    ],
    [
      "ListVolumes with a token loam did not issue",
      () => call("listVolumes", { startingToken: "abc" }),
      status.ABORTED,
      /starting_token was not issued by this driver/,
    ],
    [
      "ListSnapshots with a negative max_entries",
      () => call("listSnapshots", { maxEntries: -2 }),
      status.INVALID_ARGUMENT,
      /max_entries must not be negative \(got -2\)/,
    ],
    [
      "ListSnapshots with a token loam did not issue",
      () => call("listSnapshots", { startingToken: "x.y" }),
      status.ABORTED,
      /starting_token was not issued/,
    ],
    [
      "ControllerExpandVolume is not offered",
      () => call("controllerExpandVolume", { volumeId: created }),
      status.UNIMPLEMENTED,
      /Controller.ControllerExpandVolume is not implemented by loam/,
    ],
    [
      "ControllerPublishVolume is not offered",
      () => call("controllerPublishVolume", { volumeId: created, nodeId: NODE_ID }),
      status.UNIMPLEMENTED,
      /ControllerPublishVolume is not implemented/,
    ],
    [
      "GetCapacity with an unsupported capability",
      () => call("getCapacity", { volumeCapabilities: [mount("xfs", Mode.MULTI_NODE_READER_ONLY)] }),
      status.INVALID_ARGUMENT,
      /volume_capabilities\[0\].access_mode MULTI_NODE_READER_ONLY is not supported/,
    ],
  ];
  for (const [name, run, code, message] of others) {
    test(name, async () => {
      await assert.rejects(run(), (error: { code?: number; details?: string }) => {
        assert.equal(status[error.code ?? -1], status[code], error.details);
        assert.match(error.details ?? "", message);
        return true;
      });
    });
  }

  test("DeleteVolume of an unknown or invalid id, and of a snapshot's id, succeeds and removes nothing", async () => {
    const before = csi.lvm.callsOf("removeLv").length;
    await call("deleteVolume", { volumeId: "nosuch-volume" });
    await call("deleteVolume", { volumeId: "../../etc" });
    assert.equal(csi.lvm.callsOf("removeLv").length, before);
  });

  test("ValidateVolumeCapabilities confirms what loam supports and explains what it does not", async () => {
    const ok = await call("validateVolumeCapabilities", {
      volumeId: created,
      volumeCapabilities: [mount()],
      parameters: {},
    });
    assert.equal(ok.confirmed?.volumeCapabilities.length, 1);
    const no = await call("validateVolumeCapabilities", {
      volumeId: created,
      volumeCapabilities: [mount("xfs", Mode.MULTI_NODE_MULTI_WRITER)],
    });
    assert.equal(no.confirmed, undefined);
    assert.match(no.message, /MULTI_NODE_MULTI_WRITER is not supported/);
    const badParameter = await call("validateVolumeCapabilities", {
      volumeId: created,
      volumeCapabilities: [mount()],
      parameters: { nope: "1" },
    });
    assert.equal(badParameter.confirmed, undefined);
    assert.match(badParameter.message, /unknown key "nope"/);
    const mixed = await call("validateVolumeCapabilities", {
      volumeId: created,
      volumeCapabilities: [block(), mount()],
    });
    assert.equal(mixed.confirmed, undefined);
    assert.match(
      mixed.message,
      /volume_capabilities\[0\] asks for block access and volume_capabilities\[1\] for mount/,
    );
  });

  test("ControllerGetVolume: topology, size and the volume's condition", async () => {
    const reply = await call("controllerGetVolume", { volumeId: created });
    assert.equal(reply.volume?.capacityBytes, bytes(8 * MiB));
    assert.deepEqual(reply.volume?.accessibleTopology[0]?.segments, { [TOPOLOGY_KEY]: NODE_ID });
    assert.deepEqual(
      [reply.status?.volumeCondition?.abnormal, reply.status?.volumeCondition?.message],
      [
        false,
        "logical volume is active; not formatted yet (new, or a format did not finish): the next NodeStageVolume formats it",
      ],
    );
    await csi.lvm.deactivateLv(VG, created);
    const inactive = await call("controllerGetVolume", { volumeId: created });
    assert.equal(inactive.status?.volumeCondition?.abnormal, true);
    assert.match(
      inactive.status?.volumeCondition?.message ?? "",
      /logical volume loamfx\/fields-volume-\w+ is not active/,
    );
    await csi.lvm.activateLv(VG, created);
  });
});

describe("StorageClass parameters: every key's bad values, in CreateVolume and GetCapacity", () => {
  ownServer();
  const rows: Array<[string, Record<string, string>, RegExp]> = [
    [
      "an unknown key",
      { fsType: "xfs" },
      /parameters has unknown key "fsType"; allowed keys: loam.csi.dev\/deviceClass, .*and Kubernetes' own csi.storage.k8s.io\/\* keys, which loam ignores$/,
    ],
    [
      "a loam key without its prefix",
      { stripes: "2" },
      /unknown key "stripes" \(did you mean "loam.csi.dev\/stripes"\?\)/,
    ],
    [
      "deviceClass: not a name",
      { [CLASS]: "Fast_SSD" },
      /parameters\["loam.csi.dev\/deviceClass"\] "Fast_SSD" is not allowed; allowed: the name of a device class/,
    ],
    ["deviceClass: empty", { [CLASS]: "" }, /parameters\["loam.csi.dev\/deviceClass"\] "" is not allowed/],
    [
      "deviceClass: not on this node",
      { [CLASS]: "nvme" },
      /"nvme" is not a device class of this node; allowed: thick, thin/,
    ],
    [
      "stripes: zero",
      { "loam.csi.dev/stripes": "0" },
      /parameters\["loam.csi.dev\/stripes"\] "0" is not allowed; allowed: 1 to 128/,
    ],
    ["stripes: above 128", { "loam.csi.dev/stripes": "129" }, /"129" is not allowed; allowed: 1 to 128/],
    ["stripes: not a number", { "loam.csi.dev/stripes": "two" }, /"two" is not allowed/],
    ["stripes: a fraction", { "loam.csi.dev/stripes": "1.5" }, /"1.5" is not allowed/],
    ["stripes: negative", { "loam.csi.dev/stripes": "-1" }, /"-1" is not allowed/],
    [
      "stripes: more than the PVs",
      { "loam.csi.dev/stripes": "3" },
      /parameters\["loam.csi.dev\/stripes"\] asks for 3 stripes but device class "thick" \(volume group loamfx\) has 2 physical volumes; allowed: 1 to 2/,
    ],
    [
      "stripes: on a thin class",
      { [CLASS]: "thin", "loam.csi.dev/stripes": "2" },
      /parameters\["loam.csi.dev\/stripes"\] does not apply to thin device class "thin" \(volume group loamfx\)/,
    ],
    [
      "stripeSize: not a power of two",
      { "loam.csi.dev/stripes": "2", "loam.csi.dev/stripeSize": "100Ki" },
      /parameters\["loam.csi.dev\/stripeSize"\] "100Ki" is not allowed; allowed: a power of two from 4Ki to 1Gi/,
    ],
    [
      "stripeSize: below 4Ki",
      { "loam.csi.dev/stripes": "2", "loam.csi.dev/stripeSize": "2Ki" },
      /"2Ki" is not allowed/,
    ],
    [
      "stripeSize: above 1Gi",
      { "loam.csi.dev/stripes": "2", "loam.csi.dev/stripeSize": "2Gi" },
      /"2Gi" is not allowed/,
    ],
    [
      "stripeSize: not a size",
      { "loam.csi.dev/stripes": "2", "loam.csi.dev/stripeSize": "big" },
      /"big" is not allowed/,
    ],
    [
      "stripeSize: above the extent size",
      { "loam.csi.dev/stripes": "2", "loam.csi.dev/stripeSize": "8Mi" },
      /\(8388608 bytes, or the default of device class "thick"\) is larger than the extent size 4194304 of volume group loamfx; allowed: 4096 to 4194304/,
    ],
    [
      "stripeSize: without stripes",
      { "loam.csi.dev/stripeSize": "64Ki" },
      /parameters\["loam.csi.dev\/stripeSize"\] needs at least 2 stripes; device class "thick" \(volume group loamfx\) gives this volume 1/,
    ],
    [
      "stripeSize: on a thin class",
      { [CLASS]: "thin", "loam.csi.dev/stripeSize": "64Ki" },
      /stripeSize"\] does not apply to thin device class/,
    ],
    [
      "mirrors: above 9",
      { "loam.csi.dev/mirrors": "10" },
      /parameters\["loam.csi.dev\/mirrors"\] "10" is not allowed; allowed: 0 to 9/,
    ],
    ["mirrors: not a number", { "loam.csi.dev/mirrors": "one" }, /"one" is not allowed/],
    [
      "mirrors: more copies than PVs",
      { "loam.csi.dev/mirrors": "2" },
      /asks for 2 mirrors \(3 copies\) but device class "thick" \(volume group loamfx\) has 2 physical volumes; allowed: 0 to 1/,
    ],
    [
      "mirrors: with stripes",
      { "loam.csi.dev/mirrors": "1", "loam.csi.dev/stripes": "2" },
      /loam offers striped or raid1 volumes, not both \(raid10\)/,
    ],
    [
      "mirrors: on a thin class",
      { [CLASS]: "thin", "loam.csi.dev/mirrors": "1" },
      /mirrors"\] does not apply to thin device class/,
    ],
    [
      "pvc/name: not a Kubernetes name",
      { "csi.storage.k8s.io/pvc/name": "Data Volume" },
      /parameters\["csi.storage.k8s.io\/pvc\/name"\] "Data Volume" is not a Kubernetes object name/,
    ],
    [
      "pvc/namespace: not a Kubernetes name",
      { "csi.storage.k8s.io/pvc/namespace": "-ns" },
      /"-ns" is not a Kubernetes namespace name/,
    ],
    [
      "pv/name: too long",
      { "csi.storage.k8s.io/pv/name": "p".repeat(254) },
      /csi.storage.k8s.io\/pv\/name"\] "p{64}…\(254 chars\)" is not a Kubernetes object name/,
    ],
  ];
  for (const [name, parameters, message] of rows) {
    test(`CreateVolume: ${name}`, () =>
      checkRow(csi.client, Controller, "createVolume", {
        name,
        request: createRequest(`param-${name.replace(/[^a-z0-9]+/gi, "-")}`, 8, { parameters }),
        code: status.INVALID_ARGUMENT,
        message,
      }));
    test(`GetCapacity: ${name}`, () =>
      checkRow(csi.client, Controller, "getCapacity", {
        name,
        request: { parameters },
        code: status.INVALID_ARGUMENT,
        message,
      }));
  }
  const good: Array<[string, Record<string, string>, number]> = [
    [
      "thin with the harmless stripes 1 and mirrors 0",
      { [CLASS]: "thin", "loam.csi.dev/stripes": "1", "loam.csi.dev/mirrors": "0" },
      8,
    ],
    ["striped with a stripe size", { "loam.csi.dev/stripes": "2", "loam.csi.dev/stripeSize": "64Ki" }, 8],
    ["raid1", { "loam.csi.dev/mirrors": "1" }, 8],
    [
      "Kubernetes' own keys, ignored",
      {
        "csi.storage.k8s.io/fstype": "xfs",
        "csi.storage.k8s.io/provisioner-secret-name": "s",
        csiProvisionerSecretName: "s",
      },
      8,
    ],
    [
      "claim metadata",
      {
        "csi.storage.k8s.io/pvc/name": "data",
        "csi.storage.k8s.io/pvc/namespace": "default",
        "csi.storage.k8s.io/pv/name": "pvc-1",
      },
      8,
    ],
  ];
  for (const [name, parameters, mib] of good) {
    test(`CreateVolume accepts ${name}`, () =>
      checkRow(csi.client, Controller, "createVolume", {
        name,
        request: createRequest(`good-${name.replace(/[^a-z0-9]+/gi, "-")}`, mib, { parameters }),
        reply: size(mib),
      }));
  }
  test("striped and raid1 volumes get LVM's layout", () => {
    assert.deepEqual(
      [
        csi.lvm.lv(VG, lvNameFor("good-striped-with-a-stripe-size"))?.segType,
        csi.lvm.lv(VG, lvNameFor("good-striped-with-a-stripe-size"))?.stripeSizeBytes,
      ],
      ["striped", 64 * 1024],
    );
    assert.equal(csi.lvm.lv(VG, lvNameFor("good-raid1"))?.segType, "raid1");
  });
});

describe("Snapshots: create, adopt, list, delete", () => {
  ownServer();
  const source = lvNameFor("snap-source");
  const other = lvNameFor("snap-other");
  before(async () => {
    await create("snap-source", 16, { parameters: thin });
    await create("snap-other", 16, { parameters: thin });
  });
  const rows: Array<Row<typeof Controller, "createSnapshot">> = [
    {
      name: "a snapshot of a thin volume: ready at once, the source's size",
      request: { name: "s-1", sourceVolumeId: source },
      reply: (r) =>
        assert.deepEqual(
          [r.snapshot?.snapshotId, r.snapshot?.sourceVolumeId, r.snapshot?.sizeBytes, r.snapshot?.readyToUse],
          [snapshotLvNameFor("s-1"), source, bytes(16 * MiB), true],
        ),
    },
    {
      name: "the same name and source again: the same snapshot",
      request: { name: "s-1", sourceVolumeId: source },
      reply: (r) => assert.equal(r.snapshot?.snapshotId, snapshotLvNameFor("s-1")),
    },
    {
      name: "the same name, another source: ALREADY_EXISTS",
      request: { name: "s-1", sourceVolumeId: other },
      code: status.ALREADY_EXISTS,
      message: /snapshot "s-1" exists with source volume snap-source-\w+; this request names snap-other-/,
    },
    {
      name: "snapshot metadata parameters are accepted",
      request: {
        name: "s-2",
        sourceVolumeId: other,
        parameters: {
          "csi.storage.k8s.io/volumesnapshot/name": "x",
          "csi.storage.k8s.io/volumesnapshot/namespace": "ns",
          "csi.storage.k8s.io/volumesnapshotcontent/name": "c",
        },
      },
      reply: (r) => assert.equal(r.snapshot?.sourceVolumeId, other),
    },
    {
      name: "a snapshot name equal to a volume's name is its own namespace",
      request: { name: "snap-source", sourceVolumeId: source },
      reply: (r) => assert.equal(r.snapshot?.snapshotId, snapshotLvNameFor("snap-source")),
    },
    {
      name: "a snapshot of a snapshot's id: NOT_FOUND (snapshots are not volumes)",
      request: { name: "s-3", sourceVolumeId: snapshotLvNameFor("s-1") },
      code: status.NOT_FOUND,
      message: /source volume snap-s-1-\w+ does not exist on this node/,
    },
  ];
  for (const row of rows) test(row.name, () => checkRow(csi.client, Controller, "createSnapshot", row));

  test("a snapshot is an inactive thin LV that skips activation, and deleting its source leaves it", async () => {
    const lv = csi.lvm.lv(VG, snapshotLvNameFor("s-2"));
    assert.deepEqual([lv?.segType, lv?.active, lv?.attr.charAt(9), lv?.origin], ["thin", false, "k", other]);
    await call("deleteVolume", { volumeId: other });
    assert.equal(csi.lvm.lv(VG, other), undefined);
    const still = await call("getSnapshot", { snapshotId: snapshotLvNameFor("s-2") });
    assert.equal(still.snapshot?.sourceVolumeId, other);
  });

  test("ListSnapshots filters by snapshot id and by source; an unknown id is an empty list", async () => {
    const all = await call("listSnapshots", {});
    const ids = all.entries.map((e) => e.snapshot?.snapshotId);
    assert.ok(ids.includes(snapshotLvNameFor("s-1")) && ids.includes(snapshotLvNameFor("s-2")));
    const bySource = await call("listSnapshots", { sourceVolumeId: source });
    assert.deepEqual(
      bySource.entries.map((e) => e.snapshot?.snapshotId).sort(),
      [snapshotLvNameFor("s-1"), snapshotLvNameFor("snap-source")].sort(),
    );
    const one = await call("listSnapshots", { snapshotId: snapshotLvNameFor("s-1") });
    assert.equal(one.entries.length, 1);
    assert.deepEqual((await call("listSnapshots", { snapshotId: "snap-nosuch" })).entries, []);
    assert.deepEqual((await call("listSnapshots", { snapshotId: "../bad" })).entries, []);
  });

  test("DeleteSnapshot removes the snapshot only, twice is fine, and a volume id is left alone", async () => {
    await call("deleteSnapshot", { snapshotId: snapshotLvNameFor("s-1") });
    await call("deleteSnapshot", { snapshotId: snapshotLvNameFor("s-1") });
    await call("deleteSnapshot", { snapshotId: source });
    assert.equal(csi.lvm.lv(VG, snapshotLvNameFor("s-1")), undefined);
    assert.ok(csi.lvm.lv(VG, source));
    await assert.rejects(call("getSnapshot", { snapshotId: snapshotLvNameFor("s-1") }), /NOT_FOUND/);
  });
});

describe("ListVolumes and ListSnapshots: paging", () => {
  ownServer();
  before(async () => {
    for (const n of [1, 2, 3, 4, 5]) await create(`page-volume-${n}`, 8);
  });
  test("max_entries pages through every volume once, in id order, with tokens only while more remain", async () => {
    const all = (await call("listVolumes", {})).entries.map((e) => e.volume?.volumeId);
    assert.ok(all.length >= 5);
    assert.deepEqual(all, [...all].sort());
    const seen: Array<string | undefined> = [];
    let token = "";
    let pages = 0;
    do {
      const page = await call("listVolumes", { maxEntries: 2, startingToken: token });
      assert.ok(page.entries.length <= 2);
      seen.push(...page.entries.map((e) => e.volume?.volumeId));
      token = page.nextToken;
      pages++;
    } while (token !== "");
    assert.deepEqual(seen, all);
    assert.equal(pages, Math.ceil(all.length / 2));
    const last = await call("listVolumes", { maxEntries: all.length });
    assert.equal(last.nextToken, "");
  });

  test("a token stays valid after the volume it names is deleted", async () => {
    const first = await call("listVolumes", { maxEntries: 1 });
    const id = first.entries[0]?.volume?.volumeId ?? "";
    await call("deleteVolume", { volumeId: id });
    const next = await call("listVolumes", { maxEntries: 1, startingToken: first.nextToken });
    assert.ok((next.entries[0]?.volume?.volumeId ?? "") > id);
  });

  test("ListSnapshots pages the same way", async () => {
    const source = lvNameFor("page-src");
    await create("page-src", 8, { parameters: thin });
    for (const n of [1, 2, 3]) await snapshot(`page-${n}`, source);
    const page1 = await call("listSnapshots", { sourceVolumeId: source, maxEntries: 2 });
    assert.equal(page1.entries.length, 2);
    assert.notEqual(page1.nextToken, "");
    const page2 = await call("listSnapshots", {
      sourceVolumeId: source,
      maxEntries: 2,
      startingToken: page1.nextToken,
    });
    assert.deepEqual([page2.entries.length, page2.nextToken], [1, ""]);
  });
});

describe("ListVolumes: each entry carries the volume's condition, as ControllerGetVolume does", () => {
  ownServer();
  test("VOLUME_CONDITION is advertised; LIST_VOLUMES_PUBLISHED_NODES is not (no published_node_ids)", async () => {
    const { capabilities } = await call("controllerGetCapabilities", {});
    const rpcs = capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : undefined));
    assert.ok(rpcs.includes(Rpc.VOLUME_CONDITION));
    assert.ok(rpcs.includes(Rpc.LIST_VOLUMES) && rpcs.includes(Rpc.GET_VOLUME));
    assert.ok(!rpcs.includes(Rpc.LIST_VOLUMES_PUBLISHED_NODES));
  });

  test("a healthy volume, a thin volume with its pool's usage, and an interrupted clone (abnormal)", async () => {
    const healthy = (await create("cond-thick", 8)).volume?.volumeId ?? "";
    const thinId = (await create("cond-thin", 8, { parameters: thin })).volume?.volumeId ?? "";
    // A clone whose copy failed keeps its populating mark: its condition is abnormal until a retry completes it.
    csi.lvm.failNext("copyLv", lvmFailure(["dd"], ["dd: error reading '/dev/loamfx/x': Input/output error"], 1));
    await assert.rejects(create("cond-clone", 8, { volumeContentSource: fromVolume(healthy) }));
    const listed = new Map(
      (await call("listVolumes", {})).entries.map((e) => [e.volume?.volumeId ?? "", e.status?.volumeCondition]),
    );
    for (const id of [healthy, thinId, lvNameFor("cond-clone")]) {
      const got = await call("controllerGetVolume", { volumeId: id });
      assert.deepEqual(listed.get(id), got.status?.volumeCondition, `${id}: the same condition in both`);
    }
    assert.equal(listed.get(healthy)?.abnormal, false);
    assert.match(listed.get(thinId)?.message ?? "", /^thin volume is active; pool loamfx\/pool data [\d.]+%, metadata/);
    assert.equal(listed.get(lvNameFor("cond-clone"))?.abnormal, true);
    assert.match(listed.get(lvNameFor("cond-clone"))?.message ?? "", /being populated from its source/);
  });

  test("loam csi list-volumes shows each volume's condition in its CONDITION column", async () => {
    let stdout = "";
    const code = await runCsi(["--endpoint", `unix://${csi.socketPath}`, "list-volumes"], {
      stdout: (t) => (stdout += t),
      stderr: () => undefined,
      env: {},
    });
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`^${lvNameFor("cond-thick")}\\s.*\\sok$`, "m"));
    assert.match(
      stdout,
      new RegExp(`^${lvNameFor("cond-clone")}\\s.*\\sabnormal: being populated from its source`, "m"),
    );
  });
});

describe("GetCapacity by device class and layout", () => {
  ownServer();
  // The fixture VG: PVs of 255 extents; the 128-extent pool, its metadata and spare took 130 from the first.
  const rows: Array<
    [string, RequestOf<typeof Controller, "getCapacity">, { available: number; maximum?: number; minimum?: number }]
  > = [
    ["the default (thick) class: every free extent", {}, { available: 380 * E, maximum: 380 * E, minimum: E }],
    ["thick, named", { parameters: { [CLASS]: "thick" } }, { available: 380 * E, maximum: 380 * E, minimum: E }],
    [
      "thin: the pool's data, under its overcommit ratio",
      { parameters: thin },
      { available: 128 * E, maximum: 128 * E, minimum: E },
    ],
    [
      "striped over 2 PVs: twice the second PV's free extents",
      { parameters: { "loam.csi.dev/stripes": "2" } },
      { available: 250 * E, maximum: 250 * E, minimum: 2 * E },
    ],
    [
      "raid1: the second PV's free extents less one for metadata",
      { parameters: { "loam.csi.dev/mirrors": "1" } },
      { available: 124 * E, maximum: 124 * E, minimum: E },
    ],
    [
      "another node's topology: nothing (and no maximum or minimum)",
      { accessibleTopology: { segments: { [TOPOLOGY_KEY]: "elsewhere" } } },
      { available: 0 },
    ],
    [
      "this node's topology",
      { accessibleTopology: { segments: { [TOPOLOGY_KEY]: NODE_ID } } },
      { available: 380 * E, maximum: 380 * E, minimum: E },
    ],
    [
      "with a supported capability",
      { volumeCapabilities: [block()] },
      { available: 380 * E, maximum: 380 * E, minimum: E },
    ],
  ];
  for (const [name, request, expected] of rows) {
    test(name, async () => {
      const reply = await csi.client.call(Controller, "getCapacity", request);
      assert.deepEqual(
        [reply.availableCapacity, reply.maximumVolumeSize, reply.minimumVolumeSize],
        [
          bytes(expected.available),
          expected.maximum === undefined ? undefined : bytes(expected.maximum),
          expected.minimum === undefined ? undefined : bytes(expected.minimum),
        ],
      );
    });
  }

  test("capacity moves with volumes, writes and pool thresholds", async () => {
    const capacity = async (parameters: Record<string, string> = {}) =>
      (await csi.client.call(Controller, "getCapacity", { parameters })).availableCapacity;
    await csi.client.call(Controller, "createVolume", createRequest("cap-thick", 100));
    assert.equal(await capacity(), bytes(355 * E));
    const made = await csi.client.call(
      Controller,
      "createVolume",
      createRequest("cap-thin", 256, { parameters: thin }),
    );
    assert.equal(await capacity(thin), bytes(128 * E), "a thin volume takes no data until written");
    csi.lvm.write(VG, made.volume?.volumeId ?? "", "data", 100 * MiB);
    assert.equal(await capacity(thin), bytes(103 * E), "used data rounds up to extents");
    csi.lvm.setThinPoolUsage(VG, THIN_POOL, { dataPercent: 91 });
    assert.equal(await capacity(thin), 0n, "above the 90% data threshold");
    await assert.rejects(
      csi.client.call(Controller, "createVolume", createRequest("cap-thin-2", 8, { parameters: thin })),
      /RESOURCE_EXHAUSTED: thin pool loamfx\/pool data usage is 91% \(above the threshold of 90% for device class "thin"\)/,
    );
    csi.lvm.setThinPoolUsage(VG, THIN_POOL, { dataPercent: 10, metadataPercent: 95 });
    assert.equal(await capacity(thin), 0n, "above the 90% metadata threshold");
    csi.lvm.setThinPoolUsage(VG, THIN_POOL, { metadataPercent: 11 });
    await csi.client.call(Controller, "deleteVolume", { volumeId: lvNameFor("cap-thick") });
    assert.equal(await capacity(), bytes(380 * E));
  });
});

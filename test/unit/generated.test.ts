/**
 * The generated CSI types against the wire contract: src/gen is what protoc-gen-es makes from
 * proto/ today, and every message, enum, service, secret and alpha marking has the v1.12 wire
 * shape. About 480 lines because most of it is the expected shape of every message of
 * csi.proto, written out; splitting it would only split that table.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { ScalarType, getOption } from "@bufbuild/protobuf";
import type { DescEnum, DescField, DescMessage } from "@bufbuild/protobuf";

import {
  CapacityRangeSchema,
  Controller,
  CreateVolumeRequestSchema,
  GetCapacityResponseSchema,
  Identity,
  Node,
  NodeStageVolumeRequestSchema,
  ProbeResponseSchema,
  VolumeCapability_AccessMode_Mode,
  alpha_enum,
  alpha_enum_value,
  alpha_field,
  alpha_message,
  alpha_method,
  alpha_service,
  csi_secret,
  file_csi_v1_csi,
} from "../../src/gen/csi/v1/csi_pb.js";

const run = promisify(execFile);

// Compiled into dist/test/unit, run from source in test/unit: walk up to the
// directory that holds package.json rather than trusting the depth.
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) || !existsSync(join(dir, "scripts", "generate"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("repository root (package.json + scripts/generate) not found");
    dir = parent;
  }
  return dir;
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(relative(root, path));
    }
  }
  if (existsSync(root)) await walk(root);
  return out.sort();
}

function allMessages(): DescMessage[] {
  const out: DescMessage[] = [];
  const visit = (m: DescMessage): void => {
    out.push(m);
    m.nestedMessages.forEach(visit);
  };
  file_csi_v1_csi.messages.forEach(visit);
  return out;
}

void test("src/gen matches a fresh generation from proto/ (generated code is not stale)", async () => {
  const root = repoRoot();
  const scratch = await mkdtemp(join(tmpdir(), "loam-gen-"));
  try {
    // The argument re-roots the output: src/gen lands under scratch.
    await run("bash", [join(root, "scripts", "generate"), scratch], { cwd: root, timeout: 60_000 });
    const committedDir = resolve(root, "src/gen");
    const freshDir = resolve(scratch, "src/gen");
    const committed = await listFiles(committedDir);
    const fresh = await listFiles(freshDir);
    assert.ok(fresh.length > 0, "scripts/generate produced no files");
    assert.deepEqual(committed, fresh, "generated code is stale; run npm run generate (file set differs)");
    for (const file of fresh) {
      const [a, b] = await Promise.all([
        readFile(join(committedDir, file), "utf8"),
        readFile(join(freshDir, file), "utf8"),
      ]);
      assert.ok(a === b, `generated code is stale; run npm run generate (${file} differs)`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
});

void test("CreateVolumeRequest carries the spec's field numbers and kinds", () => {
  const numbers = Object.fromEntries(CreateVolumeRequestSchema.fields.map((f) => [f.name, f.number]));
  assert.deepEqual(numbers, {
    name: 1,
    capacity_range: 2,
    volume_capabilities: 3,
    parameters: 4,
    secrets: 5,
    volume_content_source: 6,
    accessibility_requirements: 7,
    mutable_parameters: 8,
  });
  const f = CreateVolumeRequestSchema.field;
  assert.equal(f.secrets.fieldKind, "map");
  assert.equal(f.volumeCapabilities.fieldKind, "list");
  assert.equal(f.capacityRange.message?.typeName, "csi.v1.CapacityRange");
});

void test("capacities are signed 64-bit integers and optional sizes use wrapper messages", () => {
  const required = CapacityRangeSchema.field.requiredBytes;
  assert.equal(required.fieldKind === "scalar" && required.scalar, ScalarType.INT64);
  assert.equal(CapacityRangeSchema.field.limitBytes.number, 2);
  assert.equal(GetCapacityResponseSchema.field.maximumVolumeSize.message?.typeName, "google.protobuf.Int64Value");
  assert.equal(ProbeResponseSchema.field.ready.message?.typeName, "google.protobuf.BoolValue");
});

void test("exactly the spec's secret maps are marked csi_secret, so redaction can rely on the option", () => {
  const marked = allMessages()
    .flatMap((m) => m.fields.filter((f) => getOption(f, csi_secret)).map((f) => `${m.typeName}.${f.name}`))
    .sort();
  assert.deepEqual(marked, [
    "csi.v1.ControllerExpandVolumeRequest.secrets",
    "csi.v1.ControllerModifyVolumeRequest.secrets",
    "csi.v1.ControllerPublishVolumeRequest.secrets",
    "csi.v1.ControllerUnpublishVolumeRequest.secrets",
    "csi.v1.CreateSnapshotRequest.secrets",
    "csi.v1.CreateVolumeGroupSnapshotRequest.secrets",
    "csi.v1.CreateVolumeRequest.secrets",
    "csi.v1.DeleteSnapshotRequest.secrets",
    "csi.v1.DeleteVolumeGroupSnapshotRequest.secrets",
    "csi.v1.DeleteVolumeRequest.secrets",
    "csi.v1.GetMetadataAllocatedRequest.secrets",
    "csi.v1.GetMetadataDeltaRequest.secrets",
    "csi.v1.GetSnapshotRequest.secrets",
    "csi.v1.GetVolumeGroupSnapshotRequest.secrets",
    "csi.v1.ListSnapshotsRequest.secrets",
    "csi.v1.NodeExpandVolumeRequest.secrets",
    "csi.v1.NodePublishVolumeRequest.secrets",
    "csi.v1.NodeStageVolumeRequest.secrets",
    "csi.v1.ValidateVolumeCapabilitiesRequest.secrets",
  ]);
  assert.equal(getOption(NodeStageVolumeRequestSchema.field.secrets, csi_secret), true);
  assert.equal(NodeStageVolumeRequestSchema.field.secrets.number, 5);
});

void test("service and method names give the gRPC paths the sidecars call", () => {
  assert.equal(Identity.typeName, "csi.v1.Identity");
  assert.equal(Controller.typeName, "csi.v1.Controller");
  assert.equal(Node.typeName, "csi.v1.Node");
  assert.equal(Identity.method.getPluginInfo.name, "GetPluginInfo");
  assert.equal(Node.method.nodeStageVolume.name, "NodeStageVolume");
  assert.equal(getOption(Controller.method.getSnapshot, alpha_method), true);
  assert.equal(getOption(Controller.method.createVolume, alpha_method), false);
  assert.equal(VolumeCapability_AccessMode_Mode.SINGLE_NODE_WRITER, 1);
  assert.equal(VolumeCapability_AccessMode_Mode.SINGLE_NODE_MULTI_WRITER, 7);
});

void test("exactly the spec's experimental surface is flagged alpha, so an alpha check can read descriptors", () => {
  const enums: DescEnum[] = [...file_csi_v1_csi.enums, ...allMessages().flatMap((m) => m.nestedEnums)];
  const flagged = [
    ...allMessages().flatMap((m) => [
      ...(getOption(m, alpha_message) ? [`message ${m.typeName}`] : []),
      ...m.fields.filter((f) => getOption(f, alpha_field)).map((f) => `field ${m.typeName}.${f.name}`),
    ]),
    ...enums.flatMap((e) => [
      ...(getOption(e, alpha_enum) ? [`enum ${e.typeName}`] : []),
      ...e.values.filter((v) => getOption(v, alpha_enum_value)).map((v) => `value ${e.typeName}.${v.name}`),
    ]),
    ...file_csi_v1_csi.services.flatMap((s) => [
      ...(getOption(s, alpha_service) ? [`service ${s.typeName}`] : []),
      ...s.methods.filter((m) => getOption(m, alpha_method)).map((m) => `method ${s.typeName}.${m.name}`),
    ]),
  ].sort();
  // Checked against the v1.12.0 descriptor: NodeExpandVolume's secrets are
  // still alpha, and SnapshotMetadata is flagged on the service only, not on
  // its messages or BlockMetadataType.
  assert.deepEqual(flagged, [
    "field csi.v1.GetCapacityResponse.minimum_volume_size",
    "field csi.v1.ListVolumesResponse.VolumeStatus.volume_condition",
    "field csi.v1.NodeExpandVolumeRequest.secrets",
    "field csi.v1.NodeGetVolumeStatsResponse.volume_condition",
    "message csi.v1.ControllerGetVolumeRequest",
    "message csi.v1.ControllerGetVolumeResponse",
    "message csi.v1.GetSnapshotRequest",
    "message csi.v1.GetSnapshotResponse",
    "message csi.v1.VolumeCondition",
    "method csi.v1.Controller.ControllerGetVolume",
    "method csi.v1.Controller.GetSnapshot",
    "service csi.v1.SnapshotMetadata",
    "value csi.v1.ControllerServiceCapability.RPC.Type.GET_SNAPSHOT",
    "value csi.v1.ControllerServiceCapability.RPC.Type.GET_VOLUME",
    "value csi.v1.ControllerServiceCapability.RPC.Type.SINGLE_NODE_MULTI_WRITER",
    "value csi.v1.ControllerServiceCapability.RPC.Type.VOLUME_CONDITION",
    "value csi.v1.NodeServiceCapability.RPC.Type.SINGLE_NODE_MULTI_WRITER",
    "value csi.v1.NodeServiceCapability.RPC.Type.VOLUME_CONDITION",
    "value csi.v1.PluginCapability.Service.Type.SNAPSHOT_METADATA_SERVICE",
    "value csi.v1.VolumeCapability.AccessMode.Mode.SINGLE_NODE_MULTI_WRITER",
    "value csi.v1.VolumeCapability.AccessMode.Mode.SINGLE_NODE_SINGLE_WRITER",
  ]);
});

void test("the option extensions keep the spec's numbers and targets", () => {
  const ext = { alpha_enum, alpha_enum_value, csi_secret, alpha_field, alpha_message, alpha_method, alpha_service };
  const got = Object.fromEntries(Object.entries(ext).map(([name, e]) => [name, `${e.extendee.typeName}:${e.number}`]));
  assert.deepEqual(got, {
    alpha_enum: "google.protobuf.EnumOptions:1060",
    alpha_enum_value: "google.protobuf.EnumValueOptions:1060",
    csi_secret: "google.protobuf.FieldOptions:1059",
    alpha_field: "google.protobuf.FieldOptions:1060",
    alpha_message: "google.protobuf.MessageOptions:1060",
    alpha_method: "google.protobuf.MethodOptions:1060",
    alpha_service: "google.protobuf.ServiceOptions:1060",
  });
});

function kindOf(f: DescField): string {
  const scalar = (s: ScalarType): string => ScalarType[s].toLowerCase();
  switch (f.fieldKind) {
    case "scalar":
      return scalar(f.scalar);
    case "enum":
      return f.enum.typeName;
    case "message":
      return f.message.typeName;
    case "list":
      if (f.listKind === "scalar") return `[]${scalar(f.scalar)}`;
      return `[]${f.listKind === "enum" ? f.enum.typeName : f.message.typeName}`;
    case "map": {
      const value =
        f.mapKind === "scalar" ? scalar(f.scalar) : f.mapKind === "enum" ? f.enum.typeName : f.message.typeName;
      return `map<${scalar(f.mapKey)},${value}>`;
    }
  }
}

// The whole v1.12.0 wire surface, one entry per message, enum and service:
// name=number:type for fields ("[]" repeated, "|x" member of oneof x),
// NAME=number for enum values, Method(input)output for RPCs. Taken from the
// spec's generated descriptor, not from our proto, so a slip in proto/ fails.
const WIRE_SHAPE_V1_12: Record<string, string> = {
  "csi.v1.GetPluginInfoRequest": "",
  "csi.v1.GetPluginInfoResponse": "name=1:string vendor_version=2:string manifest=3:map<string,string>",
  "csi.v1.GetPluginCapabilitiesRequest": "",
  "csi.v1.GetPluginCapabilitiesResponse": "capabilities=1:[]csi.v1.PluginCapability",
  "csi.v1.PluginCapability":
    "service=1:csi.v1.PluginCapability.Service|type " +
    "volume_expansion=2:csi.v1.PluginCapability.VolumeExpansion|type",
  "csi.v1.PluginCapability.Service": "type=1:csi.v1.PluginCapability.Service.Type",
  "csi.v1.PluginCapability.VolumeExpansion": "type=1:csi.v1.PluginCapability.VolumeExpansion.Type",
  "csi.v1.ProbeRequest": "",
  "csi.v1.ProbeResponse": "ready=1:google.protobuf.BoolValue",
  "csi.v1.CreateVolumeRequest":
    "name=1:string capacity_range=2:csi.v1.CapacityRange " +
    "volume_capabilities=3:[]csi.v1.VolumeCapability parameters=4:map<string,string> " +
    "secrets=5:map<string,string> volume_content_source=6:csi.v1.VolumeContentSource " +
    "accessibility_requirements=7:csi.v1.TopologyRequirement " +
    "mutable_parameters=8:map<string,string>",
  "csi.v1.VolumeContentSource":
    "snapshot=1:csi.v1.VolumeContentSource.SnapshotSource|type " +
    "volume=2:csi.v1.VolumeContentSource.VolumeSource|type",
  "csi.v1.VolumeContentSource.SnapshotSource": "snapshot_id=1:string",
  "csi.v1.VolumeContentSource.VolumeSource": "volume_id=1:string",
  "csi.v1.CreateVolumeResponse": "volume=1:csi.v1.Volume",
  "csi.v1.VolumeCapability":
    "block=1:csi.v1.VolumeCapability.BlockVolume|access_type " +
    "mount=2:csi.v1.VolumeCapability.MountVolume|access_type " +
    "access_mode=3:csi.v1.VolumeCapability.AccessMode",
  "csi.v1.VolumeCapability.BlockVolume": "",
  "csi.v1.VolumeCapability.MountVolume": "fs_type=1:string mount_flags=2:[]string volume_mount_group=3:string",
  "csi.v1.VolumeCapability.AccessMode": "mode=1:csi.v1.VolumeCapability.AccessMode.Mode",
  "csi.v1.CapacityRange": "required_bytes=1:int64 limit_bytes=2:int64",
  "csi.v1.Volume":
    "capacity_bytes=1:int64 volume_id=2:string volume_context=3:map<string,string> " +
    "content_source=4:csi.v1.VolumeContentSource accessible_topology=5:[]csi.v1.Topology",
  "csi.v1.TopologyRequirement": "requisite=1:[]csi.v1.Topology preferred=2:[]csi.v1.Topology",
  "csi.v1.Topology": "segments=1:map<string,string>",
  "csi.v1.DeleteVolumeRequest": "volume_id=1:string secrets=2:map<string,string>",
  "csi.v1.DeleteVolumeResponse": "",
  "csi.v1.ControllerPublishVolumeRequest":
    "volume_id=1:string node_id=2:string volume_capability=3:csi.v1.VolumeCapability " +
    "readonly=4:bool secrets=5:map<string,string> volume_context=6:map<string,string>",
  "csi.v1.ControllerPublishVolumeResponse": "publish_context=1:map<string,string>",
  "csi.v1.ControllerUnpublishVolumeRequest": "volume_id=1:string node_id=2:string secrets=3:map<string,string>",
  "csi.v1.ControllerUnpublishVolumeResponse": "",
  "csi.v1.ValidateVolumeCapabilitiesRequest":
    "volume_id=1:string volume_context=2:map<string,string> " +
    "volume_capabilities=3:[]csi.v1.VolumeCapability parameters=4:map<string,string> " +
    "secrets=5:map<string,string> mutable_parameters=6:map<string,string>",
  "csi.v1.ValidateVolumeCapabilitiesResponse":
    "confirmed=1:csi.v1.ValidateVolumeCapabilitiesResponse.Confirmed message=2:string",
  "csi.v1.ValidateVolumeCapabilitiesResponse.Confirmed":
    "volume_context=1:map<string,string> volume_capabilities=2:[]csi.v1.VolumeCapability " +
    "parameters=3:map<string,string> mutable_parameters=4:map<string,string>",
  "csi.v1.ListVolumesRequest": "max_entries=1:int32 starting_token=2:string",
  "csi.v1.ListVolumesResponse": "entries=1:[]csi.v1.ListVolumesResponse.Entry next_token=2:string",
  "csi.v1.ListVolumesResponse.VolumeStatus": "published_node_ids=1:[]string volume_condition=2:csi.v1.VolumeCondition",
  "csi.v1.ListVolumesResponse.Entry": "volume=1:csi.v1.Volume status=2:csi.v1.ListVolumesResponse.VolumeStatus",
  "csi.v1.ControllerGetVolumeRequest": "volume_id=1:string",
  "csi.v1.ControllerGetVolumeResponse":
    "volume=1:csi.v1.Volume status=2:csi.v1.ControllerGetVolumeResponse.VolumeStatus",
  "csi.v1.ControllerGetVolumeResponse.VolumeStatus":
    "published_node_ids=1:[]string volume_condition=2:csi.v1.VolumeCondition",
  "csi.v1.ControllerModifyVolumeRequest":
    "volume_id=1:string secrets=2:map<string,string> " + "mutable_parameters=3:map<string,string>",
  "csi.v1.ControllerModifyVolumeResponse": "",
  "csi.v1.GetCapacityRequest":
    "volume_capabilities=1:[]csi.v1.VolumeCapability parameters=2:map<string,string> " +
    "accessible_topology=3:csi.v1.Topology",
  "csi.v1.GetCapacityResponse":
    "available_capacity=1:int64 maximum_volume_size=2:google.protobuf.Int64Value " +
    "minimum_volume_size=3:google.protobuf.Int64Value",
  "csi.v1.ControllerGetCapabilitiesRequest": "",
  "csi.v1.ControllerGetCapabilitiesResponse": "capabilities=1:[]csi.v1.ControllerServiceCapability",
  "csi.v1.ControllerServiceCapability": "rpc=1:csi.v1.ControllerServiceCapability.RPC|type",
  "csi.v1.ControllerServiceCapability.RPC": "type=1:csi.v1.ControllerServiceCapability.RPC.Type",
  "csi.v1.CreateSnapshotRequest":
    "source_volume_id=1:string name=2:string secrets=3:map<string,string> " + "parameters=4:map<string,string>",
  "csi.v1.CreateSnapshotResponse": "snapshot=1:csi.v1.Snapshot",
  "csi.v1.Snapshot":
    "size_bytes=1:int64 snapshot_id=2:string source_volume_id=3:string " +
    "creation_time=4:google.protobuf.Timestamp ready_to_use=5:bool " +
    "group_snapshot_id=6:string",
  "csi.v1.DeleteSnapshotRequest": "snapshot_id=1:string secrets=2:map<string,string>",
  "csi.v1.DeleteSnapshotResponse": "",
  "csi.v1.ListSnapshotsRequest":
    "max_entries=1:int32 starting_token=2:string source_volume_id=3:string " +
    "snapshot_id=4:string secrets=5:map<string,string>",
  "csi.v1.ListSnapshotsResponse": "entries=1:[]csi.v1.ListSnapshotsResponse.Entry next_token=2:string",
  "csi.v1.ListSnapshotsResponse.Entry": "snapshot=1:csi.v1.Snapshot",
  "csi.v1.GetSnapshotRequest": "snapshot_id=1:string secrets=2:map<string,string>",
  "csi.v1.GetSnapshotResponse": "snapshot=1:csi.v1.Snapshot",
  "csi.v1.ControllerExpandVolumeRequest":
    "volume_id=1:string capacity_range=2:csi.v1.CapacityRange " +
    "secrets=3:map<string,string> volume_capability=4:csi.v1.VolumeCapability",
  "csi.v1.ControllerExpandVolumeResponse": "capacity_bytes=1:int64 node_expansion_required=2:bool",
  "csi.v1.NodeStageVolumeRequest":
    "volume_id=1:string publish_context=2:map<string,string> staging_target_path=3:string " +
    "volume_capability=4:csi.v1.VolumeCapability secrets=5:map<string,string> " +
    "volume_context=6:map<string,string>",
  "csi.v1.NodeStageVolumeResponse": "",
  "csi.v1.NodeUnstageVolumeRequest": "volume_id=1:string staging_target_path=2:string",
  "csi.v1.NodeUnstageVolumeResponse": "",
  "csi.v1.NodePublishVolumeRequest":
    "volume_id=1:string publish_context=2:map<string,string> staging_target_path=3:string " +
    "target_path=4:string volume_capability=5:csi.v1.VolumeCapability readonly=6:bool " +
    "secrets=7:map<string,string> volume_context=8:map<string,string>",
  "csi.v1.NodePublishVolumeResponse": "",
  "csi.v1.NodeUnpublishVolumeRequest": "volume_id=1:string target_path=2:string",
  "csi.v1.NodeUnpublishVolumeResponse": "",
  "csi.v1.NodeGetVolumeStatsRequest": "volume_id=1:string volume_path=2:string staging_target_path=3:string",
  "csi.v1.NodeGetVolumeStatsResponse": "usage=1:[]csi.v1.VolumeUsage volume_condition=2:csi.v1.VolumeCondition",
  "csi.v1.VolumeUsage": "available=1:int64 total=2:int64 used=3:int64 unit=4:csi.v1.VolumeUsage.Unit",
  "csi.v1.VolumeCondition": "abnormal=1:bool message=2:string",
  "csi.v1.NodeGetCapabilitiesRequest": "",
  "csi.v1.NodeGetCapabilitiesResponse": "capabilities=1:[]csi.v1.NodeServiceCapability",
  "csi.v1.NodeServiceCapability": "rpc=1:csi.v1.NodeServiceCapability.RPC|type",
  "csi.v1.NodeServiceCapability.RPC": "type=1:csi.v1.NodeServiceCapability.RPC.Type",
  "csi.v1.NodeGetInfoRequest": "",
  "csi.v1.NodeGetInfoResponse": "node_id=1:string max_volumes_per_node=2:int64 accessible_topology=3:csi.v1.Topology",
  "csi.v1.NodeExpandVolumeRequest":
    "volume_id=1:string volume_path=2:string capacity_range=3:csi.v1.CapacityRange " +
    "staging_target_path=4:string volume_capability=5:csi.v1.VolumeCapability " +
    "secrets=6:map<string,string>",
  "csi.v1.NodeExpandVolumeResponse": "capacity_bytes=1:int64",
  "csi.v1.GroupControllerGetCapabilitiesRequest": "",
  "csi.v1.GroupControllerGetCapabilitiesResponse": "capabilities=1:[]csi.v1.GroupControllerServiceCapability",
  "csi.v1.GroupControllerServiceCapability": "rpc=1:csi.v1.GroupControllerServiceCapability.RPC|type",
  "csi.v1.GroupControllerServiceCapability.RPC": "type=1:csi.v1.GroupControllerServiceCapability.RPC.Type",
  "csi.v1.CreateVolumeGroupSnapshotRequest":
    "name=1:string source_volume_ids=2:[]string secrets=3:map<string,string> " + "parameters=4:map<string,string>",
  "csi.v1.CreateVolumeGroupSnapshotResponse": "group_snapshot=1:csi.v1.VolumeGroupSnapshot",
  "csi.v1.VolumeGroupSnapshot":
    "group_snapshot_id=1:string snapshots=2:[]csi.v1.Snapshot " +
    "creation_time=3:google.protobuf.Timestamp ready_to_use=4:bool",
  "csi.v1.DeleteVolumeGroupSnapshotRequest":
    "group_snapshot_id=1:string snapshot_ids=2:[]string secrets=3:map<string,string>",
  "csi.v1.DeleteVolumeGroupSnapshotResponse": "",
  "csi.v1.GetVolumeGroupSnapshotRequest":
    "group_snapshot_id=1:string snapshot_ids=2:[]string secrets=3:map<string,string>",
  "csi.v1.GetVolumeGroupSnapshotResponse": "group_snapshot=1:csi.v1.VolumeGroupSnapshot",
  "csi.v1.BlockMetadata": "byte_offset=1:int64 size_bytes=2:int64",
  "csi.v1.GetMetadataAllocatedRequest":
    "snapshot_id=1:string starting_offset=2:int64 max_results=3:int32 " + "secrets=4:map<string,string>",
  "csi.v1.GetMetadataAllocatedResponse":
    "block_metadata_type=1:csi.v1.BlockMetadataType volume_capacity_bytes=2:int64 " +
    "block_metadata=3:[]csi.v1.BlockMetadata",
  "csi.v1.GetMetadataDeltaRequest":
    "base_snapshot_id=1:string target_snapshot_id=2:string starting_offset=3:int64 " +
    "max_results=4:int32 secrets=5:map<string,string>",
  "csi.v1.GetMetadataDeltaResponse":
    "block_metadata_type=1:csi.v1.BlockMetadataType volume_capacity_bytes=2:int64 " +
    "block_metadata=3:[]csi.v1.BlockMetadata",
  "csi.v1.BlockMetadataType": "UNKNOWN=0 FIXED_LENGTH=1 VARIABLE_LENGTH=2",
  "csi.v1.PluginCapability.Service.Type":
    "UNKNOWN=0 CONTROLLER_SERVICE=1 VOLUME_ACCESSIBILITY_CONSTRAINTS=2 " +
    "GROUP_CONTROLLER_SERVICE=3 SNAPSHOT_METADATA_SERVICE=4",
  "csi.v1.PluginCapability.VolumeExpansion.Type": "UNKNOWN=0 ONLINE=1 OFFLINE=2",
  "csi.v1.VolumeCapability.AccessMode.Mode":
    "UNKNOWN=0 SINGLE_NODE_WRITER=1 SINGLE_NODE_READER_ONLY=2 MULTI_NODE_READER_ONLY=3 " +
    "MULTI_NODE_SINGLE_WRITER=4 MULTI_NODE_MULTI_WRITER=5 SINGLE_NODE_SINGLE_WRITER=6 " +
    "SINGLE_NODE_MULTI_WRITER=7",
  "csi.v1.ControllerServiceCapability.RPC.Type":
    "UNKNOWN=0 CREATE_DELETE_VOLUME=1 PUBLISH_UNPUBLISH_VOLUME=2 LIST_VOLUMES=3 " +
    "GET_CAPACITY=4 CREATE_DELETE_SNAPSHOT=5 LIST_SNAPSHOTS=6 CLONE_VOLUME=7 " +
    "PUBLISH_READONLY=8 EXPAND_VOLUME=9 LIST_VOLUMES_PUBLISHED_NODES=10 " +
    "VOLUME_CONDITION=11 GET_VOLUME=12 SINGLE_NODE_MULTI_WRITER=13 MODIFY_VOLUME=14 " +
    "GET_SNAPSHOT=15",
  "csi.v1.VolumeUsage.Unit": "UNKNOWN=0 BYTES=1 INODES=2",
  "csi.v1.NodeServiceCapability.RPC.Type":
    "UNKNOWN=0 STAGE_UNSTAGE_VOLUME=1 GET_VOLUME_STATS=2 EXPAND_VOLUME=3 " +
    "VOLUME_CONDITION=4 SINGLE_NODE_MULTI_WRITER=5 VOLUME_MOUNT_GROUP=6",
  "csi.v1.GroupControllerServiceCapability.RPC.Type": "UNKNOWN=0 CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT=1",
  "csi.v1.Identity":
    "GetPluginInfo(csi.v1.GetPluginInfoRequest)csi.v1.GetPluginInfoResponse " +
    "GetPluginCapabilities(csi.v1.GetPluginCapabilitiesRequest)csi.v1.GetPluginCapabilitiesResponse " +
    "Probe(csi.v1.ProbeRequest)csi.v1.ProbeResponse",
  "csi.v1.Controller":
    "CreateVolume(csi.v1.CreateVolumeRequest)csi.v1.CreateVolumeResponse " +
    "DeleteVolume(csi.v1.DeleteVolumeRequest)csi.v1.DeleteVolumeResponse " +
    "ControllerPublishVolume(csi.v1.ControllerPublishVolumeRequest)csi.v1.ControllerPublishVolumeResponse " +
    "ControllerUnpublishVolume(csi.v1.ControllerUnpublishVolumeRequest)csi.v1.ControllerUnpublishVolumeResponse " +
    "ValidateVolumeCapabilities(csi.v1.ValidateVolumeCapabilitiesRequest)csi.v1.ValidateVolumeCapabilitiesResponse " +
    "ListVolumes(csi.v1.ListVolumesRequest)csi.v1.ListVolumesResponse " +
    "GetCapacity(csi.v1.GetCapacityRequest)csi.v1.GetCapacityResponse " +
    "ControllerGetCapabilities(csi.v1.ControllerGetCapabilitiesRequest)csi.v1.ControllerGetCapabilitiesResponse " +
    "CreateSnapshot(csi.v1.CreateSnapshotRequest)csi.v1.CreateSnapshotResponse " +
    "DeleteSnapshot(csi.v1.DeleteSnapshotRequest)csi.v1.DeleteSnapshotResponse " +
    "ListSnapshots(csi.v1.ListSnapshotsRequest)csi.v1.ListSnapshotsResponse " +
    "GetSnapshot(csi.v1.GetSnapshotRequest)csi.v1.GetSnapshotResponse " +
    "ControllerExpandVolume(csi.v1.ControllerExpandVolumeRequest)csi.v1.ControllerExpandVolumeResponse " +
    "ControllerGetVolume(csi.v1.ControllerGetVolumeRequest)csi.v1.ControllerGetVolumeResponse " +
    "ControllerModifyVolume(csi.v1.ControllerModifyVolumeRequest)csi.v1.ControllerModifyVolumeResponse",
  "csi.v1.GroupController":
    "GroupControllerGetCapabilities(csi.v1.GroupControllerGetCapabilitiesRequest)csi.v1.GroupControllerGetCapabilitiesResponse " +
    "CreateVolumeGroupSnapshot(csi.v1.CreateVolumeGroupSnapshotRequest)csi.v1.CreateVolumeGroupSnapshotResponse " +
    "DeleteVolumeGroupSnapshot(csi.v1.DeleteVolumeGroupSnapshotRequest)csi.v1.DeleteVolumeGroupSnapshotResponse " +
    "GetVolumeGroupSnapshot(csi.v1.GetVolumeGroupSnapshotRequest)csi.v1.GetVolumeGroupSnapshotResponse",
  "csi.v1.SnapshotMetadata":
    "GetMetadataAllocated(csi.v1.GetMetadataAllocatedRequest)stream " +
    "csi.v1.GetMetadataAllocatedResponse " +
    "GetMetadataDelta(csi.v1.GetMetadataDeltaRequest)stream " +
    "csi.v1.GetMetadataDeltaResponse",
  "csi.v1.Node":
    "NodeStageVolume(csi.v1.NodeStageVolumeRequest)csi.v1.NodeStageVolumeResponse " +
    "NodeUnstageVolume(csi.v1.NodeUnstageVolumeRequest)csi.v1.NodeUnstageVolumeResponse " +
    "NodePublishVolume(csi.v1.NodePublishVolumeRequest)csi.v1.NodePublishVolumeResponse " +
    "NodeUnpublishVolume(csi.v1.NodeUnpublishVolumeRequest)csi.v1.NodeUnpublishVolumeResponse " +
    "NodeGetVolumeStats(csi.v1.NodeGetVolumeStatsRequest)csi.v1.NodeGetVolumeStatsResponse " +
    "NodeExpandVolume(csi.v1.NodeExpandVolumeRequest)csi.v1.NodeExpandVolumeResponse " +
    "NodeGetCapabilities(csi.v1.NodeGetCapabilitiesRequest)csi.v1.NodeGetCapabilitiesResponse " +
    "NodeGetInfo(csi.v1.NodeGetInfoRequest)csi.v1.NodeGetInfoResponse",
};

void test("every message, enum and service has the v1.12.0 wire shape kubelet and the sidecars encode", () => {
  const shape: Record<string, string> = {};
  for (const m of allMessages()) {
    shape[m.typeName] = m.fields
      .map((f) => `${f.name}=${f.number}:${kindOf(f)}${f.oneof ? `|${f.oneof.name}` : ""}`)
      .join(" ");
  }
  const enums: DescEnum[] = [...file_csi_v1_csi.enums, ...allMessages().flatMap((m) => m.nestedEnums)];
  for (const e of enums) shape[e.typeName] = e.values.map((v) => `${v.name}=${v.number}`).join(" ");
  for (const s of file_csi_v1_csi.services) {
    shape[s.typeName] = s.methods
      .map(
        (m) =>
          `${m.name}(${m.input.typeName})${m.methodKind === "server_streaming" ? "stream " : ""}${m.output.typeName}`,
      )
      .join(" ");
  }
  assert.deepEqual(shape, WIRE_SHAPE_V1_12);
});

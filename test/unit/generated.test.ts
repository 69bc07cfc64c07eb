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
import type { DescMessage } from "@bufbuild/protobuf";

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
  alpha_method,
  csi_secret,
  file_csi_v1_csi,
} from "../../src/gen/csi/v1/csi_pb.js";

const run = promisify(execFile);

// Compiled into dist/test/unit, run from source in test/unit: walk up to the
// directory that holds package.json rather than trusting the depth.
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) || !existsSync(join(dir, "buf.gen.yaml"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("repository root (package.json + buf.gen.yaml) not found");
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

void test("src/gen matches a fresh buf generate of proto/ (generated code is not stale)", async () => {
  const root = repoRoot();
  const scratch = await mkdtemp(join(tmpdir(), "loam-gen-"));
  try {
    const bin = join(root, "node_modules", ".bin");
    // --output re-roots the template's out: src/gen lands under scratch.
    await run(join(bin, "buf"), ["generate", "--output", scratch], {
      cwd: root,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
      timeout: 60_000,
    });
    const committedDir = resolve(root, "src/gen");
    const freshDir = resolve(scratch, "src/gen");
    const committed = await listFiles(committedDir);
    const fresh = await listFiles(freshDir);
    assert.ok(fresh.length > 0, "buf generate produced no files");
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

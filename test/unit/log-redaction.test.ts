import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DescMessage, create, createFileRegistry, setExtension } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FieldOptionsSchema,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import {
  Controller,
  CreateVolumeRequestSchema,
  Node,
  NodeStageVolumeRequestSchema,
  VolumeCapability_AccessMode_Mode as Mode,
  csi_secret,
  file_csi_v1_csi,
} from "../../src/gen/csi/v1/csi_pb.js";
import { createLogger } from "../../src/log.js";
import { REDACTED, redactMessage, secretFieldPaths } from "../../src/csi/redact.js";
import { CsiClient } from "../../src/csi/client.js";
import { startServer } from "../../src/csi/server.js";
import { CommandRunner } from "../../src/exec/index.js";
import { Lvm } from "../../src/lvm/lvm.js";
import { VolumeEngine } from "../../src/volumes/engine.js";

const SECRET = "hunter2-Zq8vXk3";

function collect(): { lines: () => Array<Record<string, unknown>>; raw: () => string; write: (line: string) => void } {
  let text = "";
  return {
    write: (line) => {
      text += line;
    },
    raw: () => text,
    lines: () =>
      text
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

test("the logger writes one JSON object per line with time, level name, message and fields", () => {
  const out = collect();
  const logger = createLogger("info", out.write);
  logger.info("hello", { volumeId: "v1", size: 5n, error: new Error("boom") });
  logger.debug("hidden");
  logger.warn("careful");
  const [first, second, ...rest] = out.lines();
  assert.equal(rest.length, 0, "the debug line must be dropped at level info");
  assert.equal(first?.level, "info");
  assert.equal(first?.msg, "hello");
  assert.equal(first?.volumeId, "v1");
  assert.equal(first?.size, "5", "bigint fields become decimal text");
  assert.equal((first?.error as { message?: string }).message, "boom");
  assert.ok(!Number.isNaN(Date.parse(String(first?.time))), "time is an ISO timestamp");
  assert.equal(second?.level, "warn");
  assert.equal(createLogger("warn", out.write).enabled?.("info"), false);
  assert.equal(createLogger("debug", out.write).enabled?.("debug"), true);
});

test("every 'secrets' field of every CSI message carries csi_secret and is found by the descriptor walk", () => {
  const walked = new Set<string>();
  for (const type of nestedTypes(file_csi_v1_csi)) {
    if (type.kind !== "message") continue;
    for (const path of secretFieldPaths(type)) if (!path.includes(".")) walked.add(`${type.name}.${path}`);
  }
  const named = new Set<string>();
  for (const type of nestedTypes(file_csi_v1_csi)) {
    if (type.kind !== "message") continue;
    for (const field of type.fields) if (field.name === "secrets") named.add(`${type.name}.${field.name}`);
  }
  assert.ok(named.size >= 10, `expected many requests with secrets, found ${named.size}`);
  assert.deepEqual([...walked].sort(), [...named].sort());
});

test("redactMessage blanks CreateVolume and NodeStageVolume secrets and keeps everything else", () => {
  const createRequest = create(CreateVolumeRequestSchema, {
    name: "pvc-1",
    parameters: { fs: "xfs" },
    secrets: { password: SECRET, token: `${SECRET}-2` },
    volumeCapabilities: [
      { accessType: { case: "mount", value: { fsType: "xfs" } }, accessMode: { mode: Mode.SINGLE_NODE_WRITER } },
    ],
  });
  const redacted = redactMessage(CreateVolumeRequestSchema, createRequest);
  const text = JSON.stringify(redacted);
  assert.ok(!text.includes(SECRET), text);
  assert.deepEqual((redacted as Record<string, unknown>).secrets, REDACTED);
  assert.deepEqual((redacted as Record<string, unknown>).parameters, { fs: "xfs" });
  assert.equal((redacted as Record<string, unknown>).name, "pvc-1");

  const stage = create(NodeStageVolumeRequestSchema, {
    volumeId: "v",
    stagingTargetPath: "/x",
    secrets: { key: SECRET },
  });
  assert.ok(!JSON.stringify(redactMessage(NodeStageVolumeRequestSchema, stage)).includes(SECRET));
});

/** A message type built at run time: secrets under a name no list could know, nested and repeated. */
function runtimeSchema(): { Outer: DescMessage } {
  const secretOption = create(FieldOptionsSchema);
  setExtension(secretOption, csi_secret, true);
  const proto = create(FileDescriptorProtoSchema, {
    name: "loamtest/redact.proto",
    package: "loamtest",
    syntax: "proto3",
    messageType: [
      {
        name: "Inner",
        field: [
          {
            name: "launch_code",
            jsonName: "launchCode",
            number: 1,
            type: Type.STRING,
            label: Label.OPTIONAL,
            options: secretOption,
          },
          { name: "note", jsonName: "note", number: 2, type: Type.STRING, label: Label.OPTIONAL },
        ],
      },
      {
        name: "Outer",
        field: [
          {
            name: "one",
            jsonName: "one",
            number: 1,
            type: Type.MESSAGE,
            typeName: ".loamtest.Inner",
            label: Label.OPTIONAL,
          },
          {
            name: "many",
            jsonName: "many",
            number: 2,
            type: Type.MESSAGE,
            typeName: ".loamtest.Inner",
            label: Label.REPEATED,
          },
        ],
      },
    ],
  });
  const registry = createFileRegistry(proto, () => undefined);
  const Outer = registry.getMessage("loamtest.Outer");
  if (!Outer) throw new Error("test schema did not build");
  return { Outer };
}

test("redaction follows the csi_secret option, not field names: nested and repeated fields of a run-time schema", () => {
  const { Outer } = runtimeSchema();
  assert.deepEqual(secretFieldPaths(Outer), ["one.launch_code", "many.launch_code"]);
  const message = create(Outer, {
    one: { launchCode: SECRET, note: "kept" },
    many: [{ launchCode: SECRET }, { note: "also kept" }],
  });
  const redacted = redactMessage(Outer, message);
  assert.deepEqual(redacted, {
    one: { launchCode: REDACTED, note: "kept" },
    many: [{ launchCode: REDACTED }, { note: "also kept" }],
  });
});

test("a real CSI server at debug level logs request bodies with every secret blanked (host LVM has no such VG)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "loam-log-"));
  const out = collect();
  const logger = createLogger("debug", out.write);
  const engine = new VolumeEngine(new Lvm(new CommandRunner()), "loamnosuchvg");
  const socketPath = join(dir, "csi.sock");
  const server = await startServer({
    socketPath,
    socketMode: 0o600,
    driverName: "loam.csi.dev",
    version: "test",
    node: { key: "topology.loam.csi.dev/node", nodeId: "host" },
    maxVolumesPerNode: 0,
    engine,
    logger,
  });
  const client = new CsiClient(`unix://${socketPath}`);
  try {
    await client
      .call(Controller, "createVolume", {
        name: "pvc-secret",
        capacityRange: { requiredBytes: 1n << 26n },
        volumeCapabilities: [
          { accessType: { case: "mount", value: { fsType: "xfs" } }, accessMode: { mode: Mode.SINGLE_NODE_WRITER } },
        ],
        secrets: { password: SECRET },
      })
      .catch(() => undefined);
    await client
      .call(Node, "nodeStageVolume", {
        volumeId: "some-volume",
        stagingTargetPath: join(dir, "stage"),
        volumeCapability: {
          accessType: { case: "mount", value: { fsType: "xfs" } },
          accessMode: { mode: Mode.SINGLE_NODE_WRITER },
        },
        secrets: { "chap-password": SECRET },
      })
      .catch(() => undefined);
  } finally {
    client.close();
    await server.stop(1000);
    await rm(dir, { recursive: true, force: true });
  }
  assert.ok(!out.raw().includes(SECRET), "a secret value reached the log");
  const lines = out.lines();
  const bodies = lines.filter((line) => line.msg === "rpc request");
  assert.deepEqual(
    bodies.map((line) => line.method),
    ["Controller.CreateVolume", "Node.NodeStageVolume"],
  );
  assert.equal((bodies[0]?.request as Record<string, unknown>).secrets, REDACTED);
  assert.equal((bodies[0]?.request as Record<string, unknown>).name, "pvc-secret");
  const rpcs = lines.filter((line) => line.msg === "rpc");
  assert.equal(rpcs.length, 2, "one line per RPC");
  for (const rpc of rpcs) {
    assert.equal(typeof rpc.requestId, "string");
    assert.equal(typeof rpc.durationMs, "number");
    assert.equal(typeof rpc.code, "string");
  }
  assert.equal(rpcs[1]?.volumeId, "some-volume");
});

/**
 * The "rpc" line every CSI call leaves (docs/observability.md, "Logs"): info for a call that
 * changed or read volumes, debug for a successful call that only describes the plugin (the
 * capability and identity RPCs sidecars repeat), warn for any failure.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { Identity, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { addService } from "../../src/csi/service.js";
import { CsiClient } from "../../src/csi/client.js";
import { type LogLevel, createLogger } from "../../src/log.js";
import { notFound } from "../../src/volumes/errors.js";

async function callsLoggedAt(level: LogLevel): Promise<Array<{ level: string; method: string; code: string }>> {
  const dir = await mkdtemp(join(tmpdir(), "loam-call-log-"));
  const endpoint = `unix://${join(dir, "csi.sock")}`;
  let text = "";
  const logger = createLogger(level, (line) => (text += line));
  const server = new Server();
  addService(
    server,
    Node,
    {
      nodeGetCapabilities: () => Promise.resolve({ capabilities: [] }),
      nodeGetInfo: () => Promise.reject(notFound("no such node, for the test")),
      nodeUnpublishVolume: () => Promise.resolve({}),
    },
    { logger },
  );
  addService(server, Identity, { probe: () => Promise.resolve({}) }, { logger });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(endpoint, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
  );
  const client = new CsiClient(endpoint);
  try {
    await client.call(Node, "nodeGetCapabilities", {});
    await client.call(Identity, "probe", {});
    await assert.rejects(client.call(Node, "nodeGetInfo", {}));
    await client.call(Node, "nodeUnpublishVolume", { volumeId: "v1", targetPath: "/var/lib/kubelet/x" });
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: string; method: string; code: string; msg: string })
    .filter((line) => line.msg === "rpc")
    .map(({ level, method, code }) => ({ level, method, code }));
}

test("at info, a successful capability or identity call leaves no line; a volume call and every failure do", async () => {
  assert.deepEqual(await callsLoggedAt("info"), [
    { level: "warn", method: "Node.NodeGetInfo", code: "NOT_FOUND" },
    { level: "info", method: "Node.NodeUnpublishVolume", code: "OK" },
  ]);
});

test("at debug, the successful capability and identity calls are logged too, at debug", async () => {
  assert.deepEqual(await callsLoggedAt("debug"), [
    { level: "debug", method: "Node.NodeGetCapabilities", code: "OK" },
    { level: "debug", method: "Identity.Probe", code: "OK" },
    { level: "warn", method: "Node.NodeGetInfo", code: "NOT_FOUND" },
    { level: "info", method: "Node.NodeUnpublishVolume", code: "OK" },
  ]);
});

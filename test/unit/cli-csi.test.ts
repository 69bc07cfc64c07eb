/**
 * `loam csi` against a real `loam node` started on this host with a temporary socket.
 * The host has no device-mapper and the node's volume group does not exist, so Identity,
 * Node info and request validation answer normally while every call that reaches LVM fails:
 * tests that depend on that say "no LVM".
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { runCsi, CSI_SUBCOMMANDS } from "../../src/cli/csi.js";

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function csi(endpoint: string, ...args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCsi(["--endpoint", endpoint, ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: {},
  });
  return { code, stdout, stderr };
}

/** The real command in its own process, for exit statuses as a shell sees them. */
function csiProcess(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, "csi", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe("loam csi against a real loam node on the host", () => {
  let dir: string;
  let endpoint: string;
  let node: ChildProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "loam-csi-test-"));
    endpoint = `unix://${join(dir, "csi.sock")}`;
    node = spawn(
      process.execPath,
      [
        BIN,
        "node",
        "--endpoint",
        endpoint,
        "--volume-group",
        "loamcsitestvg",
        "--node-id",
        "csi-test-node",
        "--log-level",
        "error",
        "--metrics-address",
        "",
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    for (let i = 0; i < 100; i++) {
      if ((await csi(endpoint, "info")).code === 0) return;
      await sleep(100);
    }
    throw new Error("loam node did not start");
  });

  after(async () => {
    node.kill("SIGTERM");
    if (node.exitCode === null) await new Promise((resolve) => node.once("exit", resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test("info prints the driver name and version as aligned lines", async () => {
    const run = await csi(endpoint, "info");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^name:\s+loam\.csi\.dev\nvendor version:\s+\d+\.\d+\.\d+/);
    const [first, second] = run.stdout.split("\n");
    assert.equal(first?.indexOf("loam.csi.dev"), second?.search(/\d/), "values start in the same column");
  });

  test("--json prints the reply as protobuf JSON", async () => {
    const run = await csi(endpoint, "--json", "node-info");
    assert.equal(run.code, 0, run.stderr);
    const reply = JSON.parse(run.stdout) as {
      nodeId: string;
      maxVolumesPerNode: string;
      accessibleTopology: { segments: Record<string, string> };
    };
    assert.equal(reply.nodeId, "csi-test-node");
    assert.equal(reply.maxVolumesPerNode, "0", "int64 is a string in protobuf JSON");
    assert.deepEqual(reply.accessibleTopology.segments, { "topology.loam.csi.dev/node": "csi-test-node" });
  });

  test("node-info in human form says the volume limit and topology", async () => {
    const run = await csi(endpoint, "node-info");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /node id:\s+csi-test-node/);
    assert.match(run.stdout, /max volumes:\s+no limit/);
    assert.match(run.stdout, /topology:\s+topology\.loam\.csi\.dev\/node=csi-test-node/);
  });

  test("capabilities and controller-capabilities list what the plugin advertises", async () => {
    const plugin = await csi(endpoint, "capabilities");
    assert.equal(plugin.code, 0, plugin.stderr);
    assert.match(plugin.stdout, /service CONTROLLER_SERVICE/);
    assert.match(plugin.stdout, /service VOLUME_ACCESSIBILITY_CONSTRAINTS/);
    const controller = await csi(endpoint, "controller-capabilities");
    assert.equal(controller.code, 0, controller.stderr);
    assert.match(controller.stdout, /^CREATE_DELETE_VOLUME$/m);
    assert.match(controller.stdout, /^GET_CAPACITY$/m);
    assert.match(controller.stdout, /^VOLUME_CONDITION$/m);
  });

  test("node-capabilities lists the node RPCs by name, and as protobuf JSON with --json", async () => {
    const human = await csi(endpoint, "node-capabilities");
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^STAGE_UNSTAGE_VOLUME$/m);
    assert.match(human.stdout, /^EXPAND_VOLUME$/m);
    const run = await csi(endpoint, "--json", "node-capabilities");
    const reply = JSON.parse(run.stdout) as { capabilities: Array<{ rpc: { type: string } }> };
    assert.ok(reply.capabilities.some((c) => c.rpc.type === "STAGE_UNSTAGE_VOLUME"));
  });

  test("probe with no LVM exits 1 with 'loam csi probe: UNAVAILABLE: <message>'", async () => {
    const run = await csiProcess("--endpoint", endpoint, "probe");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^loam csi probe: UNAVAILABLE: .*loamcsitestvg/);
    assert.equal(run.stdout, "");
  });

  test("create-volume with no LVM reaches the engine and prints its UNAVAILABLE", async () => {
    const run = await csi(endpoint, "create-volume", "--name", "pvc-1", "--size", "1Gi", "--fs-type", "xfs");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^loam csi create-volume: UNAVAILABLE: /);
  });

  test("create-volume with an unknown parameter fails validation with INVALID_ARGUMENT before LVM", async () => {
    const run = await csi(endpoint, "create-volume", "--name", "pvc-1", "--size", "1Gi", "--parameter", "bogusKey=1");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^loam csi create-volume: INVALID_ARGUMENT: .*bogusKey/);
  });

  test("create-volume from a snapshot is sent and the server's answer is printed", async () => {
    const run = await csi(endpoint, "create-volume", "--name", "pvc-2", "--size", "1Gi", "--from-snapshot", "snap-1");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^loam csi create-volume: [A-Z_]+: /);
  });

  test("delete-volume and get-volume with no LVM print the server's error code", async () => {
    for (const rpc of ["delete-volume", "get-volume"]) {
      const run = await csi(endpoint, rpc, "--volume-id", "lv-0123");
      assert.equal(run.code, 1, rpc);
      assert.match(run.stderr, new RegExp(`^loam csi ${rpc}: (UNAVAILABLE|NOT_FOUND|INTERNAL): `));
    }
  });

  test("snapshot RPCs with no LVM reach the engine and print its UNAVAILABLE", async () => {
    for (const args of [
      ["create-snapshot", "--name", "s1", "--source-volume-id", "v1"],
      ["delete-snapshot", "--snapshot-id", "s1"],
      ["list-snapshots"],
    ]) {
      const run = await csi(endpoint, ...args);
      assert.equal(run.code, 1, `${args[0]}: ${run.stdout}`);
      assert.match(run.stderr, new RegExp(`^loam csi ${args[0]}: UNAVAILABLE: `));
    }
  });

  test("node RPCs with paths outside the kubelet directory exit 1 with the server's code and message", async () => {
    const runs = [
      await csi(endpoint, "stage", "--volume-id", "v1", "--staging-path", "/etc/x", "--fs-type", "xfs"),
      await csi(endpoint, "publish", "--volume-id", "v1", "--staging-path", "/etc/x", "--target-path", "/etc/y"),
      await csi(endpoint, "unpublish", "--volume-id", "v1", "--target-path", "/etc/y"),
      await csi(endpoint, "unstage", "--volume-id", "v1", "--staging-path", "/etc/x"),
      await csi(endpoint, "expand", "--volume-id", "v1", "--volume-path", "/etc/y", "--size", "2Gi"),
      await csi(endpoint, "stats", "--volume-id", "v1", "--volume-path", "/etc/y"),
    ];
    for (const run of runs) {
      assert.equal(run.code, 1, run.stdout);
      assert.match(
        run.stderr,
        /^loam csi [a-z-]+: (INVALID_ARGUMENT|UNIMPLEMENTED|NOT_FOUND|UNAVAILABLE|INTERNAL): \S/,
      );
    }
  });

  test("a missing required flag is a usage error (exit 2) that names the flag, and nothing is sent", async () => {
    const run = await csiProcess("--endpoint", "unix:///nonexistent/loam.sock", "create-volume", "--size", "1Gi");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^loam csi create-volume: --name is required/);
  });
});

describe("loam csi without a server", () => {
  test("an endpoint nobody listens on is UNAVAILABLE, exit 1", async () => {
    const run = await csi("unix:///nonexistent/loam-csi-test.sock", "--timeout", "5", "info");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^loam csi info: UNAVAILABLE: /);
  });

  test("an unknown RPC is exit 2 and lists the RPCs", async () => {
    const run = await csi("unix:///x.sock", "create-volumes");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown RPC "create-volumes"/);
    assert.match(run.stderr, /create-volume/);
  });

  test("an unknown flag is exit 2 naming the flag", async () => {
    const run = await csi("unix:///x.sock", "info", "--colour");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^loam csi info: .*--colour/);
  });

  test("a size that is not a size is exit 2 naming the flag", async () => {
    const run = await csi("unix:///x.sock", "create-volume", "--name", "a", "--size", "1.5 gigs");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--size "1\.5 gigs" is not a size/);
  });

  test("--block with --fs-type is refused as a usage error", async () => {
    const run = await csi(
      "unix:///x.sock",
      "stage",
      "--volume-id",
      "v",
      "--staging-path",
      "/p",
      "--block",
      "--fs-type",
      "xfs",
    );
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--block cannot be combined with --fs-type/);
  });

  test("an unknown access mode is refused and the allowed ones listed", async () => {
    const run = await csi("unix:///x.sock", "create-volume", "--name", "a", "--access-mode", "rwx");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--access-mode "rwx" is not one of single-node-writer/);
  });

  test("every RPC has --help that exits 0 and shows its flags", async () => {
    for (const name of CSI_SUBCOMMANDS) {
      const run = await csi("unix:///x.sock", name, "--help");
      assert.equal(run.code, 0, name);
      assert.match(run.stdout, new RegExp(`^Usage: loam csi ${name}`), name);
      assert.match(run.stdout, /--endpoint VALUE/, name);
    }
  });

  test("the RPC list covers Identity, Controller and Node calls loam serves", () => {
    for (const name of [
      "info",
      "capabilities",
      "probe",
      "create-volume",
      "delete-volume",
      "list-volumes",
      "get-volume",
      "get-capacity",
      "validate-capabilities",
      "controller-capabilities",
      "create-snapshot",
      "delete-snapshot",
      "list-snapshots",
      "stage",
      "unstage",
      "publish",
      "unpublish",
      "expand",
      "stats",
      "node-info",
      "node-capabilities",
    ]) {
      assert.ok(CSI_SUBCOMMANDS.includes(name), name);
    }
  });
});

/** The bench's own time per RPC (issue 20, item 2), from loam's debug log lines. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ownTimes, summarizeOwnTimes } from "../../tools/bench/own-time.js";

const line = (fields: Record<string, unknown>): string => JSON.stringify({ level: "debug", time: "t", ...fields });

test("a call's own time is its wall time minus the commands logged while it alone was open", () => {
  const log = [
    line({ msg: "rpc request", method: "csi.v1.Controller.CreateVolume", requestId: "a" }),
    line({ msg: "lvm command", argv: ["lvcreate"], durationMs: 300 }),
    line({ msg: "lvm command failed", argv: ["lvs"], durationMs: 20 }),
    "not json",
    line({ msg: "rpc", method: "csi.v1.Controller.CreateVolume", requestId: "a", durationMs: 400, code: "OK" }),
    // Outside any call (a background re-read): counted for nobody.
    line({ msg: "lvm command", argv: ["vgs"], durationMs: 999 }),
    line({ msg: "rpc request", method: "csi.v1.Node.NodeStageVolume", requestId: "b" }),
    line({ msg: "host command", argv: ["mkfs.xfs"], durationMs: 500, exitCode: 0 }),
    line({ msg: "host command", argv: ["mount"], durationMs: 50, exitCode: 0 }),
    line({ msg: "rpc", requestId: "b", durationMs: 600, code: "OK" }),
  ].join("\n");
  assert.deepEqual(ownTimes(log), [
    { method: "CreateVolume", wallMs: 400, commandsMs: 320, commands: 2, ownMs: 80 },
    { method: "NodeStageVolume", wallMs: 600, commandsMs: 550, commands: 2, ownMs: 50 },
  ]);
});

test("calls that overlapped are left out: their commands cannot be told apart", () => {
  const log = [
    line({ msg: "rpc request", method: "csi.v1.Controller.CreateVolume", requestId: "a" }),
    line({ msg: "rpc request", method: "csi.v1.Controller.CreateVolume", requestId: "b" }),
    line({ msg: "lvm command", argv: ["lvcreate"], durationMs: 300 }),
    line({ msg: "rpc", requestId: "a", durationMs: 400 }),
    line({ msg: "rpc", requestId: "b", durationMs: 500 }),
    line({ msg: "rpc request", method: "csi.v1.Node.NodePublishVolume", requestId: "c" }),
    line({ msg: "rpc", requestId: "c", durationMs: 30 }),
  ].join("\n");
  assert.deepEqual(
    ownTimes(log).map((t) => t.method),
    ["NodePublishVolume"],
  );
});

test("the summary gives medians per method in the order asked, NaN for a method with no call", () => {
  const times = [
    { method: "CreateVolume", wallMs: 400, commandsMs: 300, commands: 2, ownMs: 100 },
    { method: "CreateVolume", wallMs: 500, commandsMs: 300, commands: 2, ownMs: 200 },
    { method: "CreateVolume", wallMs: 900, commandsMs: 300, commands: 4, ownMs: 600 },
  ];
  const [create, stage] = summarizeOwnTimes(times, ["CreateVolume", "NodeStageVolume"]);
  assert.deepEqual(create, {
    method: "CreateVolume",
    calls: 3,
    wallMedianMs: 500,
    commandsMedianMs: 300,
    commandsPerCall: 2,
    ownMedianMs: 200,
  });
  assert.equal(stage.calls, 0);
  assert.ok(Number.isNaN(stage.ownMedianMs));
});

/** The bench's own time per RPC (issue 20, item 2), from loam's debug log lines. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ownTimes, summarizeOwnTimes } from "../../tools/bench/own-time.js";

const BASE = Date.parse("2026-12-01T12:00:00.000Z");
/** A log line logged `at` ms after BASE. */
const line = (at: number, fields: Record<string, unknown>): string =>
  JSON.stringify({ level: "debug", time: new Date(BASE + at).toISOString(), ...fields });

test("a call's own time is its wall time minus the time in it during which a command ran", () => {
  const log = [
    line(0, { msg: "rpc request", method: "csi.v1.Controller.CreateVolume", requestId: "a" }),
    line(350, { msg: "lvm command", argv: ["lvcreate"], durationMs: 300 }),
    line(380, { msg: "lvm command failed", argv: ["lvs"], durationMs: 20 }),
    "not json",
    line(400, { msg: "rpc", method: "csi.v1.Controller.CreateVolume", requestId: "a", durationMs: 400, code: "OK" }),
    // Outside any call (a background re-read): counted for nobody.
    line(1500, { msg: "lvm command", argv: ["vgs"], durationMs: 999 }),
    line(2000, { msg: "rpc request", method: "csi.v1.Node.NodeStageVolume", requestId: "b" }),
    line(2520, { msg: "host command", argv: ["mkfs.xfs"], durationMs: 500, exitCode: 0 }),
    line(2580, { msg: "host command", argv: ["mount"], durationMs: 50, exitCode: 0 }),
    line(2600, { msg: "rpc", requestId: "b", durationMs: 600, code: "OK" }),
  ].join("\n");
  assert.deepEqual(ownTimes(log), [
    { method: "CreateVolume", wallMs: 400, commandsMs: 320, commands: 2, ownMs: 80 },
    { method: "NodeStageVolume", wallMs: 600, commandsMs: 550, commands: 2, ownMs: 50 },
  ]);
});

test("commands side by side count once; one started before the call counts for its part inside the call", () => {
  const log = [
    // The stage's mark removal (an lvchange) started before the publish that waits for it.
    line(0, { msg: "rpc request", method: "csi.v1.Node.NodePublishVolume", requestId: "p" }),
    line(100, { msg: "lvm command", argv: ["lvchange"], durationMs: 400 }),
    line(150, { msg: "host command", argv: ["mount"], durationMs: 80, exitCode: 0 }),
    line(200, { msg: "host command", argv: ["findmnt"], durationMs: 80, exitCode: 0 }),
    line(250, { msg: "rpc", requestId: "p", durationMs: 250, code: "OK" }),
  ].join("\n");
  // Inside [0, 250]: the lvchange covers 0..100, mount 70..150, findmnt 120..200: union 0..200.
  assert.deepEqual(ownTimes(log), [
    { method: "NodePublishVolume", wallMs: 250, commandsMs: 200, commands: 3, ownMs: 50 },
  ]);
});

test("calls that overlapped are left out: their commands cannot be told apart", () => {
  const log = [
    line(0, { msg: "rpc request", method: "csi.v1.Controller.CreateVolume", requestId: "a" }),
    line(10, { msg: "rpc request", method: "csi.v1.Controller.CreateVolume", requestId: "b" }),
    line(310, { msg: "lvm command", argv: ["lvcreate"], durationMs: 300 }),
    line(400, { msg: "rpc", requestId: "a", durationMs: 400 }),
    line(510, { msg: "rpc", requestId: "b", durationMs: 500 }),
    line(600, { msg: "rpc request", method: "csi.v1.Node.NodePublishVolume", requestId: "c" }),
    line(630, { msg: "rpc", requestId: "c", durationMs: 30 }),
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

// The fixture's own promise: after cleanup nothing it made is left on the machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LoopScratch, canUseLoopDevices, skipWithoutLoopDevices } from "../support/loop-devices.js";

test(
  "LoopScratch.cleanup unmounts and detaches everything it made, even stacked mounts",
  { skip: skipWithoutLoopDevices() },
  () => {
    const scratch = new LoopScratch();
    let device = "";
    try {
      const loop = scratch.loop(16);
      device = loop.device;
      execFileSync("mkfs.ext4", ["-q", loop.device]);
      const point = join(scratch.dir, "mnt");
      mkdirSync(point);
      execFileSync("mount", [loop.device, point]);
      execFileSync("mount", ["--bind", point, point]);
    } finally {
      scratch.cleanup();
    }
    assert.equal(readFileSync("/proc/self/mountinfo", "utf8").includes(scratch.dir), false);
    assert.equal(
      execFileSync("losetup", ["--list", "--noheadings", "--output", "NAME"], { encoding: "utf8" }).includes(device),
      false,
    );
    assert.equal(existsSync(scratch.dir), false);
  },
);

test(
  "in CI the host can run the loop-device tests (root, losetup)",
  { skip: process.env.CI !== "true" && "checked in CI only (CI=true)" },
  () => {
    assert.ok(
      canUseLoopDevices(),
      "CI=true but this process cannot use loop devices (needs root and the loop driver): the host tests that need them would fail",
    );
  },
);

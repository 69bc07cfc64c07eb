/**
 * Filesystems and mounts against the real kernel: loop devices, mkfs.xfs and mkfs.ext4,
 * mount, bind mounts, read-only remounts, device-node binds, online growth and statfs; and
 * stage's format-only-when-empty rule (src/volumes/staging.ts) over the real host, with the
 * format-in-progress mark's second chance (wipefs, then mkfs with its force flag).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CommandRunner } from "../../src/exec/index.js";
import { firstLook, probeDevice } from "../../src/host/blkid.js";
import { filesystemUsage, growFilesystem, makeFilesystem } from "../../src/host/filesystem.js";
import { Mounter } from "../../src/host/mount.js";
import { HostOperations } from "../../src/host/operations.js";
import { type FormatMark, prepareFilesystem } from "../../src/volumes/staging.js";
import { isReadOnly, majorMinorOf } from "../../src/host/mountinfo.js";
import { CAP_SYS_RESOURCE, LoopScratch, skipWithoutLoopDevices, hasCapability } from "../support/loop-devices.js";

const MiB = 1024 * 1024;
const runner = new CommandRunner({ defaultTimeoutMs: 60_000 });

/** The host over a runner that records which programs it started. */
function watchedHost(): { started: string[]; watched: HostOperations } {
  const started: string[] = [];
  return { started, watched: new HostOperations(new CommandRunner({ onCommand: (o) => started.push(o.argv[0]) })) };
}

/** A deleted volume's leftovers past the 4 KiB lvcreate zeroes: the device then has a zero head. */
async function writeStaleBlocks(device: string): Promise<void> {
  const fd = openSync(device, "r+");
  writeSync(fd, Buffer.alloc(8192, 0xa5), 0, undefined, 64 * 1024);
  closeSync(fd);
  assert.equal(await firstLook(device), "zero-head");
}
const mounter = new Mounter(runner);

/** A format-in-progress mark that only records what was done to it. */
function recordedMark(marked: boolean): FormatMark & { steps: string[] } {
  const steps: string[] = [];
  return {
    marked,
    steps,
    add: () => Promise.resolve(void steps.push("mark")),
    clear: () => Promise.resolve(void steps.push("unmark")),
  };
}

describe("host filesystems and mounts on loop devices", { skip: skipWithoutLoopDevices() }, () => {
  let scratch: LoopScratch;
  before(() => {
    scratch = new LoopScratch();
  });
  after(() => scratch.cleanup());

  const dir = (name: string): string => {
    const path = join(scratch.dir, name);
    mkdirSync(path, { recursive: true });
    return path;
  };

  test("blkid: a zeroed device is empty; after mkfs it holds that filesystem", async () => {
    const { device } = scratch.loop(32);
    assert.deepEqual(await probeDevice(runner, device), { kind: "empty" });
    await makeFilesystem(runner, device, "ext4");
    assert.deepEqual(await probeDevice(runner, device), { kind: "filesystem", fsType: "ext4" });
  });

  test("blkid: a device zero in its first and last MiB is empty without starting blkid", async () => {
    const { device } = scratch.loop(16);
    const started: string[] = [];
    const watched = new CommandRunner({ onCommand: (o) => started.push(o.argv[0]) });
    assert.equal(await firstLook(device), "empty");
    assert.deepEqual(await probeDevice(watched, device), { kind: "empty" });
    assert.deepEqual(started, []);
  });

  test("blkid: bytes in the last MiB send the probe to blkid", async () => {
    const { device } = scratch.loop(16);
    const fd = openSync(device, "r+");
    writeSync(fd, Buffer.from("tail metadata"), 0, undefined, 16 * MiB - 4096);
    closeSync(fd);
    const started: string[] = [];
    const watched = new CommandRunner({ onCommand: (o) => started.push(o.argv[0]) });
    assert.equal(await firstLook(device), "zero-head");
    await probeDevice(watched, device);
    assert.deepEqual(started, ["blkid"]);
  });

  test("first look: bytes within the first 4 KiB are data; bytes past them with a zero head are a zero head", async () => {
    const { device } = scratch.loop(16);
    const fd = openSync(device, "r+");
    writeSync(fd, Buffer.from("stale block of a deleted volume"), 0, undefined, 512 * 1024);
    assert.equal(await firstLook(device), "zero-head");
    writeSync(fd, Buffer.from("stale block of a deleted volume"), 0, undefined, 8 * 1024);
    assert.equal(await firstLook(device), "zero-head");
    writeSync(fd, Buffer.from("x"), 0, undefined, 4095);
    closeSync(fd);
    assert.equal(await firstLook(device), "data");
  });

  test("xfs on a device with a zero head and stale blocks further in: blkid finds nothing, then mkfs.xfs under the mark", async () => {
    const { device } = scratch.loop(320);
    await writeStaleBlocks(device);
    const { started, watched } = watchedHost();
    const mark = recordedMark(false);
    assert.deepEqual(await prepareFilesystem(watched, device, "xfs", mark), { kind: "formatted" });
    assert.deepEqual(started, ["blkid", "mkfs.xfs"]);
    assert.deepEqual(mark.steps, ["mark", "unmark"]);
    assert.deepEqual(await probeDevice(runner, device), { kind: "filesystem", fsType: "xfs" });
  });

  test("xfs on a device with a zero head but an iso9660 signature at 32 KiB: blkid names it, nothing is marked or written", async () => {
    const { device } = scratch.loop(320);
    const descriptor = Buffer.concat([
      Buffer.from([1]),
      Buffer.from("CD001"),
      Buffer.from([1, 0]),
      Buffer.alloc(32, 0x20),
      Buffer.from("KEEPME".padEnd(32)),
    ]);
    const terminator = Buffer.concat([Buffer.from([255]), Buffer.from("CD001"), Buffer.from([1])]);
    const fd = openSync(device, "r+");
    writeSync(fd, descriptor, 0, undefined, 32 * 1024);
    writeSync(fd, terminator, 0, undefined, 32 * 1024 + 2048);
    const before = Buffer.alloc(64 * 1024);
    readSync(fd, before, 0, before.length, 0);
    const { started, watched } = watchedHost();
    assert.equal(await firstLook(device), "zero-head");
    const mark = recordedMark(false);
    assert.deepEqual(await prepareFilesystem(watched, device, "xfs", mark), { kind: "filesystem", fsType: "iso9660" });
    assert.deepEqual(started, ["blkid"]);
    assert.deepEqual(mark.steps, []);
    const after = Buffer.alloc(64 * 1024);
    readSync(fd, after, 0, after.length, 0);
    closeSync(fd);
    assert.ok(after.equals(before), "the device's first 64 KiB changed");
  });

  test("ext4 on a device with a zero head asks blkid before mkfs", async () => {
    const { device } = scratch.loop(32);
    await writeStaleBlocks(device);
    const { started, watched } = watchedHost();
    assert.deepEqual(await prepareFilesystem(watched, device, "ext4", recordedMark(false)), { kind: "formatted" });
    assert.deepEqual(started, ["blkid", "mkfs.ext4"]);
  });

  test("xfs on a device with a zero head that is too small: mkfs.xfs's own error comes back once blkid finds nothing", async () => {
    const { device } = scratch.loop(64);
    await writeStaleBlocks(device);
    const { started, watched } = watchedHost();
    await assert.rejects(prepareFilesystem(watched, device, "xfs", recordedMark(false)), /must be larger than 300MB/);
    assert.deepEqual(started, ["blkid", "mkfs.xfs"]);
  });

  for (const fsType of ["xfs", "ext4"] as const) {
    test(`a marked device holding the first 64 KiB of a ${fsType} (an interrupted mkfs) is wiped and formatted again; the result checks clean`, async () => {
      const { device } = scratch.loop(320);
      const { device: whole } = scratch.loop(320);
      await makeFilesystem(runner, whole, fsType);
      const head = Buffer.alloc(64 * 1024);
      const from = openSync(whole, "r");
      readSync(from, head, 0, head.length, 0);
      closeSync(from);
      const to = openSync(device, "r+");
      writeSync(to, head, 0, head.length, 0);
      closeSync(to);
      // Unmarked, the partial head is somebody's data: refused.
      const refused = await prepareFilesystem(new HostOperations(runner), device, fsType, recordedMark(false));
      assert.notEqual(refused.kind, "formatted");
      const { started, watched } = watchedHost();
      const mark = recordedMark(true);
      assert.deepEqual(await prepareFilesystem(watched, device, fsType, mark), { kind: "formatted" });
      assert.deepEqual(started, ["wipefs", `mkfs.${fsType}`]);
      assert.deepEqual(mark.steps, ["unmark"]);
      const check = fsType === "xfs" ? ["xfs_repair", "-n", device] : ["e2fsck", "-n", "-f", device];
      const checked = await runner.run(check);
      assert.equal(checked.exitCode, 0, checked.stderr + checked.stdout);
    });
  }

  test("blkid: unrecognised bytes at the start of a device are data, not an empty device", async () => {
    const { device } = scratch.loop(8);
    const fd = openSync(device, "r+");
    writeSync(fd, Buffer.from("precious database page"), 0, undefined, 512);
    closeSync(fd);
    const content = await probeDevice(runner, device);
    assert.equal(content.kind, "other");
  });

  test("blkid: an LVM physical volume signature is reported as not a filesystem", async () => {
    const { device } = scratch.loop(16);
    await runner.run(["pvcreate", "-q", "-y", "--devices", device, device]);
    const content = await probeDevice(runner, device);
    await runner.run(["pvremove", "-q", "-y", "--devices", device, device]);
    assert.deepEqual(content, { kind: "other", description: "a LVM2_member signature (raid usage)" });
  });

  test("mkfs.xfs refuses a device under 300 MiB with its own message", async () => {
    const { device } = scratch.loop(64);
    await assert.rejects(makeFilesystem(runner, device, "xfs"), /must be larger than 300MB/);
  });

  test("mount, bind mount, and a read-only bind that refuses writes while the source stays writable", async () => {
    const { device } = scratch.loop(320);
    await makeFilesystem(runner, device, "xfs");
    const staging = dir("xfs-staging");
    await mounter.mountFilesystem(device, staging, "xfs", ["noatime", "nodev"]);
    const staged = await mounter.mountAt(staging);
    assert.equal(staged?.fsType, "xfs");
    assert.equal(staged?.majorMinor, majorMinorOf(statSync(device).rdev));
    assert.ok(staged?.mountOptions.includes("noatime"));

    const rw = dir("pod-rw");
    await mounter.bindMount(staging, rw, []);
    writeFileSync(join(rw, "hello"), "through the bind");
    assert.equal(statSync(join(staging, "hello")).size, "through the bind".length);

    const ro = dir("pod-ro");
    await mounter.bindMount(staging, ro, ["nodev"], { readonly: true });
    const roMount = await mounter.mountAt(ro);
    assert.ok(roMount && isReadOnly(roMount), "the bind is listed read-only");
    assert.ok(roMount.mountOptions.includes("nodev"), "the remount kept the per-mount flag");
    assert.ok(roMount.mountOptions.includes("noatime"), "the remount kept the source's atime flag");
    assert.throws(() => writeFileSync(join(ro, "nope"), "x"), /EROFS/);
    writeFileSync(join(staging, "still"), "writable");

    assert.equal(await mounter.unmountAll(ro), 1);
    assert.equal(await mounter.unmountAll(ro), 0, "a second unmount finds nothing to do");
    await mounter.unmountAll(rw);
    await mounter.unmountAll(staging);
    assert.equal(await mounter.mountAt(staging), undefined);
  });

  test("a device node bound onto a file reads and writes the device itself", async () => {
    const { device } = scratch.loop(8);
    const target = join(dir("block"), "dev");
    writeFileSync(target, "");
    await mounter.bindMount(device, target, []);
    assert.ok(statSync(target).isBlockDevice());
    assert.equal(majorMinorOf(statSync(target).rdev), majorMinorOf(statSync(device).rdev));
    const pattern = Buffer.alloc(64 * 1024, 0xa5);
    const out = openSync(target, "r+");
    writeSync(out, pattern, 0, pattern.length, MiB);
    closeSync(out);
    const back = Buffer.alloc(pattern.length);
    const input = openSync(device, "r");
    readSync(input, back, 0, back.length, MiB);
    closeSync(input);
    assert.deepEqual(back, pattern);
    await mounter.unmountAll(target);
  });

  for (const fsType of ["xfs", "ext4"] as const) {
    // The kernel refuses online ext4 resize (EPERM) to a process without CAP_SYS_RESOURCE.
    const skip =
      fsType === "ext4" &&
      !hasCapability(CAP_SYS_RESOURCE) &&
      "online ext4 resize needs CAP_SYS_RESOURCE, which this process lacks";
    test(`${fsType} grows online to fill its grown device, and statfs reports the new size`, { skip }, async () => {
      const loop = scratch.loop(320);
      await makeFilesystem(runner, loop.device, fsType);
      const point = dir(`grow-${fsType}`);
      await mounter.mountFilesystem(loop.device, point, fsType, []);
      const before = await filesystemUsage(point);
      writeFileSync(join(point, "data"), Buffer.alloc(MiB, 1));
      const written = await filesystemUsage(point);
      assert.ok(written.usedBytes >= before.usedBytes + BigInt(MiB), "used bytes grew by the file");
      assert.ok(written.usedInodes > before.usedInodes, "the file used an inode");
      assert.ok(written.totalInodes > 0n);

      scratch.grow(loop, 640);
      await growFilesystem(runner, { fsType, device: loop.device, mountPoint: point });
      const grown = await filesystemUsage(point);
      assert.ok(
        grown.totalBytes > before.totalBytes + 250n * BigInt(MiB),
        `total ${before.totalBytes} -> ${grown.totalBytes}`,
      );
      await growFilesystem(runner, { fsType, device: loop.device, mountPoint: point });
      assert.equal((await filesystemUsage(point)).totalBytes, grown.totalBytes, "growing again changes nothing");
      await mounter.unmountAll(point);
    });
  }
});

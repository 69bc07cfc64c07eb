/**
 * Issue 13, item 1: a path checked is not the path used. Each test checks a path under a
 * scratch kubelet directory (resolveUnder), then swaps a directory on the way for a symlink
 * to a directory outside it, deterministically: either before the host step starts, or from
 * inside the step, just before its mount or umount child starts (a runner that swaps when it
 * is asked for that program). The host must act on what was checked or refuse, never on
 * what the symlink leads to. Real mounts on loop devices; root needed.
 */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CommandResult, CommandRunner, type RunOptions } from "../../src/exec/index.js";
import { PathChangedError } from "../../src/host/errors.js";
import { makeFilesystem } from "../../src/host/filesystem.js";
import { Mounter } from "../../src/host/mount.js";
import { readMountInfo } from "../../src/host/mountinfo.js";
import { HostOperations } from "../../src/host/operations.js";
import { resolveUnder } from "../../src/host/paths.js";
import { LoopScratch, skipWithoutLoopDevices } from "../support/loop-devices.js";

/** A runner that calls `swap` once, just before it starts the first command named `program`. */
class SwappingRunner extends CommandRunner {
  swapped = false;
  constructor(
    private readonly program: string,
    private readonly swap: () => void,
  ) {
    super({ defaultTimeoutMs: 60_000 });
  }
  override run(argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    if (!this.swapped && argv[0] === this.program) {
      this.swapped = true;
      this.swap();
    }
    return super.run(argv, options);
  }
}

const changed = (error: unknown): boolean => error instanceof PathChangedError;

describe("a request path swapped after its check (issue 13, item 1)", { skip: skipWithoutLoopDevices() }, () => {
  let scratch: LoopScratch;
  let device = "";
  let kubelet = "";
  let elsewhere = "";
  let vol = "";
  let n = 0;
  const runner = new CommandRunner({ defaultTimeoutMs: 60_000 });
  const mounter = new Mounter(runner);

  before(async () => {
    scratch = new LoopScratch();
    device = scratch.loop(16).device;
    await makeFilesystem(runner, device, "ext4");
  });
  after(() => scratch.cleanup());

  // A fresh kubelet/pods/raceN/vol and an empty directory outside kubelet for each test.
  beforeEach(() => {
    n += 1;
    kubelet = join(scratch.dir, "kubelet");
    vol = join(kubelet, "pods", `race${n}`, "vol");
    elsewhere = join(scratch.dir, `elsewhere${n}`);
    mkdirSync(vol, { recursive: true });
    mkdirSync(elsewhere);
  });

  /** mv vol aside; ln -s elsewhere vol: the reproduction. */
  const swap = (): void => {
    renameSync(vol, `${vol}-aside`);
    symlinkSync(elsewhere, vol);
  };
  const mountsUnder = async (dir: string) =>
    (await readMountInfo()).filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(`${dir}/`));

  test("stage: a directory swapped before mkdir and mount is refused; nothing is made or mounted outside", async () => {
    const staging = await resolveUnder(kubelet, join(vol, "globalmount"));
    swap();
    const host = new HostOperations(runner);
    await assert.rejects(host.makeDirectory(staging), changed);
    assert.equal(existsSync(join(elsewhere, "globalmount")), false, "no directory made outside kubelet");
    mkdirSync(join(elsewhere, "globalmount"));
    await assert.rejects(host.mountFilesystem(device, staging, "ext4", []), changed);
    assert.deepEqual(await mountsUnder(elsewhere), []);
  });

  test("stage: a directory swapped while mount starts is undone and refused; nothing stays mounted", async () => {
    const staging = await resolveUnder(kubelet, join(vol, "globalmount"));
    mkdirSync(staging);
    mkdirSync(join(elsewhere, "globalmount"));
    const swapping = new SwappingRunner("mount", swap);
    await assert.rejects(new HostOperations(swapping).mountFilesystem(device, staging, "ext4", []), changed);
    assert.equal(swapping.swapped, true);
    assert.deepEqual(await mountsUnder(elsewhere), [], "nothing mounted where the symlink leads");
    assert.deepEqual(await mountsUnder(kubelet), [], "the mount made on the moved directory was undone");
  });

  test("publish: a bind whose target's parent is swapped is refused, before or while mount starts", async () => {
    const staging = join(kubelet, "pods", `staging${n}`);
    mkdirSync(staging);
    await mounter.mountFilesystem(device, staging, "ext4", []);
    try {
      const target = await resolveUnder(kubelet, join(vol, "mount"));
      mkdirSync(target);
      mkdirSync(join(elsewhere, "mount"));
      const swapping = new SwappingRunner("mount", swap);
      await assert.rejects(
        new HostOperations(swapping).bindMount(staging, target, ["nodev"], { readonly: true }),
        changed,
      );
      assert.equal(swapping.swapped, true);
      assert.deepEqual(await mountsUnder(elsewhere), []);
      assert.deepEqual(
        (await mountsUnder(kubelet)).map((m) => m.mountPoint),
        [staging],
        "only the staging mount is left",
      );
      // The swapped path is refused outright on the next call.
      await assert.rejects(new HostOperations(runner).bindMount(staging, target, []), changed);
      assert.deepEqual(await mountsUnder(elsewhere), []);
    } finally {
      await mounter.unmountAll(staging);
    }
  });

  test("unpublish: umount acts on the mount that was checked, not on what a swapped path leads to", async () => {
    const target = await resolveUnder(kubelet, join(vol, "mount"));
    mkdirSync(target);
    mkdirSync(join(elsewhere, "mount"));
    await mounter.mountFilesystem("tmpfs", target, "tmpfs", []);
    // Someone else's mount where the symlink will lead.
    await mounter.mountFilesystem("tmpfs", join(elsewhere, "mount"), "tmpfs", []);
    try {
      const id = (await readMountInfo()).findLast((m) => m.mountPoint === target)?.id ?? -1;
      const swapping = new SwappingRunner("umount", swap);
      assert.equal(await new HostOperations(swapping).unmount(target, id), true);
      assert.equal(swapping.swapped, true);
      assert.deepEqual(
        (await mountsUnder(elsewhere)).map((m) => m.mountPoint),
        [join(elsewhere, "mount")],
        "the mount outside kubelet is untouched",
      );
      assert.deepEqual(await mountsUnder(kubelet), [], "the checked mount (now under vol-aside) is gone");
      // Swapped before the call: refused.
      await assert.rejects(new HostOperations(runner).unmount(target, id), changed);
      assert.equal((await mountsUnder(elsewhere)).length, 1);
    } finally {
      await mounter.unmountAll(join(elsewhere, "mount"));
    }
  });

  test("files and directories: make, remove and stat through a swapped parent are refused", async () => {
    const target = await resolveUnder(kubelet, join(vol, "device"));
    mkdirSync(join(elsewhere, "mount"));
    writeFileSync(join(elsewhere, "device"), "");
    swap();
    const host = new HostOperations(runner);
    await assert.rejects(host.makeFile(join(vol, "other")), changed);
    await assert.rejects(host.removeFile(target), changed);
    await assert.rejects(host.removeDirectory(join(vol, "mount")), changed);
    await assert.rejects(host.stat(target), changed);
    await assert.rejects(host.filesystemUsage(join(vol, "mount")), changed);
    assert.deepEqual(readdirSync(elsewhere).sort(), ["device", "mount"], "nothing outside was made or removed");
  });

  test("a last component that is now a symlink is refused, not followed", async () => {
    const target = await resolveUnder(kubelet, join(vol, "mount"));
    symlinkSync(elsewhere, target);
    const host = new HostOperations(runner);
    await assert.rejects(host.makeDirectory(target), changed);
    await assert.rejects(host.mountFilesystem("tmpfs", target, "tmpfs", []), changed);
    await assert.rejects(host.stat(target), changed);
    assert.deepEqual(await mountsUnder(elsewhere), []);
    rmSync(target);
  });

  test("unchanged paths: directories are made with their parents and mounts confirmed where asked", async () => {
    const target = await resolveUnder(kubelet, join(vol, "a", "b", "mount"));
    const host = new HostOperations(runner);
    await host.makeDirectory(target);
    await host.makeDirectory(target);
    assert.deepEqual(await host.stat(target), { type: "directory" });
    await host.mountFilesystem("tmpfs", target, "tmpfs", [], { readonly: true });
    assert.deepEqual(
      (await mountsUnder(kubelet)).map((m) => [m.mountPoint, m.mountOptions[0]]),
      [[target, "ro"]],
    );
    const id = (await readMountInfo()).findLast((m) => m.mountPoint === target)?.id ?? -1;
    assert.equal(await host.unmount(target, id + 1), false, "another mount id: nothing done");
    assert.equal(await host.unmount(target, id), true);
    assert.equal(await host.unmount(target, id), false);
    assert.equal(await host.removeDirectory(target), true);
    assert.equal(await host.unmount(join(vol, "missing", "mount"), id), false, "a missing parent has nothing mounted");
  });
});

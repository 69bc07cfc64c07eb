import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  MetadataAreaError,
  currentText,
  metadataAreasOf,
  metadataStamp,
  volumeGroupStamp,
} from "../../src/lvm/metadata-area.js";
import { LoopScratch, skipWithoutLoopDevices } from "../support/loop-devices.js";

const lvmEnv = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: "1", LC_ALL: "C" };
const lvm = (argv: string[]): string =>
  execFileSync(argv[0], argv.slice(1), { env: lvmEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

test("metadataAreasOf refuses a device without an LVM label", () => {
  assert.throws(
    () => metadataAreasOf(Buffer.alloc(2048), "/dev/x"),
    (e: unknown) => e instanceof MetadataAreaError && /no LVM label/.test(e.message),
  );
});

test("currentText refuses a sector that is not a metadata area header", () => {
  assert.throws(
    () => currentText(Buffer.alloc(512), "/dev/x", 4096),
    (e: unknown) => e instanceof MetadataAreaError && /4096/.test(e.message),
  );
});

test(
  "the stamp of real PVs changes with a metadata commit and not with a read",
  { skip: skipWithoutLoopDevices() },
  (t) => {
    const scratch = new LoopScratch();
    const vg = `loamstamp${process.pid}`;
    t.after(() => {
      try {
        lvm(["vgremove", "-ff", "-y", vg]);
      } catch {
        // Not made.
      }
      scratch.cleanup();
    });
    const devices = [scratch.loop(32).device, scratch.loop(32).device];
    lvm(["pvcreate", "-y", ...devices]);
    lvm(["vgcreate", vg, ...devices]);
    return (async () => {
      const first = await volumeGroupStamp(devices);
      assert.match(await metadataStamp(devices[0]), /^4096:\d+\+\d+#\d+$/);
      lvm(["vgs", vg]);
      assert.equal(await volumeGroupStamp(devices), first, "a report must not change the stamp");
      // The host has no device-mapper, so a VG tag is the metadata commit that can be made here.
      lvm(["vgchange", "--addtag", "loam-test", vg]);
      const second = await volumeGroupStamp(devices);
      assert.notEqual(second, first);
      const [a, b] = second.split(";");
      assert.notEqual(a.split("=")[1], first.split(";")[0].split("=")[1], "every PV's metadata area moves on");
      assert.notEqual(b.split("=")[1], first.split(";")[1].split("=")[1]);
    })();
  },
);

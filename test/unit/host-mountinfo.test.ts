import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { majorMinorOf, mountAt, parseMountInfo, readMountInfo } from "../../src/host/mountinfo.js";
import { classify, parseExport } from "../../src/host/blkid.js";

const SAMPLE = [
  "22 1 253:3 / /var/lib/kubelet/plugins/x/globalmount rw,noatime shared:1 - xfs /dev/mapper/vg-lv rw,attr2,inode64",
  "23 22 253:3 / /var/lib/kubelet/pods/p/volumes/a\\040b ro,nosuid,noatime shared:1 master:2 - xfs /dev/mapper/vg-lv rw,attr2",
  "24 1 0:6 /dm-3 /var/lib/kubelet/dev\\134file rw,relatime - devtmpfs devtmpfs rw,size=100k",
  "25 22 7:0 / /var/lib/kubelet/plugins/x/globalmount rw - ext4 /dev/loop0 rw",
].join("\n");

test("parseMountInfo reads device, root, mount point, options and the fields after the separator", () => {
  const [first] = parseMountInfo(SAMPLE);
  assert.deepEqual(first, {
    id: 22,
    parentId: 1,
    majorMinor: "253:3",
    root: "/",
    mountPoint: "/var/lib/kubelet/plugins/x/globalmount",
    mountOptions: ["rw", "noatime"],
    fsType: "xfs",
    source: "/dev/mapper/vg-lv",
    superOptions: ["rw", "attr2", "inode64"],
  });
});

test("parseMountInfo finds the separator after any number of optional fields and decodes octal escapes", () => {
  const entries = parseMountInfo(SAMPLE);
  assert.equal(entries[1]?.mountPoint, "/var/lib/kubelet/pods/p/volumes/a b");
  assert.equal(entries[1]?.fsType, "xfs");
  assert.equal(entries[2]?.mountPoint, "/var/lib/kubelet/dev\\file");
  assert.equal(entries[2]?.root, "/dm-3");
});

test("mountAt returns the mount on top when two are stacked at one path", () => {
  const top = mountAt(parseMountInfo(SAMPLE), "/var/lib/kubelet/plugins/x/globalmount");
  assert.equal(top?.id, 25);
  assert.equal(mountAt(parseMountInfo(SAMPLE), "/nowhere"), undefined);
});

test("majorMinorOf encodes device numbers as the kernel lists them in mountinfo", async () => {
  const root = (await readMountInfo()).find((e) => e.mountPoint === "/");
  assert.ok(root);
  assert.equal(majorMinorOf(statSync("/").dev), root.majorMinor);
  assert.equal(majorMinorOf(0x10001), "256:1");
  assert.equal(majorMinorOf(0x300800), "8:768");
});

test("blkid export output: a filesystem, a non-filesystem signature and a partition table are told apart", () => {
  assert.deepEqual(classify(parseExport("DEVNAME=/dev/x\nUUID=u\nTYPE=xfs\nUSAGE=filesystem\n")), {
    kind: "filesystem",
    fsType: "xfs",
  });
  assert.equal(classify(parseExport("TYPE=LVM2_member\nUSAGE=raid\n")).kind, "other");
  assert.equal(classify(parseExport("TYPE=crypto_LUKS\nUSAGE=crypto\n")).kind, "other");
  assert.match(JSON.stringify(classify(parseExport("PTUUID=1\nPTTYPE=gpt\n"))), /gpt partition table/);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CommandRunner } from "../../src/exec/index.js";
import { encodeTag, InvalidLvmArgumentError, Lvm } from "../../src/lvm/index.js";

const fixtures = new URL("../../../test/fixtures/lvm/", import.meta.url);
const recorder = fileURLToPath(new URL("recorder.mjs", fixtures));

/** An Lvm whose runner prefix is the recording stand-in (it succeeds silently and logs each argv). */
async function recorded(fn: (lvm: Lvm) => Promise<void>): Promise<string[][]> {
  const dir = mkdtempSync(join(tmpdir(), "loam-lvm-standin-"));
  const log = join(dir, "calls.jsonl");
  try {
    await fn(new Lvm(new CommandRunner({ prefix: [process.execPath, recorder], env: { LOAM_STANDIN_LOG: log } })));
    return readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { argv: string[] }).argv);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("stand-in: a CSI snapshot is a thin snapshot with activation skip, not activated, tagged in the same lvcreate", async () => {
  const tag = encodeTag("kind", "snapshot");
  const calls = await recorded((lvm) =>
    lvm.createThinSnapshot({ vg: "vg0", origin: "vol-1", name: "snap-1", tags: [tag], writable: false }),
  );
  assert.deepEqual(calls, [
    [
      "lvcreate",
      "--yes",
      "--snapshot",
      "--setactivationskip",
      "y",
      "--activate",
      "n",
      "--name",
      "snap-1",
      "--addtag",
      tag,
      "vg0/vol-1",
    ],
  ]);
});

test("stand-in: a clone is a writable thin snapshot without activation skip, activated", async () => {
  const calls = await recorded((lvm) =>
    lvm.createThinSnapshot({ vg: "vg0", origin: "snap-1", name: "vol-2", tags: [], writable: true }),
  );
  assert.deepEqual(calls, [
    ["lvcreate", "--yes", "--snapshot", "--setactivationskip", "n", "--activate", "y", "--name", "vol-2", "vg0/snap-1"],
  ]);
});

test("stand-in: copyLv runs dd between the two device paths with fsync and nothing a busybox dd lacks", async () => {
  const calls = await recorded((lvm) => lvm.copyLv({ vg: "vg0", name: "a" }, { vg: "vg1", name: "b" }));
  assert.deepEqual(calls, [["dd", "if=/dev/vg0/a", "of=/dev/vg1/b", "bs=4M", "conv=fsync"]]);
});

test("stand-in: reportAll asks one fullreport for every VG, each named once", async () => {
  const calls = await recorded(async (lvm) => {
    await lvm.reportAll(["vg0", "vg1", "vg0"]).catch(() => undefined);
  });
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0].slice(0, 2), ["lvm", "fullreport"]);
  assert.deepEqual(calls[0].slice(-2), ["vg0", "vg1"]);
});

test("stand-in: thin pool creation, deactivation; names that are not LVM names never reach a command", async () => {
  const calls = await recorded(async (lvm) => {
    await lvm.createThinPool({ vg: "vg0", name: "pool", sizeBytes: 64 << 20, metadataSizeBytes: 4 << 20 });
    await lvm.deactivateLv("vg0", "snap-1");
    await assert.rejects(lvm.copyLv({ vg: "vg0", name: "../etc" }, { vg: "vg0", name: "b" }), InvalidLvmArgumentError);
    await assert.rejects(
      lvm.createThinSnapshot({ vg: "vg0", origin: "a", name: "-rf", tags: [], writable: true }),
      InvalidLvmArgumentError,
    );
  });
  assert.deepEqual(calls, [
    [
      "lvcreate",
      "--yes",
      "--type",
      "thin-pool",
      "--size",
      "67108864b",
      "--poolmetadatasize",
      "4194304b",
      "--name",
      "pool",
      "vg0",
    ],
    ["lvchange", "--activate", "n", "vg0/snap-1"],
  ]);
});

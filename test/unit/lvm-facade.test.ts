import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CommandResult, CommandRunner } from "../../src/exec/index.js";
import {
  ComponentActiveError,
  encodeTag,
  InsufficientSpaceError,
  InvalidLvmArgumentError,
  LogicalVolumeExistsError,
  LogicalVolumeNotFoundError,
  LogicalVolumeShrinkError,
  Lvm,
  ThinPoolNotActiveError,
  VolumeGroupNotFoundError,
  type LvmOptions,
} from "../../src/lvm/index.js";
import {
  dmName,
  lvmPercent,
  parseThinPoolHealth,
  parseThinPoolStatus,
  thinPoolTargets,
} from "../../src/lvm/thin-pool-status.js";

const fixtures = new URL("../../../test/fixtures/lvm/", import.meta.url);
const recorder = fileURLToPath(new URL("recorder.mjs", fixtures));

/** An Lvm whose runner prefix is the recording stand-in, replying with one captured fixture. */
function standIn(reply?: string, options?: LvmOptions): { lvm: Lvm; calls: () => string[][]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "loam-lvm-standin-"));
  const log = join(dir, "calls.jsonl");
  const env: Record<string, string> = { LOAM_STANDIN_LOG: log };
  if (reply) env.LOAM_STANDIN_REPLY = fileURLToPath(new URL(`${reply}.json`, fixtures));
  const runner = new CommandRunner({ prefix: [process.execPath, recorder], env });
  const calls = (): string[][] => {
    try {
      return readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => (JSON.parse(l) as { argv: string[] }).argv);
    } catch {
      return [];
    }
  };
  return { lvm: new Lvm(runner, options), calls, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test("stand-in: report runs one fullreport of the VG and parses the captured reply", async () => {
  const s = standIn("fullreport-linear-striped");
  try {
    const report = await s.lvm.report("loamfx");
    assert.equal(report.vg.name, "loamfx");
    assert.equal(report.lvs.length, 4);
    const calls = s.calls();
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0].slice(0, 2), ["lvm", "fullreport"]);
    assert.equal(calls[0].at(-1), "loamfx");
    assert.ok(!calls[0].includes("--config"), "no --config unless configured");
  } finally {
    s.cleanup();
  }
});

test("stand-in: report of a missing VG throws VolumeGroupNotFoundError from LVM's real failure", async () => {
  const s = standIn("fail-fullreport-vg-not-found");
  try {
    await assert.rejects(s.lvm.report("loamnovg"), VolumeGroupNotFoundError);
  } finally {
    s.cleanup();
  }
});

test("stand-in: report throws VolumeGroupNotFoundError when LVM succeeds without the VG in its answer", async () => {
  const s = standIn("fullreport-empty-vg");
  try {
    await assert.rejects(s.lvm.report("othervg"), VolumeGroupNotFoundError);
  } finally {
    s.cleanup();
  }
});

test("stand-in: createLv builds a linear lvcreate that wipes signatures, zeroes, sizes in bytes and adds each tag", async () => {
  const s = standIn();
  try {
    const tags = [encodeTag("name", "pvc-1"), encodeTag("fs", "xfs")];
    await s.lvm.createLv({ vg: "vg0", name: "pvc-1-0123456789abcdef", sizeBytes: 1000, tags });
    assert.deepEqual(s.calls(), [
      [
        "lvcreate",
        "--yes",
        "--wipesignatures",
        "y",
        "--zero",
        "y",
        "--size",
        "1024b",
        "--name",
        "pvc-1-0123456789abcdef",
        "--addtag",
        tags[0],
        "--addtag",
        tags[1],
        "vg0",
      ],
    ]);
  } finally {
    s.cleanup();
  }
});

test("stand-in: createLv builds striped, raid1, raid10 and thin layouts", async () => {
  const s = standIn();
  try {
    const base = { vg: "vg0", name: "v", sizeBytes: 1 << 20, tags: [] };
    await s.lvm.createLv({ ...base, stripes: 3, stripeSizeBytes: 65536 });
    await s.lvm.createLv({ ...base, mirrors: 1 });
    await s.lvm.createLv({ ...base, mirrors: 1, stripes: 2 });
    await s.lvm.createLv({ ...base, thinPool: "pool0" });
    const calls = s.calls();
    assert.deepEqual(calls[0], [
      "lvcreate",
      "--yes",
      "--wipesignatures",
      "y",
      "--zero",
      "y",
      "--size",
      "1048576b",
      "--type",
      "striped",
      "--stripes",
      "3",
      "--stripesize",
      "64k",
      "--name",
      "v",
      "vg0",
    ]);
    assert.deepEqual(calls[1], [
      "lvcreate",
      "--yes",
      "--wipesignatures",
      "y",
      "--zero",
      "y",
      "--size",
      "1048576b",
      "--type",
      "raid1",
      "--mirrors",
      "1",
      "--name",
      "v",
      "vg0",
    ]);
    assert.deepEqual(calls[2], [
      "lvcreate",
      "--yes",
      "--wipesignatures",
      "y",
      "--zero",
      "y",
      "--size",
      "1048576b",
      "--type",
      "raid10",
      "--mirrors",
      "1",
      "--stripes",
      "2",
      "--name",
      "v",
      "vg0",
    ]);
    assert.deepEqual(calls[3], [
      "lvcreate",
      "--yes",
      "--wipesignatures",
      "y",
      "--type",
      "thin",
      "--virtualsize",
      "1048576b",
      "--thinpool",
      "pool0",
      "--name",
      "v",
      "vg0",
    ]);
  } finally {
    s.cleanup();
  }
});

test("stand-in: failures of createLv map to LogicalVolumeExistsError and InsufficientSpaceError", async () => {
  const exists = standIn("fail-lvcreate-exists");
  const full = standIn("fail-lvcreate-insufficient-space");
  try {
    const spec = { vg: "loamfx", name: "blocker", sizeBytes: 8 << 20, tags: [] };
    await assert.rejects(exists.lvm.createLv(spec), LogicalVolumeExistsError);
    await assert.rejects(full.lvm.createLv(spec), InsufficientSpaceError);
  } finally {
    exists.cleanup();
    full.cleanup();
  }
});

test("stand-in: removeLv, extendLv, addTags and removeTags run one command each on vg/lv", async () => {
  const s = standIn();
  try {
    await s.lvm.removeLv("vg0", "v1");
    await s.lvm.extendLv("vg0", "v1", 2 ** 40);
    await s.lvm.addTags("vg0", "v1", ["a=1", "b"]);
    await s.lvm.removeTags("vg0", "v1", ["a=1"]);
    await s.lvm.addTags("vg0", "v1", []);
    assert.deepEqual(s.calls(), [
      ["lvremove", "--yes", "vg0/v1"],
      ["lvextend", "--size", "1099511627776b", "vg0/v1"],
      ["lvchange", "--addtag", "a=1", "--addtag", "b", "vg0/v1"],
      ["lvchange", "--deltag", "a=1", "vg0/v1"],
    ]);
  } finally {
    s.cleanup();
  }
});

test("stand-in: removeLv of a missing LV throws LogicalVolumeNotFoundError", async () => {
  const s = standIn("fail-lvremove-lv-not-found");
  try {
    await assert.rejects(s.lvm.removeLv("loamfx", "nolv"), LogicalVolumeNotFoundError);
  } finally {
    s.cleanup();
  }
});

test("stand-in: extendLv to the size the LV has succeeds; to a smaller size throws LogicalVolumeShrinkError", async () => {
  const same = standIn("fail-lvextend-same-size");
  const smaller = standIn("fail-lvextend-smaller");
  try {
    await same.lvm.extendLv("loamfx", "twoseg", 16 << 20);
    await assert.rejects(smaller.lvm.extendLv("loamfx", "twoseg", 4 << 20), LogicalVolumeShrinkError);
  } finally {
    same.cleanup();
    smaller.cleanup();
  }
});

test("stand-in: a configured lvm.conf fragment is passed as --config right after the command", async () => {
  const s = standIn(undefined, { config: "devices{use_devicesfile=0}" });
  try {
    await s.lvm.removeLv("vg0", "v1");
    await s.lvm.report("vg0").catch(() => undefined);
    const calls = s.calls();
    assert.deepEqual(calls[0], ["lvremove", "--config", "devices{use_devicesfile=0}", "--yes", "vg0/v1"]);
    assert.deepEqual(calls[1].slice(0, 4), ["lvm", "fullreport", "--config", "devices{use_devicesfile=0}"]);
  } finally {
    s.cleanup();
  }
});

test("stand-in: invalid names, tags, sizes and layouts are refused before any command runs", async () => {
  const s = standIn();
  try {
    const ok = { vg: "vg0", name: "v", sizeBytes: 1 << 20, tags: [] as string[] };
    const bad: Array<Promise<unknown>> = [
      s.lvm.report("--config=x"),
      s.lvm.report("vg0;reboot"),
      s.lvm.createLv({ ...ok, vg: "-vg" }),
      s.lvm.createLv({ ...ok, name: "snapshot1" }),
      s.lvm.createLv({ ...ok, name: "a/../b" }),
      s.lvm.createLv({ ...ok, tags: ["has space"] }),
      s.lvm.createLv({ ...ok, tags: ["t".repeat(1025)] }),
      s.lvm.createLv({ ...ok, sizeBytes: 0 }),
      s.lvm.createLv({ ...ok, sizeBytes: 1.5 }),
      s.lvm.createLv({ ...ok, sizeBytes: 2 ** 60 }),
      s.lvm.createLv({ ...ok, stripes: 0 }),
      s.lvm.createLv({ ...ok, stripes: 2, stripeSizeBytes: 3000 }),
      s.lvm.createLv({ ...ok, stripeSizeBytes: 65536 }),
      s.lvm.createLv({ ...ok, thinPool: "pool0", mirrors: 1 }),
      s.lvm.createLv({ ...ok, thinPool: "-pool" }),
      s.lvm.removeLv("vg0", "$(id)"),
      s.lvm.extendLv("vg0", "v", -1),
      s.lvm.addTags("vg0", "v", ["a,b"]),
      s.lvm.removeTags("vg0", "v", [""]),
      s.lvm.addTags("vg/0", "v", ["a"]),
    ];
    for (const [i, attempt] of bad.entries()) await assert.rejects(attempt, InvalidLvmArgumentError, `case ${i}`);
    assert.deepEqual(s.calls(), []);
  } finally {
    s.cleanup();
  }
});

test("lvmPercent prints usage as lvs does", () => {
  assert.equal(lvmPercent(114, 1024), 11.13);
  assert.equal(lvmPercent(0, 32768), 0);
  assert.equal(lvmPercent(32768, 32768), 100);
  // libdevmapper never shows a used pool as 0.00 or a pool with room as 100.00.
  assert.equal(lvmPercent(1, 1_000_000), 0.01);
  assert.equal(lvmPercent(999_999, 1_000_000), 99.99);
  // 12.125 % is exact in binary: printf rounds the tie to even, toFixed would not.
  assert.equal(lvmPercent(97, 800), 12.12);
  assert.equal(lvmPercent(99, 800), 12.38);
});

test("parseThinPoolStatus reads dmsetup's thin-pool line", () => {
  const usage = parseThinPoolStatus(
    "0 4194304 thin-pool 1 114/1024 3277/32768 - rw discard_passdown queue_if_no_space - 256\n",
    "vg/pool",
  );
  assert.deepEqual(usage, { dataPercent: 10, metadataPercent: 11.13 });
  assert.throws(() => parseThinPoolStatus("0 4194304 linear 8:0 0", "vg/pool"), /not a thin-pool/);
});

test("parseThinPoolHealth reads the pool's mode, needs_check and when-full in LVM's words (lines from real pools)", () => {
  const pool = "tvg/pool";
  // A 16 MiB pool filled by a thin volume larger than it, after lvchange --errorwhenfull y (LVM 2.03.16, kernel 6.1).
  assert.deepEqual(
    parseThinPoolHealth(
      "0 32768 thin-pool 1 114/1024 256/256 - out_of_data_space discard_passdown error_if_no_space - 256 ",
      pool,
    ),
    { dataPercent: 100, metadataPercent: 11.13, healthStatus: "out_of_data", checkNeeded: false, whenFull: "error" },
  );
  // The same pool after lvextend -L +32M.
  assert.deepEqual(
    parseThinPoolHealth("0 98304 thin-pool 1 114/1024 256/768 - rw discard_passdown error_if_no_space - 256 ", pool),
    { dataPercent: 33.33, metadataPercent: 11.13, healthStatus: "", checkNeeded: false, whenFull: "error" },
  );
  // Read-only metadata with needs_check (the kernel's documented form), and a failed pool.
  assert.deepEqual(
    parseThinPoolHealth(
      "0 98304 thin-pool 1 1024/1024 256/768 - ro discard_passdown queue_if_no_space needs_check 256",
      pool,
    ),
    {
      dataPercent: 33.33,
      metadataPercent: 100,
      healthStatus: "metadata_read_only",
      checkNeeded: true,
      whenFull: "queue",
    },
  );
  assert.deepEqual(parseThinPoolHealth("0 98304 thin-pool Fail", pool), {
    dataPercent: null,
    metadataPercent: null,
    healthStatus: "failed",
    checkNeeded: false,
    whenFull: "",
  });
  assert.throws(() => parseThinPoolHealth("0 4194304 linear 8:0 0", pool), /not a thin-pool/);
});

test("stand-in: thinPoolUsage lists thin-pool targets once and takes the -tpool layer or the pool's own name", async () => {
  const s = standIn("dmsetup-status-thin-pool-layered");
  try {
    assert.deepEqual(await s.lvm.thinPoolUsage("pvg", "pool"), { dataPercent: 0, metadataPercent: 11.04 });
    assert.deepEqual(await s.lvm.thinPoolUsage("pvg", "pool2"), { dataPercent: 0, metadataPercent: 10.84 });
    assert.deepEqual(s.calls(), [
      ["dmsetup", "status", "--target", "thin-pool"],
      ["dmsetup", "status", "--target", "thin-pool"],
    ]);
  } finally {
    s.cleanup();
  }
});

test("stand-in: an inactive thin pool is ThinPoolNotActiveError, not a failed command", async () => {
  const s = standIn("dmsetup-status-thin-pool-none");
  try {
    await assert.rejects(
      s.lvm.thinPoolUsage("pvg", "pool"),
      (e: unknown) => e instanceof ThinPoolNotActiveError && /pvg\/pool is not active/.test(e.message),
    );
  } finally {
    s.cleanup();
  }
});

test("thinPoolTargets reads dmsetup's name: status lines and nothing from 'No devices found'", () => {
  const targets = thinPoolTargets(
    "vg--a-pool-tpool: 0 8 thin-pool 0 1/2 0/4 - rw\nvg-b: 0 8 thin-pool 0 1/2 0/4 - rw\n",
  );
  assert.deepEqual([...targets.keys()], ["vg--a-pool-tpool", "vg-b"]);
  assert.equal(targets.get("vg-b"), "0 8 thin-pool 0 1/2 0/4 - rw");
  assert.equal(thinPoolTargets("No devices found\n").size, 0);
});

test("dmName doubles dashes as device-mapper names do", () => {
  assert.equal(dmName("vg-a", "pool-1", "tpool"), "vg--a-pool--1-tpool");
  assert.equal(dmName("vg", "lv"), "vg-lv");
});

/** An Lvm over a scripted runner: each call takes the next reply (success when the script runs out). */
function scripted(replies: Array<Partial<CommandResult>>): { lvm: Lvm; calls: string[][] } {
  const calls: string[][] = [];
  const runner = {
    run: (argv: readonly string[]) => {
      calls.push([...argv]);
      return Promise.resolve({ stdout: "", stderr: "", exitCode: 0, ...replies.shift() });
    },
  } as unknown as CommandRunner;
  return { lvm: new Lvm(runner), calls };
}

const componentActive = (component: string): Partial<CommandResult> => ({
  stderr: `  Activation of logical volume t/p is prohibited while logical volume ${component} is active.\n  Aborting. Failed to locally activate thin pool t/p.\n`,
  exitCode: 5,
});

test("a thin pool component left active by a killed command is deactivated, then the command runs again", async () => {
  const s = scripted([componentActive("t/p_tmeta"), {}, componentActive("t/p_tdata"), {}]);
  await s.lvm.createLv({ vg: "t", name: "b", sizeBytes: 64 << 20, thinPool: "p", tags: [] });
  assert.deepEqual(
    s.calls.map((argv) => argv.slice(0, 1).concat(argv.slice(-1))),
    [
      ["lvcreate", "t"],
      ["lvchange", "t/p_tmeta"],
      ["lvcreate", "t"],
      ["lvchange", "t/p_tdata"],
      ["lvcreate", "t"],
    ],
  );
  assert.deepEqual(s.calls[1], ["lvchange", "--activate", "n", "t/p_tmeta"]);
});

test("the component repair is tried twice at most; then the failure is ComponentActiveError", async () => {
  const s = scripted([
    componentActive("t/p_tmeta"),
    {},
    componentActive("t/p_tmeta"),
    {},
    componentActive("t/p_tmeta"),
  ]);
  await assert.rejects(s.lvm.activateLv("t", "a"), ComponentActiveError);
  assert.equal(s.calls.length, 5);
});

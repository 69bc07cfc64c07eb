/**
 * VolumeEngine over the in-memory LVM stand-in: what the engine decides when LVM fails,
 * pauses or changes behind it (crash and resume of a clone, a volume made by someone else,
 * cancellation), growth, deletion of volumes in use, activation. Each row gets a fresh
 * engine on the fixture VG (2 PVs of 255 extents of 4 MiB; a 512 MiB thin pool, ratio 4).
 * Slightly over 400 lines: one table, its rows sharing the set-ups at the top.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InsufficientSpaceError, lvNameFor, snapshotLvNameFor } from "../../src/lvm/index.js";
import { POPULATING_TAG, tagsFor } from "../../src/volumes/metadata.js";
import { type VolumeErrorKind, VolumeError } from "../../src/volumes/errors.js";
import type { CreateVolumeRequest, VolumeEngine } from "../../src/volumes/engine.js";
import { MiB } from "../../src/volumes/size.js";
import { type InMemoryLvmStandIn, lvmFailure } from "../support/in-memory-lvm.js";
import { EXTENT, VG, makeEngine, thickClass, thinClass } from "../support/engine.js";

const E = EXTENT;
const thick = { shaping: { "loam.csi.dev/deviceClass": "thick" }, metadata: {} };
const thin = { shaping: { "loam.csi.dev/deviceClass": "thin" }, metadata: {} };
const striped = { shaping: { "loam.csi.dev/stripes": "2" }, metadata: {} };
const mib = (n: number, limit = 0) => ({ requiredBytes: BigInt(n * MiB), limitBytes: BigInt(limit * MiB) });
const request = (name: string, size?: number, extra: Partial<CreateVolumeRequest> = {}): CreateVolumeRequest => ({
  name,
  range: size === undefined ? undefined : mib(size),
  parameters: thick,
  ...extra,
});
const id = lvNameFor;

interface World {
  engine: VolumeEngine;
  lvm: InMemoryLvmStandIn;
}

interface EngineRow {
  name: string;
  /** Makes what the row starts from. */
  given?: (w: World) => Promise<unknown>;
  when: (w: World) => Promise<unknown>;
  /** The domain error expected (its kind and a pattern of its message). */
  kind?: VolumeErrorKind;
  message?: RegExp;
  /** Checks after the call (on success, or after the expected failure). */
  then?: (w: World, result: unknown) => void | Promise<void>;
}

async function runRow(row: EngineRow): Promise<void> {
  const world = await makeEngine();
  await row.given?.(world);
  world.lvm.calls.length = 0;
  let result: unknown;
  try {
    result = await row.when(world);
  } catch (error) {
    if (row.kind === undefined) throw error;
    assert.ok(error instanceof VolumeError, `expected a VolumeError, got ${String(error)}`);
    assert.equal(error.kind, row.kind, error.message);
    if (row.message) assert.match(error.message, row.message);
    await row.then?.(world, error);
    return;
  }
  if (row.kind !== undefined) assert.fail(`expected ${row.kind}, but the call succeeded`);
  await row.then?.(world, result);
}

const populating = (w: World, name: string): boolean => w.lvm.lv(VG, id(name))?.tags.includes(POPULATING_TAG) ?? false;

/** Makes a thin volume with content and a snapshot of it; a thick volume with content. */
async function sources({ engine, lvm }: World): Promise<void> {
  await engine.createVolume(request("thin-src", 64, { parameters: thin }));
  lvm.write(VG, id("thin-src"), "thin content", 32 * MiB);
  await engine.createSnapshot({ name: "snap", sourceVolumeId: id("thin-src") });
  await engine.createVolume(request("thick-src", 64));
  lvm.write(VG, id("thick-src"), "thick content");
}

/** A clone interrupted at `failing`, then retried: the mark is seen, then the retry completes it. */
function crashRow(
  name: string,
  clone: CreateVolumeRequest,
  failing: "copyLv" | "extendLv" | "removeTags",
  content: string,
  resumedBy: string[],
): EngineRow {
  return {
    name,
    given: async (w) => {
      await sources(w);
      w.lvm.failNext(failing, (call) => lvmFailure([call.method], ["Input/output error"], 5));
      await assert.rejects(
        w.engine.createVolume(clone),
        (e: unknown) => e instanceof VolumeError && e.kind === "internal" && /populating/.test(e.message),
      );
      assert.ok(populating(w, clone.name), "the LV keeps its populating mark");
      const seen = await w.engine.getVolume(id(clone.name));
      assert.equal(seen?.ready, false);
      assert.match(seen?.condition.message ?? "", /being populated from its source/);
      await assert.rejects(w.engine.ensureActive(id(clone.name)), /still being populated/);
      await assert.rejects(
        w.engine.createSnapshot({ name: "early", sourceVolumeId: id(clone.name) }),
        /still being populated|thick/,
      );
      await assert.rejects(
        w.engine.createVolume(
          request("clone-of-unfinished", undefined, { contentSource: { kind: "volume", id: id(clone.name) } }),
        ),
        /still being populated/,
      );
    },
    when: (w) => w.engine.createVolume(clone),
    then: (w, volume) => {
      assert.deepEqual(
        w.lvm.methods().filter((m) => m !== "reportAll" && m !== "thinPoolUsage"),
        resumedBy,
      );
      assert.equal((volume as { ready: boolean }).ready, true);
      assert.equal(populating(w, clone.name), false);
      assert.equal(w.lvm.contentOf(VG, id(clone.name)), content);
    },
  };
}

const rows: EngineRow[] = [
  crashRow(
    "a thick clone interrupted during its copy resumes the copy on retry",
    request("clone", undefined, { contentSource: { kind: "volume", id: id("thick-src") } }),
    "copyLv",
    "thick content",
    // The source's open flag is read fresh (a report) before a copy of a volume.
    ["report", "copyLv", "removeTags"],
  ),
  crashRow(
    "a thin restore larger than its snapshot, interrupted before growing, grows on retry",
    request("clone", 128, { parameters: thin, contentSource: { kind: "snapshot", id: snapshotLvNameFor("snap") } }),
    "extendLv",
    "thin content",
    ["extendLv", "removeTags"],
  ),
  crashRow(
    "a restore into a thick class interrupted during its copy activates the snapshot and copies again",
    request("clone", undefined, { contentSource: { kind: "snapshot", id: snapshotLvNameFor("snap") } }),
    "copyLv",
    "thin content",
    ["activateLv", "copyLv", "deactivateLv", "removeTags"],
  ),
  crashRow(
    "a clone whose mark could not be cleared copies again and clears it on retry",
    request("clone", undefined, { contentSource: { kind: "volume", id: id("thick-src") } }),
    "removeTags",
    "thick content",
    ["report", "copyLv", "removeTags"],
  ),
  {
    name: "a thin restore of the snapshot's own size is complete when lvcreate returns: no mark, nothing more",
    given: sources,
    when: (w) =>
      w.engine.createVolume(
        request("clone", undefined, {
          parameters: thin,
          contentSource: { kind: "snapshot", id: snapshotLvNameFor("snap") },
        }),
      ),
    then: (w) => {
      assert.deepEqual(
        w.lvm.methods().filter((m) => m !== "reportAll" && m !== "thinPoolUsage"),
        ["createThinSnapshot"],
      );
      assert.equal(populating(w, "clone"), false);
      assert.equal(w.lvm.lv(VG, id("clone"))?.active, true, "a restored volume is writable and active");
    },
  },
  {
    name: "an LV made behind the engine's back between its read and its lvcreate is adopted",
    given: async (w) => {
      await w.engine.listVolumes();
      let once = false;
      w.lvm.beforeEach(async (call) => {
        if (call.method !== "createLv" || once) return;
        once = true;
        await w.lvm.createLv(call.args[0] as Parameters<InMemoryLvmStandIn["createLv"]>[0]);
      });
    },
    when: (w) => w.engine.createVolume(request("raced", 64)),
    then: (w, volume) => {
      assert.equal((volume as { id: string }).id, id("raced"));
      assert.equal(w.lvm.callsOf("createLv").length, 2, "the racing create and the engine's own, refused");
    },
  },
  {
    name: "an LV of the same name with other parameters, made behind its back: ALREADY_EXISTS",
    given: async (w) => {
      await w.engine.listVolumes();
      let once = false;
      w.lvm.beforeEach(async (call) => {
        if (call.method !== "createLv" || once) return;
        once = true;
        const spec = call.args[0] as Parameters<InMemoryLvmStandIn["createLv"]>[0];
        await w.lvm.createLv({
          ...spec,
          thinPool: undefined,
          // The same name's tags, but with no parameters at all.
          tags: tagsFor("raced", spec.name, { shaping: {}, metadata: {} }, { deviceClass: "thin" }),
        });
      });
    },
    when: (w) => w.engine.createVolume(request("raced", 64, { parameters: thin })),
    kind: "already-exists",
    message: /volume "raced" exists with parameters \[\]; this request asks for/,
  },
  {
    name: "two calls for one name at once: one lvcreate, one volume",
    when: async (w) => {
      const pause = w.lvm.pauseBefore("createLv");
      const first = w.engine.createVolume(request("twice", 64));
      await pause.reached;
      const second = w.engine.createVolume(request("twice", 64));
      pause.release();
      return Promise.all([first, second]);
    },
    then: (w, volumes) => {
      const [a, b] = volumes as Array<{ id: string; sizeBytes: number }>;
      assert.deepEqual(a, b);
      assert.equal(w.lvm.callsOf("createLv").length, 1);
    },
  },
  {
    name: "lvcreate refused for space the cached figures promised: RESOURCE_EXHAUSTED with LVM's words",
    given: (w) =>
      Promise.resolve(
        w.lvm.failNext(
          "createLv",
          lvmFailure(["lvcreate"], [`Volume group "${VG}" has insufficient free space (3 extents): 16 required.`]),
        ),
      ),
    when: (w) => w.engine.createVolume(request("nospace", 64)),
    kind: "resource-exhausted",
    message:
      /not enough space in device class "thick" \(volume group loamfx\): requested 67108864 bytes \(lvcreate failed with exit code 5: Volume group "loamfx" has insufficient free space/,
    then: (w) => assert.equal(w.lvm.lv(VG, id("nospace")), undefined),
  },
  {
    name: "any other LVM failure: INTERNAL, naming what was done and what LVM said",
    given: (w) => Promise.resolve(w.lvm.failNext("createLv", lvmFailure(["lvcreate"], ["Failed to write VG loamfx."]))),
    when: (w) => w.engine.createVolume(request("broken", 64)),
    kind: "internal",
    message: /^creating broken-\w+ failed: lvcreate failed with exit code 5: Failed to write VG loamfx\.$/,
  },
  {
    name: "a caller that has given up: ABORTED, nothing made",
    when: (w) => w.engine.createVolume(request("gone", 64), { signal: AbortSignal.abort() }),
    kind: "aborted",
    message: /was cancelled/,
    then: (w) => assert.equal(w.lvm.lv(VG, id("gone")), undefined),
  },
  {
    name: "growing a thick volume: whole extents, from the volume group",
    given: (w) => w.engine.createVolume(request("grow", 64)),
    when: (w) => w.engine.expandVolume(id("grow"), mib(99)),
    then: (w, volume) => {
      assert.equal((volume as { sizeBytes: number }).sizeBytes, 100 * MiB);
      assert.equal(w.lvm.lv(VG, id("grow"))?.sizeBytes, 100 * MiB);
    },
  },
  {
    name: "growing to a size it already has: nothing happens",
    given: (w) => w.engine.createVolume(request("grow", 64)),
    when: (w) => w.engine.expandVolume(id("grow"), mib(32)),
    then: (w, volume) => {
      assert.equal((volume as { sizeBytes: number }).sizeBytes, 64 * MiB);
      assert.deepEqual(w.lvm.callsOf("extendLv"), []);
    },
  },
  {
    name: "growing beyond the free extents: RESOURCE_EXHAUSTED",
    given: (w) => w.engine.createVolume(request("grow", 64)),
    when: (w) => w.engine.expandVolume(id("grow"), mib(2000)),
    kind: "resource-exhausted",
    message:
      /cannot grow grow-\w+ by 2030043136 bytes: 1526726656 bytes available \(volume group loamfx: 364 free extents of 4194304 bytes, 0 kept spare by device class "thick"; linear\)/,
  },
  {
    name: "growing a striped volume: whole stripes",
    given: (w) => w.engine.createVolume(request("grow", 16, { parameters: striped })),
    when: (w) => w.engine.expandVolume(id("grow"), mib(20)),
    then: (w) => assert.equal(w.lvm.lv(VG, id("grow"))?.sizeBytes, 24 * MiB),
  },
  {
    name: "growing a thin volume past its class's overcommit: RESOURCE_EXHAUSTED",
    given: (w) => w.engine.createVolume(request("grow", 64, { parameters: thin })),
    when: (w) => w.engine.expandVolume(id("grow"), mib(4096)),
    kind: "resource-exhausted",
    message:
      /cannot grow grow-\w+ by 4227858432 bytes: 536870912 bytes available \(thin pool loamfx\/pool: pool 536870912 × ratio 4/,
  },
  {
    name: "growing a volume that does not exist: NOT_FOUND",
    when: (w) => w.engine.expandVolume("nosuch", mib(8)),
    kind: "not-found",
    message: /volume nosuch does not exist on this node/,
  },
  {
    name: "deleting a volume in use: FAILED_PRECONDITION, kept",
    given: async (w) => {
      await w.engine.createVolume(request("busy", 8));
      w.lvm.setOpen(VG, id("busy"));
    },
    when: (w) => w.engine.deleteVolume(id("busy")),
    kind: "failed-precondition",
    message: /volume busy-\w+ is in use \(mounted or open\) on this node; unpublish it first/,
    then: (w) => assert.ok(w.lvm.lv(VG, id("busy"))),
  },
  {
    name: "deleting a snapshot a restore is reading: FAILED_PRECONDITION",
    given: async (w) => {
      await sources(w);
      w.lvm.setOpen(VG, snapshotLvNameFor("snap"));
    },
    when: (w) => w.engine.deleteSnapshot(snapshotLvNameFor("snap")),
    kind: "failed-precondition",
    message: /snapshot snap-snap-\w+ is open \(a restore is copying from it\)/,
  },
  {
    name: "deleting a volume that vanished between the read and lvremove: success",
    given: async (w) => {
      await w.engine.createVolume(request("vanish", 8));
      let once = false;
      w.lvm.beforeEach(async (call) => {
        if (call.method !== "removeLv" || once) return;
        once = true;
        await w.lvm.removeLv(VG, id("vanish"));
      });
    },
    when: (w) => w.engine.deleteVolume(id("vanish")),
    then: (w) => assert.equal(w.lvm.lv(VG, id("vanish")), undefined),
  },
  {
    name: "DeleteVolume with a snapshot's id leaves the snapshot",
    given: sources,
    when: (w) => w.engine.deleteVolume(snapshotLvNameFor("snap")),
    then: (w) => assert.ok(w.lvm.lv(VG, snapshotLvNameFor("snap"))),
  },
  {
    name: "an inactive volume (after a reboot) is activated before staging",
    given: async (w) => {
      await w.engine.createVolume(request("asleep", 8));
      await w.lvm.deactivateLv(VG, id("asleep"));
    },
    when: (w) => w.engine.ensureActive(id("asleep")),
    then: (w, volume) => {
      assert.equal((volume as { active: boolean }).active, true);
      assert.deepEqual(
        w.lvm.callsOf("activateLv").map((c) => c.args[1]),
        [id("asleep")],
      );
    },
  },
  {
    name: "an active volume is not activated again",
    given: (w) => w.engine.createVolume(request("awake", 8)),
    when: (w) => w.engine.ensureActive(id("awake")),
    then: (w) => assert.deepEqual(w.lvm.callsOf("activateLv"), []),
  },
  {
    name: "a snapshot that would take the pool past its overcommit: RESOURCE_EXHAUSTED",
    given: async (w) => {
      for (const n of [1, 2, 3, 4]) await w.engine.createVolume(request(`thin-${n}`, 512, { parameters: thin }));
    },
    when: (w) => w.engine.createSnapshot({ name: "one-too-many", sourceVolumeId: id("thin-4") }),
    kind: "resource-exhausted",
    message:
      /cannot snapshot thin-4-\w+: thin pool loamfx\/pool would hold 2684354560 virtual bytes, above pool 536870912 × ratio 4 = 2147483648 bytes of device class "thin"/,
  },
  {
    name: "one thin volume larger than the pool's free data, though within its ratio: RESOURCE_EXHAUSTED",
    when: (w) => w.engine.createVolume(request("over", 1024, { parameters: thin })),
    kind: "resource-exhausted",
    message: /requested 1073741824 bytes, free 536870912 bytes for a thin volume/,
  },
];

for (const row of rows) test(`engine: ${row.name}`, { timeout: 10_000 }, () => runRow(row));

test("engine: a class whose thin pool is missing reports no capacity, and creation says how to fix it", async () => {
  const { engine } = await makeEngine({ thinPoolBytes: 0 });
  assert.deepEqual(await engine.capacity({ parameters: thin }), {
    availableBytes: 0,
    maximumVolumeBytes: 0,
    minimumVolumeBytes: E,
  });
  await assert.rejects(
    engine.createVolume(request("t", 8, { parameters: thin })),
    (e: unknown) =>
      e instanceof VolumeError &&
      e.kind === "failed-precondition" &&
      /thin pool loamfx\/pool of device class "thin" does not exist; create it/.test(e.message),
  );
});

test("engine: a volume group that cannot be read is UNAVAILABLE", async () => {
  const { engine } = await makeEngine({ classes: [thickClass({ volumeGroup: "novg" })] });
  await assert.rejects(
    engine.probe(),
    (e: unknown) =>
      e instanceof VolumeError &&
      e.kind === "unavailable" &&
      /volume group\(s\) novg cannot be read: lvm fullreport failed with exit code 5: Volume group "novg" not found/.test(
        e.message,
      ),
  );
});

test("engine: spare bytes of a class are kept out of its capacity and of creation", async () => {
  const { engine } = await makeEngine({
    classes: [thickClass({ spareBytes: 100 * MiB }), thinClass({ spareBytes: 12 * MiB })],
  });
  assert.equal((await engine.capacity({ parameters: thick })).availableBytes, 355 * E);
  assert.equal((await engine.capacity({ parameters: thin })).availableBytes, 125 * E);
  await assert.rejects(
    engine.createVolume(request("too-big", 356 * 4)),
    (e: unknown) => e instanceof VolumeError && e.kind === "resource-exhausted",
  );
});

test("engine: the stand-in's failure errors are the facade's classes", () => {
  assert.ok(
    lvmFailure(["lvcreate"], ['Volume group "vg" has insufficient free space (1 extents): 2 required.']) instanceof
      InsufficientSpaceError,
  );
});

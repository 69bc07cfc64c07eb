/**
 * A block copy of a volume in use is a torn copy (issue 13, item 9): a clone that copies a
 * source volume that is open (mounted or held) is FAILED_PRECONDITION saying how to get a
 * consistent one, before any LV is made; clones that are thin snapshots in the source's pool
 * and restores from (read-only) snapshots are consistent and go ahead. Over the in-memory
 * LVM stand-in, whose open flag changes no metadata: the cached state never sees it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lvNameFor, snapshotLvNameFor } from "../../src/lvm/index.js";
import { VolumeError } from "../../src/volumes/errors.js";
import type { CreateVolumeRequest } from "../../src/volumes/engine.js";
import { POPULATING_TAG } from "../../src/volumes/metadata.js";
import { MiB } from "../../src/volumes/size.js";
import { type TestEngine, VG, makeEngine } from "../support/engine.js";
import { lvmFailure } from "../support/in-memory-lvm.js";

const thick = { shaping: { "loam.csi.dev/deviceClass": "thick" }, metadata: {} };
const thin = { shaping: { "loam.csi.dev/deviceClass": "thin" }, metadata: {} };
const id = lvNameFor;
const size = { requiredBytes: BigInt(32 * MiB), limitBytes: 0n };
const cloneOf = (name: string, source: string, parameters = thick): CreateVolumeRequest => ({
  name,
  range: undefined,
  parameters,
  contentSource: { kind: "volume", id: id(source) },
});

/** A thick and a thin source with content, a snapshot of the thin one, both sources mounted. */
async function openSources(): Promise<TestEngine> {
  const w = await makeEngine();
  await w.engine.createVolume({ name: "thick-src", range: size, parameters: thick });
  w.lvm.write(VG, id("thick-src"), "thick content");
  await w.engine.createVolume({ name: "thin-src", range: size, parameters: thin });
  w.lvm.write(VG, id("thin-src"), "thin content", 8 * MiB);
  await w.engine.createSnapshot({ name: "snap", sourceVolumeId: id("thin-src") });
  w.lvm.setOpen(VG, id("thick-src"));
  w.lvm.setOpen(VG, id("thin-src"));
  w.lvm.calls.length = 0;
  return w;
}

async function refused(w: TestEngine, request: CreateVolumeRequest, message: RegExp): Promise<void> {
  await assert.rejects(w.engine.createVolume(request), (error: unknown) => {
    assert.ok(error instanceof VolumeError, String(error));
    assert.equal(error.kind, "failed-precondition", error.message);
    assert.match(error.message, message);
    return true;
  });
  assert.equal(w.lvm.lv(VG, id(request.name)), undefined, "no LV is made for a refused clone");
  assert.deepEqual(w.lvm.callsOf("createLv"), []);
  assert.deepEqual(w.lvm.callsOf("copyLv"), []);
}

test("a thick clone of an open thick volume is FAILED_PRECONDITION: a torn copy; unstage it or use a thin class", async () => {
  const w = await openSources();
  await refused(
    w,
    cloneOf("c1", "thick-src"),
    new RegExp(
      `^source volume ${id("thick-src")} is in use \\(open: mounted or held by a process\\) on this node, and a clone into device class "thick" copies its blocks while they may change, which would be a torn copy\\. ` +
        "For a consistent copy, stop the pods that use it \\(unpublish and unstage it\\) and clone it again, or keep volumes that must be cloned while in use in a thin device class",
    ),
  );
  // Closed again (unstaged): the same request copies it.
  w.lvm.setOpen(VG, id("thick-src"), false);
  const made = await w.engine.createVolume(cloneOf("c1", "thick-src"));
  assert.equal(made.ready, true);
  assert.equal(w.lvm.contentOf(VG, id("c1")), "thick content");
});

test("a thick clone of an open thin volume is refused and names the atomic way: a clone in its own pool", async () => {
  const w = await openSources();
  await refused(
    w,
    cloneOf("c2", "thin-src"),
    /clone it in a thin device class on its own pool \(loamfx\/pool\), where a clone is an atomic thin snapshot$/,
  );
});

test("a clone of an open thin volume in its own pool (a thin snapshot) and a restore from a snapshot go ahead", async () => {
  const w = await openSources();
  const clone = await w.engine.createVolume(cloneOf("c3", "thin-src", thin));
  assert.equal(clone.ready, true);
  assert.equal(w.lvm.callsOf("copyLv").length, 0);
  const restored = await w.engine.createVolume({
    name: "r1",
    range: undefined,
    parameters: thick,
    contentSource: { kind: "snapshot", id: snapshotLvNameFor("snap") },
  });
  assert.equal(restored.ready, true);
  assert.equal(w.lvm.contentOf(VG, id("r1")), "thin content");
});

test("a thick clone whose copy was interrupted is not resumed while its source is open", async () => {
  const w = await openSources();
  w.lvm.setOpen(VG, id("thick-src"), false);
  w.lvm.failNext("copyLv", lvmFailure(["dd"], ["dd: error reading: Input/output error"], 1));
  await assert.rejects(w.engine.createVolume(cloneOf("c4", "thick-src")));
  assert.ok(w.lvm.lv(VG, id("c4"))?.tags.includes(POPULATING_TAG));
  w.lvm.setOpen(VG, id("thick-src"));
  w.lvm.calls.length = 0;
  await assert.rejects(w.engine.createVolume(cloneOf("c4", "thick-src")), /would be a torn copy/);
  assert.deepEqual(w.lvm.callsOf("copyLv"), []);
  w.lvm.setOpen(VG, id("thick-src"), false);
  assert.equal((await w.engine.createVolume(cloneOf("c4", "thick-src"))).ready, true);
  assert.equal(w.lvm.contentOf(VG, id("c4")), "thick content");
});

/**
 * Volumes made before the compact tag format (issue 20 item 3) keep working for every engine
 * operation: LVs carrying exactly the tags of test/fixtures/tags/v1.json are put in the
 * in-memory LVM stand-in behind the engine's back, as an upgraded node finds them, and are
 * looked up, listed, adopted by a retried CreateVolume, expanded, snapshotted, cloned, restored
 * from, modified, marked, resumed and deleted. What loam makes from them is in the new format.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { MiB } from "../../src/volumes/size.js";
import { FORMATTING_TAG, POPULATING_TAG, metadataOf } from "../../src/volumes/metadata.js";
import type { ContentSource } from "../../src/volumes/metadata.js";
import { VolumeError } from "../../src/volumes/errors.js";
import type { CreateVolumeRequest } from "../../src/volumes/volume.js";
import { snapshotLvNameFor, lvNameFor } from "../../src/lvm/names.js";
import { THIN_POOL, VG, makeEngine } from "../support/engine.js";

interface Fixture {
  shape: string;
  lvName: string;
  segType: string;
  tags: string[];
  metadata: {
    name: string;
    kind: string;
    parameters: string;
    claim: Record<string, string>;
    deviceClass?: string;
    source?: ContentSource;
  };
}
const { volumes } = JSON.parse(
  readFileSync(new URL("../../../test/fixtures/tags/v1.json", import.meta.url), "utf8"),
) as { volumes: Fixture[] };
const fixture = (shape: string): Fixture => {
  const found = volumes.find((f) => f.shape === shape);
  assert.ok(found, shape);
  return found;
};

const SIZE = 64 * MiB;
/** The complete old volumes upgradedNode() puts in the VG. */
const SEEDED_VOLUMES = [
  "thick",
  "thin",
  "encrypted",
  "io-limited",
  "cluster mode, a name's second incarnation (LV name chosen by the controller)",
];
const CLAIM_KEYS: Record<string, string> = {
  pvc: "csi.storage.k8s.io/pvc/name",
  namespace: "csi.storage.k8s.io/pvc/namespace",
  pv: "csi.storage.k8s.io/pv/name",
};
/** The CreateVolume request the fixture's volume was made for. */
function requestOf(f: Fixture): CreateVolumeRequest {
  const shaping = Object.fromEntries(JSON.parse(f.metadata.parameters) as Array<[string, string]>);
  const metadata = Object.fromEntries(Object.entries(f.metadata.claim).map(([k, v]) => [CLAIM_KEYS[k] ?? k, v]));
  const request: CreateVolumeRequest = {
    name: f.metadata.name,
    range: { requiredBytes: BigInt(SIZE), limitBytes: 0n },
    parameters: { shaping, metadata },
  };
  if (f.lvName !== lvNameFor(f.metadata.name)) request.id = f.lvName;
  if (f.metadata.source) request.contentSource = f.metadata.source;
  return request;
}

/** An engine whose VG already holds the old volumes: thick, thin, a snapshot of the thin one, encrypted, io-limited, cluster mode's second incarnation, an interrupted clone. */
async function upgradedNode() {
  const made = await makeEngine();
  const { lvm } = made;
  const thin = (shape: string) => {
    const f = fixture(shape);
    return lvm.createLv({ vg: VG, name: f.lvName, sizeBytes: SIZE, tags: f.tags, thinPool: THIN_POOL });
  };
  const thick = (shape: string) => {
    const f = fixture(shape);
    return lvm.createLv({ vg: VG, name: f.lvName, sizeBytes: SIZE, tags: f.tags });
  };
  await thick("thick");
  await thin("thin");
  lvm.write(VG, fixture("thin").lvName, "old thin content", SIZE);
  const snapshot = fixture("snapshot");
  await lvm.createThinSnapshot({
    vg: VG,
    origin: fixture("thin").lvName,
    name: snapshot.lvName,
    tags: snapshot.tags,
    writable: false,
  });
  await thick("encrypted");
  await thin("io-limited");
  await thick("cluster mode, a name's second incarnation (LV name chosen by the controller)");
  await thick("clone of a volume, being populated");
  lvm.write(VG, fixture("thick").lvName, "old thick content");
  lvm.calls.length = 0;
  return made;
}

test("old-format volumes: listed and looked up with their names, claims, classes, sources, encryption and IO limits", async () => {
  const { engine } = await upgradedNode();
  const listed = await engine.listVolumes();
  const byId = new Map(listed.map((v) => [v.id, v]));
  for (const shape of SEEDED_VOLUMES) {
    const f = fixture(shape);
    const volume = byId.get(f.lvName);
    assert.ok(volume, `${shape} is listed`);
    assert.equal(volume.name, f.metadata.name, shape);
    assert.deepEqual(volume.claim, f.metadata.claim, shape);
    assert.equal(volume.deviceClass, f.metadata.deviceClass, shape);
    assert.deepEqual(await engine.getVolume(f.lvName), volume, shape);
  }
  assert.equal(byId.get(fixture("encrypted").lvName)?.encryption?.cipher, "serpent-xts-plain64");
  assert.ok(byId.get(fixture("io-limited").lvName)?.ioLimits, "the io-limited volume's limits are read");
  assert.equal(byId.get(fixture("clone of a volume, being populated").lvName)?.ready, false);
  const snapshots = await engine.listSnapshots();
  assert.deepEqual(
    snapshots.map((s) => [s.id, s.name, s.sourceVolumeId, s.createdAt.toISOString()]),
    [
      [
        fixture("snapshot").lvName,
        fixture("snapshot").metadata.name,
        fixture("thin").lvName,
        "2026-11-23T12:01:29.123Z",
      ],
    ],
  );
});

test("old-format volumes: a retried CreateVolume adopts each one without an lvcreate, and other parameters are ALREADY_EXISTS", async () => {
  const { engine, lvm } = await upgradedNode();
  for (const shape of SEEDED_VOLUMES) {
    const f = fixture(shape);
    const volume = await engine.createVolume(requestOf(f));
    assert.equal(volume.id, f.lvName, shape);
    assert.deepEqual(lvm.lv(VG, f.lvName)?.tags, f.tags, `${shape}: its tags are untouched`);
  }
  assert.equal(lvm.callsOf("createLv").length, 0);
  const other = requestOf(fixture("thick"));
  other.parameters = { ...other.parameters, shaping: { "loam.csi.dev/deviceClass": "thin" } };
  await assert.rejects(engine.createVolume(other), (e) => e instanceof VolumeError && e.kind === "already-exists");
  const snapshot = fixture("snapshot");
  const again = await engine.createSnapshot({ name: snapshot.metadata.name, sourceVolumeId: fixture("thin").lvName });
  assert.equal(again.id, snapshot.lvName);
  assert.equal(lvm.callsOf("createThinSnapshot").length, 0);
});

test("old-format volumes: an interrupted clone is resumed and completed, its mark removed and nothing else changed", async () => {
  const { engine, lvm } = await upgradedNode();
  const f = fixture("clone of a volume, being populated");
  const volume = await engine.createVolume(requestOf(f));
  assert.equal(volume.id, f.lvName);
  assert.equal(volume.ready, true);
  const tags = lvm.lv(VG, f.lvName)?.tags ?? [];
  assert.ok(!tags.includes(POPULATING_TAG));
  assert.deepEqual(
    tags,
    f.tags.filter((t) => t !== POPULATING_TAG),
  );
  assert.equal(lvm.contentOf(VG, f.lvName), "old thick content", "the source's content was copied in");
  assert.deepEqual(metadataOf(lvm.lv(VG, f.lvName)!)?.source, f.metadata.source);
});

test("old-format volumes: expanded, marked and unmarked, modified in their own format, deleted", async () => {
  const { engine, lvm } = await upgradedNode();
  const thick = fixture("thick");
  const grown = await engine.expandVolume(thick.lvName, { requiredBytes: BigInt(2 * SIZE), limitBytes: 0n });
  assert.equal(grown.sizeBytes, 2 * SIZE);
  await engine.markFormatting(thick.lvName);
  assert.deepEqual(lvm.lv(VG, thick.lvName)?.tags, [...thick.tags, FORMATTING_TAG]);
  assert.equal((await engine.getVolume(thick.lvName))?.formatting, true);
  await engine.clearFormatting(thick.lvName);
  assert.deepEqual(lvm.lv(VG, thick.lvName)?.tags, thick.tags);

  const io = fixture("io-limited");
  const shaping = { "loam.csi.dev/deviceClass": "thin", "loam.csi.dev/readIOPS": "900" };
  assert.equal(await engine.setShaping(io.lvName, shaping), true);
  const tags = lvm.lv(VG, io.lvName)?.tags ?? [];
  assert.ok(
    tags.every((t) => !t.startsWith("loam.csi.dev/v2")),
    `still the first format: ${tags.join(" ")}`,
  );
  assert.equal(tags.filter((t) => t.startsWith("loam.csi.dev/params=")).length, 1);
  const modified = await engine.getVolume(io.lvName);
  assert.equal(modified?.name, io.metadata.name);
  assert.deepEqual(modified?.ioLimits?.limits.readIops, { absolute: 900 });
  assert.equal(await engine.setShaping(io.lvName, shaping), false, "already recorded");

  await engine.deleteSnapshot(fixture("snapshot").lvName);
  assert.equal(lvm.lv(VG, fixture("snapshot").lvName), undefined);
  for (const shape of ["thick", "thin", "encrypted"]) {
    await engine.deleteVolume(fixture(shape).lvName);
    assert.equal(lvm.lv(VG, fixture(shape).lvName), undefined, `${shape} deleted`);
  }
});

test("old-format volumes: snapshotted, cloned and restored from; what is made from them is in the compact format", async () => {
  const { engine, lvm } = await upgradedNode();
  const thin = fixture("thin");
  const snapshot = await engine.createSnapshot({ name: "snap-of-old", sourceVolumeId: thin.lvName });
  assert.equal(snapshot.id, snapshotLvNameFor("snap-of-old"));
  assert.deepEqual(
    lvm.lv(VG, snapshot.id)?.tags.map((t) => t.slice(0, 16)),
    ["loam.csi.dev/v2:"],
  );
  assert.equal((await engine.getSnapshot(snapshot.id))?.sourceVolumeId, thin.lvName);

  const params = { shaping: { "loam.csi.dev/deviceClass": "thin" }, metadata: {} };
  const range = { requiredBytes: BigInt(SIZE), limitBytes: 0n };
  const restored = await engine.createVolume({
    name: "restore-of-old-snapshot",
    range,
    parameters: params,
    contentSource: { kind: "snapshot", id: fixture("snapshot").lvName },
  });
  assert.equal(lvm.contentOf(VG, restored.id), "old thin content");
  assert.deepEqual(restored.contentSource, { kind: "snapshot", id: fixture("snapshot").lvName });
  const cloned = await engine.createVolume({
    name: "clone-of-old-thick",
    range,
    parameters: { shaping: { "loam.csi.dev/deviceClass": "thick" }, metadata: {} },
    contentSource: { kind: "volume", id: fixture("thick").lvName },
  });
  assert.equal(lvm.contentOf(VG, cloned.id), "old thick content");
  assert.equal(cloned.ready, true);
  const clonedMetadata = metadataOf(lvm.lv(VG, cloned.id)!);
  assert.equal(clonedMetadata?.format, 2);
  assert.deepEqual(clonedMetadata?.source, { kind: "volume", id: fixture("thick").lvName });
  assert.equal(clonedMetadata?.populating, false);
});

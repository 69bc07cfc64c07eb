/**
 * The LV tag formats (src/volumes/metadata.ts, issue 20 item 3): volumes written by the first
 * format (test/fixtures/tags/v1.json, captured from loam before the compact format) read as
 * they always did; the compact format reads back what it was given for every shape; it is
 * strict about what it reads; and the bytes each volume costs in the VG metadata.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeTags, encodeFields, isValidTag } from "../../src/lvm/tags.js";
import { lvNameFor, snapshotLvNameFor } from "../../src/lvm/names.js";
import {
  type ContentSource,
  type VolumeMetadata,
  FORMATTING_TAG,
  POPULATING_TAG,
  SHAPING_CODES,
  metadataOf,
  nameFromLvName,
  shapingChange,
  snapshotTagsFor,
  tagsFor,
} from "../../src/volumes/metadata.js";
import { PARAMETERS, type VolumeParameters } from "../../src/volumes/parameters.js";
import { firstFormatTags } from "../../tools/bench/metadata-bytes.js";

interface Fixture {
  shape: string;
  lvName: string;
  segType: string;
  tags: string[];
  metadata: Omit<VolumeMetadata, "createdAt" | "format"> & { createdAt?: string };
}
const fixtures = JSON.parse(readFileSync(new URL("../../../test/fixtures/tags/v1.json", import.meta.url), "utf8")) as {
  populatingTag: string;
  formattingTag: string;
  volumes: Fixture[];
};

const expected = (f: Fixture, format: 1 | 2): VolumeMetadata => {
  const { createdAt, ...rest } = f.metadata;
  return { ...rest, ...(createdAt === undefined ? {} : { createdAt: new Date(createdAt) }), format };
};
const lv = (name: string, tags: readonly string[]) => ({ name, tags });

/** The request a fixture's volume was made from, as its metadata records it. */
function parametersOf(f: Fixture): VolumeParameters {
  const shaping = Object.fromEntries(JSON.parse(f.metadata.parameters) as Array<[string, string]>);
  const claim = f.metadata.claim;
  const metadata: Record<string, string> = {};
  if (claim.pvc !== undefined) metadata["csi.storage.k8s.io/pvc/name"] = claim.pvc;
  if (claim.namespace !== undefined) metadata["csi.storage.k8s.io/pvc/namespace"] = claim.namespace;
  if (claim.pv !== undefined) metadata["csi.storage.k8s.io/pv/name"] = claim.pv;
  return { shaping, metadata };
}

/** The tags the compact format gives the fixture's volume (or snapshot). */
function compactTags(f: Fixture): string[] {
  const m = f.metadata;
  if (m.kind === "snapshot") {
    const createdAt = new Date(m.createdAt ?? 0);
    return snapshotTagsFor(m.name, f.lvName, m.source?.id ?? "", createdAt, m.deviceClass);
  }
  const options: { deviceClass?: string; source?: ContentSource; populating?: boolean } = {};
  if (m.deviceClass !== undefined) options.deviceClass = m.deviceClass;
  if (m.source) options.source = m.source;
  if (m.populating) options.populating = true;
  const tags = tagsFor(m.name, f.lvName, parametersOf(f), options);
  return m.formatting ? [...tags, FORMATTING_TAG] : tags;
}

/** What the tags cost in the VG's text metadata: `tags = ["a", "b"]` and its newline (LVM writes no indentation there). */
const metadataBytes = (tags: readonly string[]): number =>
  tags.length === 0 ? 0 : Buffer.byteLength(`tags = [${tags.map((t) => `"${t}"`).join(", ")}]\n`);

test("volumes written by the first tag format read as that loam read them, for every shape in the fixtures", () => {
  assert.ok(fixtures.volumes.length >= 12);
  for (const f of fixtures.volumes) assert.deepEqual(metadataOf(lv(f.lvName, f.tags)), expected(f, 1), f.shape);
  // The marks are the same tags in both formats.
  assert.equal(POPULATING_TAG, fixtures.populatingTag);
  assert.equal(FORMATTING_TAG, fixtures.formattingTag);
});

test("the first format's writer the metadata-bytes bench measures writes what loam wrote", () => {
  const f = fixtures.volumes.find((v) => v.shape === "thick");
  assert.ok(f);
  assert.deepEqual(firstFormatTags(f.metadata.name, parametersOf(f), "thick"), f.tags);
});

test("the compact format reads back the same metadata as the first one, for every shape in the fixtures", () => {
  for (const f of fixtures.volumes) {
    const tags = compactTags(f);
    for (const tag of tags) assert.ok(isValidTag(tag), `${f.shape}: ${tag} is a valid LVM tag`);
    assert.deepEqual(metadataOf(lv(f.lvName, tags)), expected(f, 2), `${f.shape}: ${tags.join(" ")}`);
    // The first format's decoder, which an older loam runs, finds nothing of its own in them.
    assert.deepEqual(
      [...decodeTags(tags).keys()].sort(),
      [f.metadata.populating ? "state" : "", f.metadata.formatting ? "fmt" : ""].filter(Boolean).sort(),
      f.shape,
    );
  }
});

test("the compact tag of a Kubernetes volume leaves out what the LV name and the CSI name give back", () => {
  const thick = fixtures.volumes.find((f) => f.shape === "thick");
  assert.ok(thick);
  assert.deepEqual(compactTags(thick), ["loam.csi.dev/v2:p=data-postgres-0:s=databases:v=:D=thick"]);
  const snapshot = fixtures.volumes.find((f) => f.shape === "snapshot");
  assert.ok(snapshot);
  // external-snapshotter's "snapshot-<uuid>" is 45 characters, longer than an LV name's readable part: written.
  assert.deepEqual(compactTags(snapshot), [
    "loam.csi.dev/v2:n=snapshot-4e1b8f6a-2d9c-4a73-b05e-8c3f1a6d2b90:k=snapshot:c=thin:fv=pvc-7d0f9a52-1c3e-4b8a-a6f1-5e2d9c8b7a60-081ab6518609e457:t=1795435289123",
  ]);
});

test("bytes per volume in the VG metadata: the compact tags cost under half of the first format's for every volume, a fifth for a Kubernetes volume", (t) => {
  const rows = fixtures.volumes.map((f) => ({
    shape: f.shape,
    kind: f.metadata.kind,
    v1: metadataBytes(f.tags),
    v2: metadataBytes(compactTags(f)),
  }));
  for (const row of rows) t.diagnostic(`${row.shape}: ${row.v1} -> ${row.v2} bytes of tags`);
  const thick = rows.find((r) => r.shape === "thick");
  assert.deepEqual(thick, { shape: "thick", kind: "volume", v1: 343, v2: 68 });
  for (const row of rows) {
    // A snapshot's name and source volume id are long and never derivable: it saves less.
    const bound = row.kind === "volume" ? row.v1 / 2 : row.v1 * 0.6;
    assert.ok(row.v2 < bound, `${row.shape}: ${row.v2} is under ${bound}`);
  }
});

test("the CSI name is left out only when the LV name gives it back exactly", () => {
  const cases: Array<[string, boolean]> = [
    ["pvc-2b6f2c1e-8f7a-4c4e-9d3a-0d5c1f2e3a4b", true],
    ["bench-existing-00001", true],
    ["Upper-Case", false],
    ["under_score", false],
    ["dots.in.name", false],
    ["a".repeat(41), false],
    ["snapshot-x", false],
    ["-", false],
  ];
  const none: VolumeParameters = { shaping: {}, metadata: {} };
  for (const [name, derivable] of cases) {
    assert.equal(nameFromLvName(lvNameFor(name), "volume") === name, derivable, name);
    const tags = tagsFor(name, lvNameFor(name), none);
    assert.equal(tags[0]?.includes(":n="), !derivable, `${name}: ${tags[0]}`);
    assert.equal(metadataOf(lv(lvNameFor(name), tags))?.name, name);
    const snapshot = snapshotTagsFor(name, snapshotLvNameFor(name), "src", new Date(0), undefined);
    assert.equal(metadataOf(lv(snapshotLvNameFor(name), snapshot))?.name, name, `snapshot ${name}`);
  }
  // Cluster mode's later incarnation of a name: the LV name is not lvNameFor(name), so the name is written.
  const incarnation = lvNameFor("pvc-1\u00001");
  const tags = tagsFor("pvc-1", incarnation, none);
  assert.match(tags[0] ?? "", /:n=pvc-1(:|$)/);
  assert.equal(metadataOf(lv(incarnation, tags))?.name, "pvc-1");
  // An LV renamed by hand (its name gives back nothing) is not read as loam's: it is left alone.
  assert.equal(metadataOf(lv("renamed", tagsFor("pvc-2", lvNameFor("pvc-2"), none))), undefined);
});

test("values outside the raw alphabet travel as base64url and come back exactly", () => {
  const name = "név ünïcode:=/!";
  const tags = tagsFor(name, lvNameFor(name), { shaping: {}, metadata: { "csi.storage.k8s.io/pvc/name": "a:b" } });
  assert.ok(isValidTag(tags[0] ?? ""));
  const m = metadataOf(lv(lvNameFor(name), tags));
  assert.equal(m?.name, name);
  assert.deepEqual(m?.claim, { pvc: "a:b" });
});

test("the compact format is strict: anything it does not know makes the LV unreadable, never half-read", () => {
  const id = lvNameFor("pvc-1");
  const good = "loam.csi.dev/v2:p=x:D=thick";
  assert.equal(metadataOf(lv(id, [good]))?.deviceClass, "thick");
  const bad = [
    "loam.csi.dev/v2:p=x:zz=1", // an unknown field
    "loam.csi.dev/v2:p=x:QQ=1", // an unknown shaping code
    "loam.csi.dev/v2:p=x:p=y", // a field twice
    "loam.csi.dev/v2:p", // no '='
    "loam.csi.dev/v2:p=a b", // a value neither raw nor encoded
    "loam.csi.dev/v2:p=!eA", // a raw-safe value written encoded
    "loam.csi.dev/v2:k=volume", // a kind other than snapshot
    "loam.csi.dev/v2:k=snapshot:t=soon", // a time that is not milliseconds
    "loam.csi.dev/v2:fv=a:fs=b", // two sources
  ];
  for (const tag of bad) assert.equal(metadataOf(lv(id, [tag])), undefined, tag);
  assert.equal(metadataOf(lv(id, [good, "loam.csi.dev/v2:p=y"])), undefined, "two identity tags");
  // Someone else's tags and the first format's keys are no compact tag.
  assert.equal(metadataOf(lv(id, ["loam.csi.dev/v2=eA", "loam.csi.dev/v20:p=x", "other"])), undefined);
});

test("every shaping parameter has a code of its own, and the codes never collide with the identity fields", () => {
  const shaping = PARAMETERS.filter((d) => !d.metadata).map((d) => d.key);
  assert.deepEqual(Object.keys(SHAPING_CODES).sort(), [...shaping].sort());
  const codes = Object.values(SHAPING_CODES);
  assert.equal(new Set(codes).size, codes.length);
  for (const code of codes) assert.match(code, /^[A-Z]{1,4}$/);
  assert.throws(() =>
    encodeFields("v2", [
      ["n", "a"],
      ["n", "b"],
    ]),
  );
});

test("new shaping parameters are recorded in the format the volume was made with", () => {
  const io = fixtures.volumes.find((f) => f.shape === "io-limited");
  assert.ok(io);
  const limits = { "loam.csi.dev/deviceClass": "thin", "loam.csi.dev/readIOPS": "900" };
  const wanted = JSON.stringify(Object.entries(limits).sort());

  // First format: its parameter tag is replaced by another of the first format.
  const v1 = metadataOf(lv(io.lvName, io.tags));
  assert.ok(v1);
  const change1 = shapingChange(lv(io.lvName, io.tags), v1, limits);
  assert.ok(change1);
  assert.deepEqual(
    change1.remove,
    io.tags.filter((t) => t.startsWith("loam.csi.dev/params=")),
  );
  const after1 = [...io.tags.filter((t) => !change1.remove.includes(t)), change1.add];
  assert.equal(metadataOf(lv(io.lvName, after1))?.parameters, wanted);
  assert.equal(metadataOf(lv(io.lvName, after1))?.format, 1);
  assert.equal(shapingChange(lv(io.lvName, after1), metadataOf(lv(io.lvName, after1))!, limits), undefined);

  // Compact: a numbered parameter tag; the identity tag is never touched.
  const tags = compactTags(io);
  const v2 = metadataOf(lv(io.lvName, tags));
  assert.ok(v2);
  const change2 = shapingChange(lv(io.lvName, tags), v2, limits);
  assert.deepEqual(change2, { add: "loam.csi.dev/v2p:q=1:D=thin:RI=900", remove: [] });
  const after2 = [...tags, change2?.add ?? ""];
  assert.equal(metadataOf(lv(io.lvName, after2))?.parameters, wanted);
  const again = { ...limits, "loam.csi.dev/readIOPS": "50" };
  const change3 = shapingChange(lv(io.lvName, after2), metadataOf(lv(io.lvName, after2))!, again);
  assert.deepEqual(change3, {
    add: "loam.csi.dev/v2p:q=2:D=thin:RI=50",
    remove: ["loam.csi.dev/v2p:q=1:D=thin:RI=900"],
  });
  // A crash between adding the new tag and removing the old: the higher number is in force.
  const torn = [...after2, change3?.add ?? ""];
  assert.equal(metadataOf(lv(io.lvName, torn))?.parameters, JSON.stringify(Object.entries(again).sort()));
  // Two of one number (never written) cannot be told apart: unreadable.
  assert.equal(metadataOf(lv(io.lvName, [...after2, "loam.csi.dev/v2p:q=1:D=thin"])), undefined);
});

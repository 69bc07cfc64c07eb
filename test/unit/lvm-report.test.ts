import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { FULLREPORT_ARGS, parseFullReport, ReportParseError } from "../../src/lvm/index.js";
import { topLevelName } from "../../src/lvm/report.js";

interface Fixture {
  argv: string[];
  stdout: string;
  exitCode: number;
}

const fixture = (name: string): Fixture =>
  JSON.parse(readFileSync(new URL(`../../../test/fixtures/lvm/${name}.json`, import.meta.url), "utf8")) as Fixture;

test("the fixtures were captured with exactly the fullreport columns the parser asks for", () => {
  for (const name of [
    "fullreport-linear-striped",
    "fullreport-empty-vg",
    "fullreport-two-vgs",
    "fullreport-missing-pv",
  ]) {
    const argv = fixture(name).argv;
    const at = argv.indexOf("--reportformat");
    assert.deepEqual(argv.slice(at, at + FULLREPORT_ARGS.length), [...FULLREPORT_ARGS], name);
  }
});

test("a PV LVM cannot find: missing, named [unknown], its uuid kept; the LVs with extents on it say so", () => {
  const [report] = parseFullReport(fixture("fullreport-missing-pv").stdout);
  const [first, second] = report.pvs;
  assert.deepEqual([first.name, first.missing], ["/dev/loop0", false]);
  assert.deepEqual([second.name, second.missing], ["[unknown]", true]);
  const on = (uuid: string): string[] => report.lvs.filter((lv) => lv.pvUuids.includes(uuid)).map((lv) => lv.name);
  // The striped LV spans both PVs; the linear ones were allocated on the first.
  assert.deepEqual(on(second.uuid), ["striped-9f00aa11bb22cc33"]);
  assert.ok(on(first.uuid).includes("pvc-0a1b2c3d-5f3e1c2a9b7d4e60"));
  assert.equal(report.lvs.find((lv) => lv.name === "striped-9f00aa11bb22cc33")?.healthStatus, "partial");
});

test("hidden sub-LVs' extents belong to their top-level LV, by LVM's reserved suffixes", () => {
  const cases: Array<[string, string]> = [
    ["[pool_tdata]", "pool"],
    ["[pool_tmeta]", "pool"],
    ["[rp_tdata_rimage_0]", "rp"],
    ["[r_rmeta_1]", "r"],
    ["[lvol0_pmspare]", "lvol0_pmspare"],
    ["pvc-0a1b2c3d", "pvc-0a1b2c3d"],
    ["", ""],
  ];
  for (const [name, owner] of cases) assert.equal(topLevelName(name), owner, name);
});

test("parses a real fullreport: VG numbers, PVs, tagged linear, striped and two-segment LVs", () => {
  const reports = parseFullReport(fixture("fullreport-linear-striped").stdout);
  assert.equal(reports.length, 1);
  const { vg, pvs, lvs } = reports[0];
  assert.equal(vg.name, "loamfx");
  assert.match(vg.uuid, /^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/);
  assert.equal(vg.sizeBytes, 2139095040);
  assert.equal(vg.extentSizeBytes, 4 * 1024 * 1024);
  assert.equal(vg.extentCount, 510);
  assert.equal(vg.freeExtentCount, 463);
  assert.equal(vg.freeBytes, vg.freeExtentCount * vg.extentSizeBytes);
  assert.equal(vg.pvCount, 2);
  assert.equal(vg.lvCount, 4);
  assert.deepEqual(vg.tags, ["loam.csi.dev/device-class=fast"]);

  assert.deepEqual(
    pvs.map((pv) => [pv.name, pv.vgName, pv.sizeBytes]),
    [
      ["/dev/loop0", "loamfx", 1069547520],
      ["/dev/loop1", "loamfx", 1069547520],
    ],
  );
  assert.equal(
    pvs.reduce((sum, pv) => sum + pv.freeBytes, 0),
    vg.freeBytes,
  );

  const byName = new Map(lvs.map((lv) => [lv.name, lv]));
  assert.deepEqual([...byName.keys()].sort(), [
    "blocker",
    "pvc-0a1b2c3d-5f3e1c2a9b7d4e60",
    "striped-9f00aa11bb22cc33",
    "twoseg",
  ]);
  const tagged = byName.get("pvc-0a1b2c3d-5f3e1c2a9b7d4e60")!;
  assert.equal(tagged.sizeBytes, 104857600);
  assert.equal(tagged.vgName, "loamfx");
  assert.equal(tagged.segType, "linear");
  assert.equal(tagged.stripes, 1);
  assert.deepEqual(tagged.tags, ["loam.csi.dev/fs=eGZz", "loam.csi.dev/name=cHZjLTBhMWIyYzNk"]);
  assert.equal(tagged.devicePath, "/dev/loamfx/pvc-0a1b2c3d-5f3e1c2a9b7d4e60");
  assert.equal(tagged.active, false);
  assert.equal(tagged.dataPercent, null);
  assert.equal(tagged.metadataPercent, null);
  assert.equal(tagged.copyPercent, null);
  assert.equal(tagged.poolLv, "");
  assert.equal(tagged.origin, "");
  assert.deepEqual(tagged.roles, ["public"]);
  assert.equal(tagged.internal, false);
  assert.equal(tagged.attr, "-wi-XX----");

  const striped = byName.get("striped-9f00aa11bb22cc33")!;
  assert.equal(striped.segType, "striped");
  assert.equal(striped.stripes, 2);
  assert.equal(striped.stripeSizeBytes, 65536);
  assert.equal(striped.sizeBytes, 64 * 1024 * 1024);

  const twoseg = byName.get("twoseg")!;
  assert.equal(twoseg.segmentCount, 2);
  assert.equal(twoseg.sizeBytes, 16 * 1024 * 1024);
});

test("a VG without LVs reports an empty LV list", () => {
  const [report] = parseFullReport(fixture("fullreport-empty-vg").stdout);
  assert.deepEqual(report.lvs, []);
  assert.equal(report.vg.lvCount, 0);
  assert.equal(report.vg.freeBytes, report.vg.sizeBytes);
});

test("a fullreport naming two VGs gives one entry per VG, PVs kept with their own VG", () => {
  const reports = parseFullReport(fixture("fullreport-two-vgs").stdout);
  assert.deepEqual(reports.map((r) => r.vg.name).sort(), ["loamfx", "loamfx2"]);
  const second = reports.find((r) => r.vg.name === "loamfx2")!;
  assert.equal(second.pvs.length, 1);
  assert.equal(second.pvs[0].vgName, "loamfx2");
  assert.deepEqual(second.lvs, []);
});

test("extra columns (LVM's default fullreport) are ignored", () => {
  const [report] = parseFullReport(fixture("fullreport-all-columns").stdout);
  assert.equal(report.lvs.length, 4);
  assert.equal(report.vg.name, "loamfx");
});

test("the metadata area's size and free space come from vg_mda_size and vg_mda_free, absent when not reported", () => {
  const [full] = parseFullReport(fixture("fullreport-all-columns").stdout);
  assert.equal(full.vg.metadataAreaBytes, 1044480);
  assert.equal(full.vg.metadataFreeBytes, 518656);
  const doc = JSON.parse(fixture("fullreport-linear-striped").stdout) as {
    report: Array<{ vg: Array<Record<string, string>> }>;
  };
  delete doc.report[0].vg[0].vg_mda_size;
  delete doc.report[0].vg[0].vg_mda_free;
  const [narrow] = parseFullReport(JSON.stringify(doc));
  assert.equal(narrow.vg.metadataAreaBytes, undefined);
  assert.equal(narrow.vg.metadataFreeBytes, undefined);
});

test("the active flag follows lv_active and the attr letter", () => {
  const doc = JSON.parse(fixture("fullreport-linear-striped").stdout) as {
    report: Array<{ lv: Array<Record<string, string>> }>;
  };
  doc.report[0].lv[0].lv_active = "active";
  doc.report[0].lv[1].lv_attr = "-wi-a-----";
  const lvs = parseFullReport(JSON.stringify(doc))[0].lvs;
  assert.equal(lvs[0].active, true);
  assert.equal(lvs[1].active, true);
  assert.equal(lvs[2].active, false);
});

test("percentages parse as numbers, json_std tag arrays as lists, private roles as internal", () => {
  const doc = JSON.parse(fixture("fullreport-linear-striped").stdout) as {
    report: Array<{ lv: Array<Record<string, unknown>> }>;
  };
  Object.assign(doc.report[0].lv[0], {
    data_percent: "12.50",
    metadata_percent: "0.98",
    copy_percent: "100.00",
    lv_tags: ["a", "b=c"],
    lv_role: "private,thin,pool,data",
  });
  const lv = parseFullReport(JSON.stringify(doc))[0].lvs[0];
  assert.equal(lv.dataPercent, 12.5);
  assert.equal(lv.metadataPercent, 0.98);
  assert.equal(lv.copyPercent, 100);
  assert.deepEqual(lv.tags, ["a", "b=c"]);
  assert.equal(lv.internal, true);
});

test("sizes beyond 2^53 bytes are refused rather than rounded", () => {
  const json = fixture("fullreport-linear-striped").stdout.replace(
    '"vg_size":"2139095040"',
    '"vg_size":"9007199254740993"',
  );
  assert.throws(() => parseFullReport(json), ReportParseError);
});

test("malformed output throws ReportParseError", () => {
  for (const bad of [
    "",
    "not json",
    "{}",
    '{"report": [{"pv": []}]}',
    '{"report": [{"vg": [{"vg_name": "x", "vg_size": "-1"}]}]}',
  ]) {
    assert.throws(() => parseFullReport(bad), ReportParseError, bad);
  }
});

test("the LV's type comes from its first segment by seg_start, whatever order LVM lists segments in", () => {
  const doc = JSON.parse(fixture("fullreport-linear-striped").stdout) as {
    report: Array<{ seg: Array<Record<string, string>> }>;
  };
  const segs = doc.report[0].seg;
  const later = segs.find((s) => s.seg_start === "8388608")!;
  Object.assign(later, { segtype: "striped", stripes: "2", stripe_size: "65536" });
  doc.report[0].seg = [later, ...segs.filter((s) => s !== later)];
  const twoseg = parseFullReport(JSON.stringify(doc))[0].lvs.find((lv) => lv.name === "twoseg")!;
  assert.equal(twoseg.segType, "linear");
  assert.equal(twoseg.stripes, 1);
  assert.equal(twoseg.segmentCount, 2);
});

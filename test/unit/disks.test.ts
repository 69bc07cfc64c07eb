/**
 * `loam disks` on the host: the inventory, rules and safety decisions and the exact changes,
 * over recorded machine shapes (test/fixtures/disks/*.json: sysfs, udev data, mountinfo and
 * blkid output written from the clouds' documented names, not captured). Real LVM runs only
 * in the VM (test/vm/disks.vm.ts); here LVM's side is a hand-made report or backup text.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseExport } from "../../src/host/blkid.js";
import { recordedFiles } from "../../src/disks/files.js";
import { type BlockDevice, parseUdevData, readInventory } from "../../src/disks/inventory.js";
import { type DisksConfig, parseDisksConfig, WIPE_CONFIRMATION } from "../../src/disks/config.js";
import { type DiskFacts, type Plan, diskIdentity, mountUnitName, planDisks } from "../../src/disks/plan.js";
import { MANAGED_VG_TAG, parseLvmBackup, parsePvs, type PvRow } from "../../src/disks/lvm-state.js";
import { globToRegExp } from "../../src/disks/rules.js";
import { applyPlan, DisksApplyError } from "../../src/disks/apply.js";
import { planJson, planText } from "../../src/disks/render.js";
import { encodeTag } from "../../src/lvm/tags.js";
import type { LogicalVolume, VolumeGroupReport } from "../../src/lvm/report.js";
import { CommandRunner } from "../../src/exec/index.js";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { parseValues } from "../../src/deploy/values.js";
import { DISKS_CONFIG_PATH, renderTopology } from "../../src/deploy/manifests.js";
import { type NodeConfig, resolveConfig } from "../../src/cli/config.js";

const fixtures = new URL("../../../test/fixtures/disks/", import.meta.url);

async function machine(name: string): Promise<BlockDevice[]> {
  const fx = JSON.parse(await readFile(new URL(`${name}.json`, fixtures), "utf8")) as {
    files: Record<string, string>;
    blkid: Record<string, string>;
  };
  return readInventory({
    files: recordedFiles(fx.files),
    probe: (path) => Promise.resolve(fx.blkid[path] === undefined ? undefined : parseExport(fx.blkid[path])),
  });
}

const config = (extra: Record<string, unknown> = {}): DisksConfig =>
  parseDisksConfig({ volumeGroup: "loam", rules: [{ preset: "aws-instance-store" }], ...extra });
const facts = (devices: BlockDevice[], more: Partial<DiskFacts> = {}): DiskFacts => ({
  devices,
  pvs: [],
  wiped: [],
  mountPoints: [],
  ...more,
});
const decision = (plan: Plan, name: string) => {
  const found = plan.devices.find((d) => d.device.name === name);
  assert.ok(found, `${name} is in the plan`);
  return found;
};
const argvs = (plan: Plan): string[] =>
  plan.changes.map((c) =>
    c.kind === "run" ? c.argv.join(" ") : `${c.kind} ${"path" in c ? c.path : c.ids.join(",")}`,
  );

test("AWS: the instance-store disks are selected by model, EBS is not, and the plan is pvcreate --metadatasize then vgcreate tagged", async () => {
  const devices = await machine("aws-instance-store");
  const nvme1 = devices.find((d) => d.name === "nvme1n1");
  assert.deepEqual(
    { model: nvme1?.model, serial: nvme1?.serial, transport: nvme1?.transport, size: nvme1?.sizeBytes },
    {
      model: "Amazon EC2 NVMe Instance Storage",
      serial: "AWS1F6C2B9D8E7A6B5C4",
      transport: "nvme",
      size: 442 * 2 ** 30,
    },
  );
  assert.deepEqual(nvme1?.byId, ["nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1F6C2B9D8E7A6B5C4"]);
  const plan = planDisks(config(), facts(devices));
  assert.equal(plan.state, "absent");
  assert.equal(decision(plan, "nvme1n1").action, "add");
  assert.equal(decision(plan, "nvme2n1").action, "add");
  const root = decision(plan, "nvme0n1");
  assert.equal(root.action, "none");
  assert.match(root.why, /holds \/ and \/boot\/efi: the system's disk is never used/);
  assert.match(
    decision(plan, "nvme3n1").why,
    /model "Amazon Elastic Block Store" is not "Amazon EC2 NVMe Instance Storage"/,
  );
  assert.deepEqual(argvs(plan), [
    `pvcreate --metadatasize ${64 * 2 ** 20}b /dev/nvme1n1 /dev/nvme2n1`,
    `vgcreate --addtag ${MANAGED_VG_TAG} loam /dev/nvme1n1 /dev/nvme2n1`,
  ]);
  const text = planText(plan);
  assert.match(text, /\/dev\/nvme3n1 {2}skip: no rule selects it/);
  assert.match(text, /by-id nvme-Amazon_EC2_NVMe_Instance_Storage_AWS2A7D3C0E9F8B7A6D5/);
  const json = JSON.parse(planJson(plan)) as { devices: { path: string; action: string; partitions: string[] }[] };
  assert.deepEqual(
    json.devices.map((d) => [d.path, d.action]),
    [
      ["/dev/nvme0n1", "none"],
      ["/dev/nvme1n1", "add"],
      ["/dev/nvme2n1", "add"],
      ["/dev/nvme3n1", "none"],
    ],
  );
  assert.deepEqual(json.devices[0]?.partitions, ["nvme0n1p1", "nvme0n1p127", "nvme0n1p128"]);
});

test("the root disk is never selected, even by a rule that matches every disk with wipe and both other opt-ins", async () => {
  const devices = await machine("aws-instance-store");
  const plan = planDisks(
    config({ rules: [{ model: "*", wipe: true }], wipeConfirm: WIPE_CONFIRMATION }),
    facts(devices),
  );
  assert.equal(decision(plan, "nvme0n1").action, "none");
  assert.match(
    decision(plan, "nvme0n1").why,
    /holds \/ and \/boot\/efi: the system's disk is never used, whatever the rules say/,
  );
  assert.ok(!argvs(plan).some((a) => a.includes("nvme0n1")), argvs(plan).join("\n"));
  // The unmatched EBS data volume is empty, so this rule adds it: the rule decides, safety only refuses.
  assert.equal(decision(plan, "nvme3n1").action, "add");
});

test("a disk holding a filesystem is refused and named with the opt-ins it lacks; wiped only with all three; never twice", async () => {
  const devices = await machine("aws-instance-store-xfs");
  const refused = planDisks(config(), facts(devices));
  const xfs = decision(refused, "nvme2n1");
  assert.equal(xfs.action, "none");
  assert.match(xfs.why, /holds xfs filesystem: refused/);
  assert.match(xfs.why, /rule aws-instance-store does not say wipe: true/);
  assert.match(xfs.why, /wipeConfirm/);
  assert.deepEqual(argvs(refused), [
    `pvcreate --metadatasize ${64 * 2 ** 20}b /dev/nvme1n1`,
    `vgcreate --addtag ${MANAGED_VG_TAG} loam /dev/nvme1n1`,
  ]);
  // Two of three opt-ins: still refused.
  const ruleOnly = planDisks(config({ rules: [{ preset: "aws-instance-store", wipe: true }] }), facts(devices));
  assert.equal(decision(ruleOnly, "nvme2n1").action, "none");
  const all = config({ rules: [{ preset: "aws-instance-store", wipe: true }], wipeConfirm: WIPE_CONFIRMATION });
  const wiped = planDisks(all, facts(devices));
  assert.equal(decision(wiped, "nvme2n1").action, "wipe-and-add");
  const id = diskIdentity(decision(wiped, "nvme2n1").device);
  assert.equal(id, "serial:AWS2A7D3C0E9F8B7A6D5");
  assert.deepEqual(argvs(wiped), [
    "record-wipe serial:AWS2A7D3C0E9F8B7A6D5",
    "wipefs --all --force /dev/nvme2n1",
    `pvcreate --metadatasize ${64 * 2 ** 20}b /dev/nvme1n1 /dev/nvme2n1`,
    `vgcreate --addtag ${MANAGED_VG_TAG} loam /dev/nvme1n1 /dev/nvme2n1`,
  ]);
  const again = planDisks(all, facts(devices, { wiped: [id] }));
  assert.equal(decision(again, "nvme2n1").action, "none");
  assert.match(decision(again, "nvme2n1").why, /this node wiped it before/);
});

test("GCP: local NVMe SSDs by their google-local-nvme-ssd by-id names, each with its own identity; the persistent disk is not selected", async () => {
  const devices = await machine("gcp-local-ssd");
  const plan = planDisks(config({ rules: [{ preset: "gcp-local-ssd" }] }), facts(devices));
  assert.deepEqual(
    plan.devices.map((d) => [d.device.name, d.action]),
    [
      ["nvme0n1", "add"],
      ["nvme0n2", "add"],
      ["sda", "none"],
    ],
  );
  assert.match(decision(plan, "sda").why, /holds \/ and \/boot\/efi/);
  assert.notEqual(diskIdentity(decision(plan, "nvme0n1").device), diskIdentity(decision(plan, "nvme0n2").device));
  assert.equal(decision(plan, "sda").device.transport, "scsi");
  // The SCSI form of the preset, by name only.
  assert.ok(globToRegExp("google-local-ssd-block*").test("google-local-ssd-block0"));
  assert.ok(!globToRegExp("google-local-nvme-ssd-*").test("google-persistent-disk-0"));
});

test("Azure: NVMe direct disks v1 and v2 selected; the resource disk matches its preset but is refused while mounted at /mnt", async () => {
  const devices = await machine("azure-nvme-direct");
  const plan = planDisks(
    config({
      rules: [{ preset: "azure-nvme-direct" }, { preset: "azure-resource-disk", wipe: true }],
      wipeConfirm: WIPE_CONFIRMATION,
    }),
    facts(devices),
  );
  assert.equal(decision(plan, "nvme0n1").action, "add");
  assert.equal(decision(plan, "nvme1n1").action, "add");
  assert.match(decision(plan, "sda").why, /holds \/ and \/boot and \/boot\/efi/);
  const resource = decision(plan, "sdb");
  assert.equal(resource.action, "none");
  assert.match(
    resource.why,
    /azure-resource-disk matches, but it is mounted at \/mnt: never used, whatever the rules say/,
  );
  assert.deepEqual(decision(plan, "sdb").device.links, [
    "disk/azure/resource",
    "disk/by-id/scsi-360022480bbbbbbbbbbbbbbbbbbbbbbbb",
  ]);
});

test("size bounds, serial and transport criteria narrow a preset, with the reason for each disk left out", async () => {
  const devices = await machine("aws-instance-store");
  const plan = planDisks(
    config({
      rules: [
        { preset: "aws-instance-store", serial: "AWS1*" },
        { transport: ["nvme"], minSize: "200Gi", maxSize: "1Ti" },
      ],
    }),
    facts(devices),
  );
  assert.equal(decision(plan, "nvme1n1").rule, "aws-instance-store");
  assert.equal(decision(plan, "nvme2n1").rule, "rules[1]");
  assert.match(
    decision(plan, "nvme3n1").why,
    /rules\[1\]: size 107374182400 bytes \(100\.0 GiB\) is below the minimum/,
  );
});

// --- day 2 -----------------------------------------------------------------------------

const pv = (name: string, uuid: string, missing = false) => ({
  name: missing ? "[unknown]" : name,
  vgName: "loam",
  uuid,
  sizeBytes: 1,
  freeBytes: 0,
  missing,
});
const lv = (name: string, pvUuids: string[], more: Partial<LogicalVolume> = {}): LogicalVolume =>
  ({
    name,
    vgName: "loam",
    tags: [],
    segType: "linear",
    poolLv: "",
    internal: false,
    pvUuids,
    ...more,
  }) as LogicalVolume;
function report(pvs: ReturnType<typeof pv>[], lvs: LogicalVolume[], tags = [MANAGED_VG_TAG]): VolumeGroupReport {
  return { vg: { name: "loam", tags } as VolumeGroupReport["vg"], pvs, lvs };
}
const pvRow = (device: string, vg = "loam", uuid = `u-${device}`): PvRow => ({ device, vg, uuid, missing: false });

test("day 2: a new matching disk is added with vgextend; the disks already in the VG are kept", async () => {
  const devices = await machine("aws-instance-store");
  const plan = planDisks(
    config(),
    facts(devices, { pvs: [pvRow("/dev/nvme1n1")], report: report([pv("/dev/nvme1n1", "A")], []) }),
  );
  assert.equal(plan.state, "present");
  assert.equal(decision(plan, "nvme1n1").action, "keep");
  assert.deepEqual(argvs(plan), [
    `pvcreate --metadatasize ${64 * 2 ** 20}b /dev/nvme2n1`,
    "vgextend loam /dev/nvme2n1",
  ]);
});

test("day 2: a missing disk is reported with the volumes on it (thin volumes of a pool on it too); --recover drops it and lists them lost", async () => {
  const devices = await machine("aws-instance-store");
  const vol = lv("pvc-1", ["B"], { tags: [encodeTag("name", "pvc-aaaa")] });
  const pool = lv("pool", ["B"], { segType: "thin-pool" });
  const thin = lv("pvc-2", [], { segType: "thin", poolLv: "pool", tags: [encodeTag("name", "pvc-bbbb")] });
  const safe = lv("pvc-3", ["A"], { tags: [encodeTag("name", "pvc-cccc")] });
  const state = facts(devices, {
    pvs: [pvRow("/dev/nvme1n1")],
    report: report([pv("/dev/nvme1n1", "A"), pv("", "B", true)], [vol, pool, thin, safe]),
  });
  const plan = planDisks(config(), state);
  assert.deepEqual(
    plan.missing.map((m) => [m.uuid, m.volumes.map((v) => v.name)]),
    [["B", ["pool", "pvc-aaaa", "pvc-bbbb"]]],
  );
  assert.deepEqual(plan.changes, []);
  assert.match(
    plan.problems.join("\n"),
    /physical volume B of loam is missing; volumes with blocks on it: pool, pvc-aaaa \(LV pvc-1\), pvc-bbbb/,
  );
  assert.match(plan.problems.join("\n"), /\/dev\/nvme2n1 wait/);
  const recover = planDisks(config(), state, { recover: true });
  assert.deepEqual(
    recover.lost.map((v) => v.name),
    ["pool", "pvc-aaaa", "pvc-bbbb"],
  );
  assert.deepEqual(argvs(recover), [
    `pvcreate --metadatasize ${64 * 2 ** 20}b /dev/nvme2n1`,
    "vgreduce --removemissing --force loam",
    "vgextend loam /dev/nvme2n1",
  ]);
  assert.match(planText(recover), /Volumes lost:\n {2}pool\n {2}pvc-aaaa \(LV pvc-1\)/);
});

const BACKUP = `# Generated by LVM2 version 2.03.16(2) (2022-05-18): Tue Dec  1 06:00:00 2026

contents = "Text Format Volume"
version = 1

description = "Created *after* executing 'lvcreate --yes --name pvc-1 loam'"

loam {
	id = "abcdef-0000"
	seqno = 4
	format = "lvm2"
	status = ["RESIZEABLE", "READ", "WRITE"]
	flags = []
	tags = ["${MANAGED_VG_TAG}"]
	extent_size = 8192

	physical_volumes {

		pv0 {
			id = "pv0-uuid"
			device = "/dev/nvme1n1"	# Hint only
			status = ["ALLOCATABLE"]
		}
	}

	logical_volumes {

		pvc-1 {
			id = "lv1"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			tags = ["${encodeTag("name", "pvc-aaaa")}", "${encodeTag("created", "x")}"]
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = 256
				type = "striped"
				stripe_count = 1
				stripes = [
					"pv0", 0
				]
			}
		}

		pool {
			id = "lv2"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			segment_count = 1
		}

		pool_tmeta {
			id = "lv3"
			status = ["READ", "WRITE"]
			flags = []
			segment_count = 1
		}
	}
}
`;

test("all disks new: the VG is rebuilt on them and the volumes its LVM metadata backup listed are reported lost", async () => {
  const backup = parseLvmBackup(BACKUP);
  assert.deepEqual(backup?.tags, [MANAGED_VG_TAG]);
  assert.deepEqual(
    backup?.lvs.map((l) => l.name),
    ["pvc-1", "pool", "pool_tmeta"],
  );
  const devices = await machine("aws-instance-store");
  const plan = planDisks(config(), facts(devices, { backup }));
  assert.equal(plan.state, "rebuild");
  assert.deepEqual(
    plan.lost.map((v) => [v.name, v.lv]),
    [
      ["pool", "pool"],
      ["pvc-aaaa", "pvc-1"],
    ],
  );
  assert.match(argvs(plan).join("\n"), /vgcreate --addtag \S+ loam \/dev\/nvme1n1 \/dev\/nvme2n1/);
  // A backup of a VG loam did not make is not loam's to report on: a plain create.
  const foreignBackup = parseLvmBackup(BACKUP.replace(`tags = ["${MANAGED_VG_TAG}"]`, "tags = []"));
  assert.equal(planDisks(config(), facts(devices, foreignBackup ? { backup: foreignBackup } : {})).state, "absent");
});

test("a VG of that name that is not loam's is left alone, and a PV of another VG is refused", async () => {
  const devices = await machine("aws-instance-store");
  const foreign = planDisks(config(), facts(devices, { report: report([pv("/dev/nvme1n1", "A")], [], []) }));
  assert.equal(foreign.state, "foreign");
  assert.deepEqual(foreign.changes, []);
  assert.match(foreign.problems[0] ?? "", /is not loam's/);
  const other = planDisks(config(), facts(devices, { pvs: [pvRow("/dev/nvme1n1", "data")] }));
  assert.match(decision(other, "nvme1n1").why, /holds a physical volume of volume group data: refused/);
});

test("thin pool and striped aggregate: made once, formatted, a nofail mount unit enabled and mounted; a second plan makes nothing", async () => {
  const devices = await machine("aws-instance-store");
  const withLvs = config({
    thinPool: { name: "pool", sizePercent: 40 },
    aggregate: { name: "containers", sizePercent: 50, filesystem: "xfs", mountPoint: "/var/lib/containers" },
    systemdDir: "/etc/systemd/system",
  });
  const plan = planDisks(withLvs, facts(devices));
  assert.deepEqual(argvs(plan).slice(2), [
    "lvcreate --yes --type striped --stripes 2 --extents 50%VG --name containers loam",
    "lvcreate --yes --type thin-pool --extents 40%VG --name pool loam",
    "mkfs.xfs -q /dev/loam/containers",
    "write-file /etc/systemd/system/var-lib-containers.mount",
    "symlink /etc/systemd/system/local-fs.target.wants/var-lib-containers.mount",
    "mkdir /var/lib/containers",
    "mount -t xfs -o defaults /dev/loam/containers /var/lib/containers",
  ]);
  const unit = plan.changes.find((c) => c.kind === "write-file");
  assert.ok(unit?.kind === "write-file");
  assert.match(unit.content, /^Options=defaults,nofail,x-systemd\.device-timeout=10s$/m);
  assert.match(unit.content, /^What=\/dev\/loam\/containers$/m);
  const done = planDisks(
    withLvs,
    facts(devices, {
      pvs: [pvRow("/dev/nvme1n1"), pvRow("/dev/nvme2n1")],
      report: report(
        [pv("/dev/nvme1n1", "A"), pv("/dev/nvme2n1", "B")],
        [lv("containers", ["A", "B"]), lv("pool", ["A"])],
      ),
      aggregateContent: "xfs",
      unitText: unit.content,
      mountPoints: ["/", "/var/lib/containers"],
    }),
  );
  assert.deepEqual(done.changes, []);
  assert.equal(mountUnitName("/var/lib/my-data"), "var-lib-my\\x2ddata.mount");
});

test("disks.json is validated with the field, the value and what is allowed", () => {
  const cases: [unknown, RegExp][] = [
    [{ volumeGroup: "loam", rules: [] }, /: rules: must hold at least one rule/],
    [
      { volumeGroup: "loam", rules: [{ preset: "aws" }] },
      /: rules\[0\]\.preset: "aws" is not a preset; allowed: aws-instance-store, gcp-local-ssd/,
    ],
    [{ volumeGroup: "loam", rules: [{ wipe: true }] }, /: rules\[0\]: must have at least one criterion/],
    [
      { volumeGroup: "loam", rules: [{ model: "x", colour: 1 }] },
      /: rules\[0\]\.colour: unknown setting; known settings: preset, byId/,
    ],
    [{ volumeGroup: "bad/vg", rules: [{ model: "x" }] }, /: volumeGroup: "bad\/vg" must be an LVM volume group name/],
    [
      { volumeGroup: "loam", rules: [{ model: "x" }], wipeConfirm: "yes" },
      /: wipeConfirm: "yes" is not the confirmation; to allow wiping write "destroy-data-on-matching-disks"/,
    ],
    [
      { volumeGroup: "loam", rules: [{ model: "x", minSize: "10Gi", maxSize: "1Gi" }] },
      /: rules\[0\]\.minSize: "10Gi" is above maxSize "1Gi"/,
    ],
    [{ volumeGroup: "loam", rules: [{ model: "x", minSize: "ten" }] }, /: rules\[0\]\.minSize: "ten" is not a size/],
    [
      {
        volumeGroup: "loam",
        rules: [{ model: "x" }],
        thinPool: { name: "p", sizePercent: 60 },
        aggregate: { name: "a", sizePercent: 50, filesystem: "xfs", mountPoint: "/x" },
      },
      /: aggregate\.sizePercent: 50 with the thin pool's 60 is over 100%/,
    ],
    [
      {
        volumeGroup: "loam",
        rules: [{ model: "x" }],
        aggregate: { name: "a", sizePercent: 5, filesystem: "btrfs", mountPoint: "/x" },
      },
      /: aggregate\.filesystem: "btrfs" is not a filesystem; allowed: xfs, ext4/,
    ],
    [
      { volumeGroup: "loam", rules: [{ model: "x" }], stateDir: "var/lib" },
      /: stateDir: "var\/lib" must be an absolute path/,
    ],
    [
      { volumeGroup: "loam", rules: [{ model: "x" }], extra: 1 },
      /: extra: unknown setting; known settings: volumeGroup, rules/,
    ],
  ];
  for (const [input, expected] of cases) assert.throws(() => parseDisksConfig(input), expected, JSON.stringify(input));
});

test("udev data, pvs JSON and globs are read as LVM and udev write them", () => {
  const data = parseUdevData("S:disk/by-id/nvme-X_1\nS:disk/by-path/pci-1\nE:ID_MODEL=Amazon_EC2\nI:123\n");
  assert.deepEqual(data.links, ["disk/by-id/nvme-X_1", "disk/by-path/pci-1"]);
  assert.equal(data.env.get("ID_MODEL"), "Amazon_EC2");
  const rows = parsePvs(
    '{"report":[{"pv":[{"pv_name":"/dev/vda","vg_name":"loam","pv_uuid":"u1","pv_missing":""},{"pv_name":"[unknown]","vg_name":"loam","pv_uuid":"u2","pv_missing":"missing"}]}]}',
  );
  assert.deepEqual(
    rows.map((r) => [r.device, r.missing]),
    [
      ["/dev/vda", false],
      ["[unknown]", true],
    ],
  );
  assert.ok(globToRegExp("nvme-[!x]?.d*").test("nvme-ab.d"));
  assert.ok(!globToRegExp("a.b").test("axb"));
});

test("apply writes the wipe record durably before anything else, the unit and its link, and stops at a failing command with its message", async () => {
  const dir = await mkdtemp(join(tmpdir(), "loam-disks-"));
  try {
    const cfg = config({ stateDir: `${dir}/state`, systemdDir: `${dir}/systemd` });
    const runner = new CommandRunner({ defaultTimeoutMs: 10_000 });
    const plan: Plan = {
      volumeGroup: "loam",
      state: "absent",
      devices: [],
      missing: [],
      lost: [],
      problems: [],
      changes: [
        { kind: "record-wipe", ids: ["serial:S1"], why: "first" },
        { kind: "write-file", path: `${dir}/systemd/x.mount`, content: "[Mount]\n", why: "unit" },
        {
          kind: "symlink",
          path: `${dir}/systemd/local-fs.target.wants/x.mount`,
          target: `${dir}/systemd/x.mount`,
          why: "enable",
        },
        { kind: "run", argv: ["sh", "-c", "echo no room >&2; exit 5"], why: "a command that fails" },
        { kind: "mkdir", path: `${dir}/never`, why: "after the failure" },
      ],
    };
    await assert.rejects(applyPlan(cfg, plan, runner), (error: unknown) => {
      assert.ok(error instanceof DisksApplyError);
      assert.match(error.message, /exited 5 \(a command that fails\): no room/);
      return true;
    });
    const record = JSON.parse(await readFile(`${dir}/state/disks-wiped.json`, "utf8")) as { wiped: { id: string }[] };
    assert.deepEqual(
      record.wiped.map((w) => w.id),
      ["serial:S1"],
    );
    assert.equal(await readFile(`${dir}/systemd/x.mount`, "utf8"), "[Mount]\n");
    assert.equal(await readlink(`${dir}/systemd/local-fs.target.wants/x.mount`), `${dir}/systemd/x.mount`);
    await assert.rejects(readFile(`${dir}/never`), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("deploy/values.json's disks option puts disks.json (hostRoot /proc/1/root) beside config.json and loam node reads it at start", async () => {
  const base = JSON.parse(await readFile(new URL("../../../deploy/values.json", import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;
  const values = parseValues({ ...base, disks: { volumeGroup: "loam", rules: [{ preset: "aws-instance-store" }] } });
  const configMap = renderTopology(values, "distributed")
    .flatMap((m) => m.objects)
    .find((o): o is ConfigMap => o instanceof ConfigMap);
  const disks = parseDisksConfig(JSON.parse(configMap?.data?.["disks.json"] ?? "null"));
  assert.equal(disks.hostRoot, "/proc/1/root");
  assert.equal(disks.rules[0]?.preset, "aws-instance-store");
  const node = resolveConfig(JSON.parse(configMap?.data?.["config.json"] ?? "{}") as Partial<NodeConfig>);
  assert.equal(node.disksConfig, DISKS_CONFIG_PATH);
  assert.throws(
    () => parseValues({ ...base, disks: { volumeGroup: "loam", rules: [{ preset: "x" }] } }),
    /disks\.rules\[0\]\.preset/,
  );
  assert.equal(parseValues(base).disks, undefined);
});

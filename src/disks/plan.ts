/**
 * The decisions of `loam disks`: for every disk, whether a rule selects it and why or why
 * not, with the safety rules first (never the disk /, /boot or /usr live on; never a disk
 * that is mounted, swapped on, held by dm/md or read-only; a disk holding a partition table,
 * a signature or another VG's label only with the three wipe opt-ins); then the exact changes
 * `apply` makes, in order. A pure function of the facts gathered (gather.ts), so that the host
 * tests run it over recorded machines.
 */
import type { BlockDevice } from "./inventory.js";
import type { DisksConfig } from "./config.js";
import { WIPE_CONFIRMATION } from "./config.js";
import { matchRules } from "./rules.js";
import {
  MANAGED_VG_TAG,
  type LvmBackup,
  type MissingDisk,
  type PvRow,
  type VolumeName,
  missingDisks,
  volumesInBackup,
} from "./lvm-state.js";
import type { VolumeGroupReport } from "../lvm/report.js";

export interface DiskFacts {
  devices: BlockDevice[];
  pvs: PvRow[];
  /** The managed VG's report, when LVM knows the VG. */
  report?: VolumeGroupReport;
  /** Its last metadata backup, read when LVM does not know the VG. */
  backup?: LvmBackup;
  /** Identities of the disks this node has wiped before (stateDir/disks-wiped.json). */
  wiped: string[];
  /** Mount points of the host now. */
  mountPoints: string[];
  /** What blkid finds on the aggregate LV when it exists ("" for nothing). */
  aggregateContent?: string;
  /** The aggregate's mount unit as it is on disk, if any. */
  unitText?: string;
}

export type Action = "keep" | "add" | "wipe-and-add" | "none";

export interface DeviceDecision {
  device: BlockDevice;
  /** The VG it is a PV of ("" for none). */
  volumeGroup: string;
  rule?: string;
  action: Action;
  why: string;
}

export type Change =
  | { kind: "run"; argv: string[]; why: string }
  | { kind: "write-file"; path: string; content: string; why: string }
  | { kind: "symlink"; path: string; target: string; why: string }
  | { kind: "mkdir"; path: string; why: string }
  | { kind: "record-wipe"; ids: string[]; why: string };

export type VgState = "absent" | "present" | "rebuild" | "foreign";

export interface Plan {
  volumeGroup: string;
  state: VgState;
  devices: DeviceDecision[];
  /** PVs of the VG that LVM cannot find, with the volumes on them. */
  missing: MissingDisk[];
  /** Volumes that are lost (or are lost by this apply): with --recover, and when the VG is rebuilt. */
  lost: VolumeName[];
  /** What stops apply from doing all it would, in words. */
  problems: string[];
  changes: Change[];
}

/** How the node recognises a disk it wiped: the most stable identity sysfs gives. */
export const diskIdentity = (d: BlockDevice): string => d.wwid || (d.serial ? `serial:${d.serial}` : `path:${d.path}`);

/** The unit name systemd gives a mount point (systemd-escape --path). */
export function mountUnitName(mountPoint: string): string {
  const trimmed = mountPoint.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return "-.mount";
  const escaped = trimmed
    .split("/")
    .filter(Boolean)
    .map((part) =>
      [...Buffer.from(part, "utf8")]
        .map((b, i) => {
          const c = String.fromCharCode(b);
          return /[A-Za-z0-9:_]/.test(c) || (c === "." && i > 0) ? c : `\\x${b.toString(16).padStart(2, "0")}`;
        })
        .join(""),
    )
    .join("-");
  return `${escaped}.mount`;
}

export function mountUnitText(vg: string, aggregate: NonNullable<DisksConfig["aggregate"]>): string {
  return [
    `# Written by loam disks (docs/disks.md): the aggregate LV ${vg}/${aggregate.name}.`,
    "# nofail and a short device timeout: a boot without the disks goes on without this mount.",
    "[Unit]",
    `Description=loam aggregate volume ${vg}/${aggregate.name}`,
    "",
    "[Mount]",
    `What=/dev/${vg}/${aggregate.name}`,
    `Where=${aggregate.mountPoint}`,
    `Type=${aggregate.filesystem}`,
    "Options=defaults,nofail,x-systemd.device-timeout=10s",
    "",
    "[Install]",
    "WantedBy=local-fs.target",
    "",
  ].join("\n");
}

interface Options {
  recover: boolean;
}

export function planDisks(config: DisksConfig, facts: DiskFacts, options: Options = { recover: false }): Plan {
  const vg = config.volumeGroup;
  const pvOf = new Map(facts.pvs.filter((pv) => !pv.missing).map((pv) => [pv.device, pv]));
  const state: VgState = facts.report
    ? facts.report.vg.tags.includes(MANAGED_VG_TAG)
      ? "present"
      : "foreign"
    : facts.backup && facts.backup.tags.includes(MANAGED_VG_TAG)
      ? "rebuild"
      : "absent";
  const devices = facts.devices.map((device) => decide(config, facts, device, pvOf.get(device.path)));
  const problems: string[] = [];
  const changes: Change[] = [];
  const missing = facts.report ? missingDisks(facts.report) : [];
  let lost: VolumeName[] = [];
  const plan = (): Plan => ({ volumeGroup: vg, state, devices, missing, lost, problems, changes });

  if (state === "foreign") {
    problems.push(
      `volume group ${vg} exists and is not loam's (it lacks the tag ${MANAGED_VG_TAG}); loam changes nothing in it ` +
        `(to hand it over: vgchange --addtag ${MANAGED_VG_TAG} ${vg})`,
    );
    return plan();
  }
  const wipes = devices.filter((d) => d.action === "wipe-and-add");
  const fresh = devices.filter((d) => d.action === "add" || d.action === "wipe-and-add");
  const toPvcreate = fresh.filter((d) => d.volumeGroup === "" && !pvOf.has(d.device.path)).map((d) => d.device.path);
  const adds = fresh.map((d) => d.device.path);
  const kept = devices.filter((d) => d.action === "keep").length;

  if (missing.length > 0 && !options.recover) {
    for (const m of missing)
      problems.push(
        `physical volume ${m.uuid} of ${vg} is missing; volumes with blocks on it: ${m.volumes.map(named).join(", ") || "none"}` +
          ` (if the disk is gone for good: loam disks apply --recover removes it and these volumes)`,
      );
    if (adds.length > 0) problems.push(`${adds.join(", ")} wait: LVM changes nothing in ${vg} while a PV is missing`);
    return plan();
  }

  if (wipes.length > 0) {
    changes.push({
      kind: "record-wipe",
      ids: wipes.map((d) => diskIdentity(d.device)),
      why: `record the wipes in ${config.stateDir}/disks-wiped.json first, so that no disk is ever wiped twice`,
    });
    for (const d of wipes) {
      for (const part of [...d.device.partitions.map((p) => `/dev/${p}`), d.device.path])
        changes.push({
          kind: "run",
          argv: ["wipefs", "--all", "--force", part],
          why: `wipe ${part} (${d.rule} says wipe)`,
        });
    }
  }
  if (toPvcreate.length > 0)
    changes.push({
      kind: "run",
      argv: ["pvcreate", "--metadatasize", `${config.metadataSizeBytes}b`, ...toPvcreate],
      why: "make the selected disks LVM physical volumes",
    });
  let pvCount = kept;
  let lvs = new Set<string>((facts.report?.lvs ?? []).map((lv) => lv.name));
  if (missing.length > 0) {
    lost = missing.flatMap((m) => m.volumes);
    const gone = new Set(lost.map((v) => v.lv));
    lvs = new Set([...lvs].filter((lv) => !gone.has(lv)));
    changes.push({
      kind: "run",
      argv: ["vgreduce", "--removemissing", "--force", vg],
      why: `drop the missing PVs; lost with them: ${lost.map(named).join(", ") || "no volume"}`,
    });
  }
  if (state === "present") {
    if (adds.length > 0)
      changes.push({ kind: "run", argv: ["vgextend", vg, ...adds], why: `add the new disks to ${vg}` });
    pvCount += adds.length;
  } else {
    if (state === "rebuild") lost = volumesInBackup(facts.backup as LvmBackup);
    if (adds.length === 0) {
      problems.push(`no disk is selected: volume group ${vg} is not made (see each disk's reason)`);
      return plan();
    }
    changes.push({
      kind: "run",
      argv: ["vgcreate", "--addtag", MANAGED_VG_TAG, vg, ...adds],
      why:
        state === "rebuild"
          ? `rebuild ${vg}: its disks are all new (its last backup lists ${lost.length} volume(s), lost)`
          : `make ${vg} on the selected disks, tagged as loam's`,
    });
    pvCount = adds.length;
    lvs = new Set();
  }

  const { aggregate, thinPool } = config;
  if (aggregate && !lvs.has(aggregate.name)) {
    const stripes = pvCount > 1 ? ["--type", "striped", "--stripes", String(pvCount)] : [];
    changes.push({
      kind: "run",
      argv: ["lvcreate", "--yes", ...stripes, "--extents", `${aggregate.sizePercent}%VG`, "--name", aggregate.name, vg],
      why: `the aggregate LV, striped across all ${pvCount} disk(s)`,
    });
  }
  if (thinPool && !lvs.has(thinPool.name)) {
    const all = (aggregate?.sizePercent ?? 0) + thinPool.sizePercent >= 100;
    changes.push({
      kind: "run",
      argv: [
        "lvcreate",
        "--yes",
        "--type",
        "thin-pool",
        "--extents",
        all ? "100%FREE" : `${thinPool.sizePercent}%VG`,
        "--name",
        thinPool.name,
        vg,
      ],
      why: "the thin pool a thin device class needs",
    });
  }
  if (aggregate) {
    const device = `/dev/${vg}/${aggregate.name}`;
    const created = !lvs.has(aggregate.name);
    if (created || facts.aggregateContent === "")
      changes.push({
        kind: "run",
        argv: [`mkfs.${aggregate.filesystem}`, "-q", device],
        why: `format the aggregate ${aggregate.filesystem}`,
      });
    const unitPath = `${config.systemdDir}/${mountUnitName(aggregate.mountPoint)}`;
    const text = mountUnitText(vg, aggregate);
    if (facts.unitText !== text) {
      changes.push({
        kind: "write-file",
        path: unitPath,
        content: text,
        why: "the mount unit (nofail: boot goes on without the disks)",
      });
      changes.push({
        kind: "symlink",
        path: `${config.systemdDir}/local-fs.target.wants/${mountUnitName(aggregate.mountPoint)}`,
        target: unitPath,
        why: "enable it (as systemctl enable does)",
      });
    }
    if (created || !facts.mountPoints.includes(aggregate.mountPoint)) {
      changes.push({ kind: "mkdir", path: aggregate.mountPoint, why: "the aggregate's mount point" });
      changes.push({
        kind: "run",
        argv: ["mount", "-t", aggregate.filesystem, "-o", "defaults", device, aggregate.mountPoint],
        why: "mount it now (the unit mounts it at later boots)",
      });
    }
  }
  return plan();
}

const named = (v: VolumeName): string => (v.name === v.lv ? v.lv : `${v.name} (LV ${v.lv})`);

function decide(config: DisksConfig, facts: DiskFacts, device: BlockDevice, pv: PvRow | undefined): DeviceDecision {
  const vg = pv?.vg ?? "";
  const result = (action: Action, why: string, rule?: string): DeviceDecision =>
    rule === undefined ? { device, volumeGroup: vg, action, why } : { device, volumeGroup: vg, rule, action, why };
  if (device.system.length > 0)
    return result(
      "none",
      `holds ${device.system.join(" and ")}: the system's disk is never used, whatever the rules say`,
    );
  const match = matchRules(config.rules, device);
  if (vg !== "" && vg === config.volumeGroup)
    return result(
      "keep",
      `already a physical volume of ${vg}${match.rule ? "" : " (no rule selects it now; loam never removes a PV)"}`,
      match.rule?.name,
    );
  if (!match.rule) return result("none", `no rule selects it: ${match.whyNot.join("; ")}`);
  const rule = match.rule;
  const busy = [
    ...device.mounts.map((m) => `mounted at ${m}`),
    ...device.swaps.map((s) => `swap on ${s}`),
    ...(device.holders.length > 0 ? [`in use by ${device.holders.join(", ")}`] : []),
    ...(device.readOnly ? ["read-only"] : []),
  ];
  if (busy.length > 0)
    return result(
      "none",
      `${rule.name} matches, but it is ${busy.join(", ")}: never used, whatever the rules say`,
      rule.name,
    );
  const holds = [
    ...(device.partitions.length > 0 ? [`partitions ${device.partitions.join(", ")}`] : []),
    ...device.signatures.filter((s) => !(pv && s === "LVM2_member (raid)") && !(pv && s.startsWith("LVM2_member"))),
    ...(vg !== "" ? [`a physical volume of volume group ${vg}`] : []),
    ...(device.lvmLabel && !pv ? ["an LVM label LVM does not list (filtered out or from another host)"] : []),
  ];
  if (holds.length === 0) return result("add", `${rule.name} matches; empty`, rule.name);
  const id = diskIdentity(device);
  const missingOptIns = [
    ...(rule.wipe ? [] : [`rule ${rule.name} does not say wipe: true`]),
    ...(config.wipeConfirmed ? [] : [`the config does not say wipeConfirm "${WIPE_CONFIRMATION}"`]),
    ...(facts.wiped.includes(id) ? [`this node wiped it before (${id} in ${config.stateDir}/disks-wiped.json)`] : []),
  ];
  if (missingOptIns.length > 0)
    return result(
      "none",
      `${rule.name} matches, but it holds ${holds.join(", ")}: refused (a disk is wiped only with all three opt-ins; here ${missingOptIns.join(", ")})`,
      rule.name,
    );
  return result(
    "wipe-and-add",
    `${rule.name} matches; holds ${holds.join(", ")}: wiped (rule says wipe, wipeConfirm given, never wiped here before)`,
    rule.name,
  );
}

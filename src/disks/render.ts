/** The plan in words (`loam disks plan`) and as JSON (`--json`). */
import type { Change, Plan } from "./plan.js";

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export function changeText(change: Change): string {
  switch (change.kind) {
    case "run":
      return `run ${change.argv.join(" ")}    # ${change.why}`;
    case "write-file":
      return `write ${change.path}    # ${change.why}`;
    case "symlink":
      return `link ${change.path} -> ${change.target}    # ${change.why}`;
    case "mkdir":
      return `mkdir -p ${change.path}    # ${change.why}`;
    case "record-wipe":
      return `record wipe of ${change.ids.join(", ")}    # ${change.why}`;
  }
}

export function planText(plan: Plan): string {
  const out: string[] = [];
  const state = {
    absent: "does not exist: it will be made",
    present: "exists (loam's)",
    rebuild: "is gone with all its disks: it will be rebuilt on new ones",
    foreign: "exists and is not loam's",
  }[plan.state];
  out.push(`Volume group ${plan.volumeGroup} ${state}.`, "", "Disks:");
  for (const d of plan.devices) {
    const dev = d.device;
    const verdict = { keep: "KEEP", add: "ADD", "wipe-and-add": "WIPE+ADD", none: "skip" }[d.action];
    out.push(`  ${dev.path}  ${verdict}: ${d.why}`);
    out.push(
      `    model "${dev.model}"${dev.vendor ? ` vendor "${dev.vendor}"` : ""} serial "${dev.serial}" size ${gib(dev.sizeBytes)} ` +
        `transport ${dev.transport || "unknown"}${dev.rotational ? " rotational" : ""}`,
    );
    if (dev.byId.length > 0) out.push(`    by-id ${dev.byId.join(" ")}`);
    const details = [
      dev.partitions.length > 0 ? `partitions ${dev.partitions.join(" ")}` : "",
      dev.signatures.length > 0 ? `signatures: ${dev.signatures.join("; ")}` : "",
      dev.mounts.length > 0 ? `mounts ${dev.mounts.join(" ")}` : "",
      dev.holders.length > 0 ? `holders ${dev.holders.join(" ")}` : "",
      d.volumeGroup ? `PV of ${d.volumeGroup}` : "",
    ].filter(Boolean);
    if (details.length > 0) out.push(`    ${details.join(", ")}`);
  }
  if (plan.missing.length > 0) {
    out.push("", "Missing disks:");
    for (const m of plan.missing)
      out.push(
        `  physical volume ${m.uuid}: ${m.volumes.map((v) => (v.name === v.lv ? v.lv : `${v.name} (LV ${v.lv})`)).join(", ") || "no volume on it"}`,
      );
  }
  if (plan.lost.length > 0) {
    out.push("", "Volumes lost:");
    for (const v of plan.lost) out.push(`  ${v.name}${v.name === v.lv ? "" : ` (LV ${v.lv})`}`);
  }
  if (plan.problems.length > 0) {
    out.push("", "Problems:");
    for (const p of plan.problems) out.push(`  ${p}`);
  }
  out.push("", plan.changes.length === 0 ? "No changes." : "Changes:");
  for (const c of plan.changes) out.push(`  ${changeText(c)}`);
  return `${out.join("\n")}\n`;
}

export function planJson(plan: Plan): string {
  return `${JSON.stringify(
    {
      volumeGroup: plan.volumeGroup,
      state: plan.state,
      devices: plan.devices.map((d) => ({
        ...d.device,
        inVolumeGroup: d.volumeGroup,
        rule: d.rule ?? null,
        action: d.action,
        why: d.why,
      })),
      missing: plan.missing,
      lost: plan.lost,
      problems: plan.problems,
      changes: plan.changes,
    },
    null,
    2,
  )}\n`;
}

/**
 * Cluster mode's garbage collection on real LVM (issue 15, src/cluster/gc.ts): LVs made by hand
 * in the agents' volume groups while the cluster runs. On the delete-mode node an LV with loam's
 * tags (the tags the engine writes for a volume) and no registry record is removed, an LV without
 * loam's tags is left alone; on a report-mode node such an orphan is reported in the agent's
 * report file (`loam-gc.json` next to its socket) and kept. The agent sweeps at start and after
 * each resync (every 10 s here: the cluster group sets `clusterResyncSeconds`), and a finding must
 * outlive its grace period on a later sweep, so the outcome takes one to two resyncs; the time is
 * printed.
 *
 * Runs inside the cluster group's describe (cluster.vm.ts), which owns the processes and writes
 * each agent's config: the delete node with `gc: "delete"`, the report node with `gc: "report"`,
 * both with a grace of a few seconds.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import type { GcReport } from "../../src/cluster/gc.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { tagsFor } from "../../src/volumes/metadata.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { MiB } from "../../src/volumes/size.js";
import type { Harness } from "./harness.js";

export interface GcScene<N extends string> {
  /** The node whose agent runs `gc: "delete"`, and one that runs `gc: "report"`. */
  deleteNode: N;
  reportNode: N;
  vgOf(node: N): string;
  /** The directory of the node's socket, where the agent writes loam-gc.json. */
  dirOf(node: N): string;
  /** A harness to run LVM commands in the guest. */
  sh(): Harness;
  /** The device class the LVs are tagged for (the name the node's config gives the VG). */
  deviceClass: string;
}

/** Two sweeps 10 s apart, with room for a guest slowed by a busy host (the wait ends as soon as both are seen). */
const WAIT_MS = 120_000;

async function reportOf(dir: string): Promise<GcReport | undefined> {
  try {
    return JSON.parse(await readFile(`${dir}/loam-gc.json`, "utf8")) as GcReport;
  } catch {
    return undefined;
  }
}

export function garbageCollectionTest<N extends string>(scene: GcScene<N>): void {
  test("garbage collection on real LVM: a tagged LV without a record is removed on the gc=delete node, kept and reported on a gc=report node; an untagged LV is never touched", async (t) => {
    const sh = scene.sh();
    const { deleteNode, reportNode } = scene;
    // Tagged as the engine tags a volume it makes (create.ts: tagsFor with the device class), named as it names one.
    const orphanTags = (name: string): string[] =>
      tagsFor(name, lvNameFor(name), parseParameters({}), { deviceClass: scene.deviceClass });
    const doomed = { vg: scene.vgOf(deleteNode), name: lvNameFor("gc-orphan-deleted") };
    const kept = { vg: scene.vgOf(reportNode), name: lvNameFor("gc-orphan-reported") };
    const untagged = { vg: scene.vgOf(deleteNode), name: "gc-untagged" };
    const lvNames = async (vg: string): Promise<string[]> => (await sh.lvm.report(vg)).lvs.map((lv) => lv.name);

    const started = performance.now();
    await sh.lvm.createLv({ ...doomed, sizeBytes: 16 * MiB, tags: orphanTags("gc-orphan-deleted") });
    await sh.lvm.createLv({ ...kept, sizeBytes: 16 * MiB, tags: orphanTags("gc-orphan-reported") });
    await sh.lvm.createLv({ ...untagged, sizeBytes: 16 * MiB, tags: [] });
    try {
      let removedAt: number | undefined;
      let reportedAt: number | undefined;
      let deleteReport: GcReport | undefined;
      let reportReport: GcReport | undefined;
      const deadline = Date.now() + WAIT_MS;
      while ((removedAt === undefined || reportedAt === undefined) && Date.now() < deadline) {
        if (removedAt === undefined && !(await lvNames(doomed.vg)).includes(doomed.name)) {
          removedAt = performance.now();
          deleteReport = await reportOf(scene.dirOf(deleteNode));
        }
        if (reportedAt === undefined) {
          const report = await reportOf(scene.dirOf(reportNode));
          if (report?.findings.some((f) => f.kind === "orphan-volume" && f.id === kept.name && f.reported)) {
            reportedAt = performance.now();
            reportReport = report;
          }
        }
        await sleep(1_000);
      }
      const ms = (at: number | undefined): string => (at === undefined ? "never" : `${Math.round(at - started)} ms`);
      t.diagnostic(`tagged orphan removed on ${deleteNode} (gc=delete) after ${ms(removedAt)}`);
      t.diagnostic(`tagged orphan reported on ${reportNode} (gc=report) after ${ms(reportedAt)}`);

      assert.ok(removedAt !== undefined, `${doomed.vg}/${doomed.name} (loam's tags, no record) was removed`);
      assert.ok(deleteReport, `${deleteNode} wrote its report file`);
      assert.equal(deleteReport.mode, "delete");
      assert.ok(deleteReport.removed.volumes >= 1, `the report counts the removal: ${JSON.stringify(deleteReport)}`);
      assert.ok((await lvNames(untagged.vg)).includes(untagged.name), "the LV without loam's tags is still there");
      assert.ok(
        !deleteReport.findings.some((f) => f.id === untagged.name),
        "the LV without loam's tags is not even a finding",
      );

      assert.ok(reportedAt !== undefined && reportReport, `${reportNode}'s report file lists ${kept.name} as reported`);
      assert.equal(reportReport.mode, "report");
      const finding = reportReport.findings.find((f) => f.id === kept.name);
      assert.equal(finding?.name, "gc-orphan-reported", "the finding carries the CSI name from the LV's tags");
      assert.equal(finding?.volumeGroup, kept.vg);
      assert.equal(reportReport.removed.volumes, 0);
      // A sweep removes before it writes the file: the sweep that reported it did not remove it.
      assert.ok((await lvNames(kept.vg)).includes(kept.name), "the report-mode node kept the orphan");
    } finally {
      for (const lv of [doomed, kept, untagged])
        await sh.must(["lvremove", "-y", `${lv.vg}/${lv.name}`], { allowFailure: true });
    }
  });
}

/**
 * A PV lost on real LVM (issue 13, item 3): a volume group of its own on the fourth and fifth
 * scratch disks, served as a second device class by the harness' loam; a volume on each PV;
 * then one PV loses its label (the first MiB zeroed, as a wiped or replaced disk looks to LVM).
 * GetCapacity of the class is 0 (the other class keeps its room); CreateVolume is
 * RESOURCE_EXHAUSTED and NodeExpandVolume FAILED_PRECONDITION before any lvcreate/lvextend,
 * naming the PV and the fix; LVM's own refusal is classified; the volume on the lost PV is
 * abnormal (ControllerGetVolume, ListVolumes, NodeGetVolumeStats) and the other one normal;
 * `loam doctor`, `loam status` and /metrics name the PV and the volume on it. The group and
 * both disks are cleaned up whatever happens.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { MissingPhysicalVolumesError } from "../../src/lvm/index.js";
import { DEFAULT_CACHE_MS } from "../../src/metrics/lvm-state.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, KUBELET_DIR, VG, vmDisks } from "./harness.js";
import { runLoam } from "./observability.vm.js";
import { createRequest, mountCapability, wipePvLabel, rejectsWith } from "./support.js";

const MVG = "loammpv";
const CLASS = { "loam.csi.dev/deviceClass": "mpv" };
const CONFIG = "/run/loam-test/missing-pv.json";
const METRICS = "http://127.0.0.1:9975";
const STAGING = `${KUBELET_DIR}/plugins/loam/mpv-lost/globalmount`;

export function missingPvTests(h: () => Harness): void {
  const disks = vmDisks().slice(3, 5);
  describe("missing PV", { skip: disks.length < 2 ? "needs a fourth and a fifth scratch disk" : false }, () => {
    const ids: Record<"kept" | "lost", string> = { kept: "", lost: "" };
    let lostPv = "";
    let lostUuid = "";

    before(async () => {
      await h().must(["pvcreate", "-ff", "-y", ...disks]);
      await h().must(["vgcreate", "-y", MVG, ...disks]);
      await writeFile(
        CONFIG,
        JSON.stringify({
          deviceClasses: [
            { name: "thick", volumeGroup: VG, default: true },
            { name: "mpv", volumeGroup: MVG },
          ],
        }),
      );
      await h().killLoam("SIGTERM");
      await h().startLoam(["--config", CONFIG]);
      // One volume on each PV: the second is made while the first's PV takes no allocations.
      for (const which of ["kept", "lost"] as const) {
        const reply = await h().client.call(Controller, "createVolume", {
          ...createRequest(`mpv-${which}`, 64 * MiB),
          volumeCapabilities: [mountCapability("ext4")],
          parameters: CLASS,
        });
        ids[which] = reply.volume?.volumeId ?? "";
        const pv = await pvOf(h, ids[which]);
        if (which === "kept") await h().must(["pvchange", "-x", "n", pv]);
        else lostPv = pv;
      }
      // Staged (mkfs, mount) so NodeGetVolumeStats and NodeExpandVolume have a path to work on.
      await mkdir(STAGING, { recursive: true });
      await h().client.call(Node, "nodeStageVolume", {
        volumeId: ids.lost,
        stagingTargetPath: STAGING,
        volumeCapability: mountCapability("ext4"),
      });
      await h().must(["pvchange", "-x", "y", await pvOf(h, ids.kept)]);
      assert.notEqual(await pvOf(h, ids.kept), lostPv);
      lostUuid = (await h().must(["pvs", "--noheadings", "-o", "pv_uuid", lostPv])).stdout.trim();
      assert.ok((await capacity(h, CLASS)) > 0n);
      // The label and metadata area of the PV go; the data behind them stays where the LV's table points.
      await wipePvLabel(h(), lostPv);
    });

    after(async () => {
      if (ids.lost !== "") {
        await h()
          .client.call(Node, "nodeUnstageVolume", { volumeId: ids.lost, stagingTargetPath: STAGING })
          .catch(() => h().must(["umount", STAGING], { allowFailure: true }));
      }
      await h().killLoam("SIGTERM");
      await h().must(["vgremove", "-ff", "-y", MVG], { allowFailure: true });
      await h().must(["wipefs", "-a", ...disks], { allowFailure: true });
      await h().startLoam();
    });

    test("GetCapacity of the class is 0; the other volume group's class keeps its room", async () => {
      assert.equal(await capacity(h, CLASS), 0n);
      assert.ok((await capacity(h, {})) > 0n);
    });

    test("CreateVolume is RESOURCE_EXHAUSTED naming the PV, the volume on it and the fix", async () => {
      await rejectsWith(
        h().client.call(Controller, "createVolume", { ...createRequest("mpv-new", 8 * MiB), parameters: CLASS }),
        status.RESOURCE_EXHAUSTED,
        new RegExp(
          `volume group ${MVG} cannot allocate: LVM cannot find physical volume ${lostUuid} \\(holding ${ids.lost}\\).*` +
            `vgextend --restoremissing ${MVG} DEVICE.*vgreduce --removemissing ${MVG}`,
        ),
      );
      assert.deepEqual(await lvNames(h), [ids.kept, ids.lost].sort());
    });

    test("NodeExpandVolume is FAILED_PRECONDITION with the fix, the LV not grown", async () => {
      await rejectsWith(
        h().client.call(Node, "nodeExpandVolume", {
          volumeId: ids.lost,
          volumePath: STAGING,
          capacityRange: { requiredBytes: BigInt(128 * MiB), limitBytes: 0n },
        }),
        status.FAILED_PRECONDITION,
        new RegExp(`cannot grow ${ids.lost}: volume group ${MVG} cannot allocate: .*${lostUuid}`),
      );
    });

    test("LVM's own refusal (a PV lost after loam looked) is classified, with the PV named", async () => {
      await assert.rejects(
        h().lvm.createLv({ vg: MVG, name: "mpv-direct", sizeBytes: 8 * MiB, tags: [] }),
        (error: unknown) => error instanceof MissingPhysicalVolumesError && error.missingPvUuids.includes(lostUuid),
      );
    });

    test("the volume on the lost PV is abnormal naming it; the other stays normal", async () => {
      const get = async (id: string) =>
        (await h().client.call(Controller, "controllerGetVolume", { volumeId: id })).status?.volumeCondition;
      const lost = await get(ids.lost);
      assert.equal(lost?.abnormal, true);
      assert.match(lost?.message ?? "", new RegExp(`${MVG}/${ids.lost} has extents on physical volume ${lostUuid}`));
      assert.equal((await get(ids.kept))?.abnormal, false, (await get(ids.kept))?.message);
      const listed = await h().client.call(Controller, "listVolumes", {});
      const conditions = Object.fromEntries(
        listed.entries.map((e) => [e.volume?.volumeId ?? "", e.status?.volumeCondition?.abnormal]),
      );
      assert.deepEqual([conditions[ids.lost], conditions[ids.kept]], [true, false]);
      const stats = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: ids.lost, volumePath: STAGING });
      assert.equal(stats.volumeCondition?.abnormal, true);
      assert.match(stats.volumeCondition?.message ?? "", new RegExp(`physical volume ${lostUuid}`));
    });

    test("loam doctor fails naming the PV, its volume and the fix; loam status and /metrics name them", async () => {
      const doctor = await runLoam(["doctor", "--json", "--volume-group", MVG]);
      assert.equal(doctor.code, 1, doctor.stdout);
      const findings = (JSON.parse(doctor.stdout) as { findings: Array<Record<string, string>> }).findings;
      const finding = findings.find((f) => f.check === `physical volumes of ${MVG}`);
      assert.equal(finding?.status, "fail", doctor.stdout);
      assert.match(finding?.detail ?? "", new RegExp(`physical volume ${lostUuid} \\(holding ${ids.lost}\\)`));
      assert.match(finding?.fix ?? "", /vgreduce --removemissing loammpv/);

      const status = await runLoam(["status", "--volume-group", MVG]);
      assert.match(status.stdout, new RegExp(`^${lostUuid} +${MVG} +${ids.lost} *$`, "m"), status.stdout);

      await sleep(DEFAULT_CACHE_MS + 200);
      const body = await (await fetch(`${METRICS}/metrics`)).text();
      assert.match(body, new RegExp(`^loam_volume_group_missing_physical_volumes\\{volume_group="${MVG}"\\} 1$`, "m"));
      assert.match(body, new RegExp(`^loam_volume_group_missing_physical_volumes\\{volume_group="${VG}"\\} 0$`, "m"));
      assert.match(
        body,
        new RegExp(`^loam_volume_abnormal\\{volume_group="${MVG}",volume_id="${ids.lost}"\\} 1$`, "m"),
      );
      assert.match(
        body,
        new RegExp(`^loam_volume_abnormal\\{volume_group="${MVG}",volume_id="${ids.kept}"\\} 0$`, "m"),
      );
    });

    // Last: it unstages and deactivates the volume on the lost PV.
    test("NodeStageVolume of the volume on the lost PV, once inactive, is FAILED_PRECONDITION naming the PV", async () => {
      await h().client.call(Node, "nodeUnstageVolume", { volumeId: ids.lost, stagingTargetPath: STAGING });
      await h().must(["lvchange", "--activate", "n", `${MVG}/${ids.lost}`]);
      await rejectsWith(
        h().client.call(Node, "nodeStageVolume", {
          volumeId: ids.lost,
          stagingTargetPath: STAGING,
          volumeCapability: mountCapability("ext4"),
        }),
        status.FAILED_PRECONDITION,
        new RegExp(
          `activating ${ids.lost} failed: the volume has extents on a missing physical volume \\(${lostUuid}\\)`,
        ),
      );
    });
  });
}

async function capacity(h: () => Harness, parameters: Record<string, string>): Promise<bigint> {
  const reply = await h().client.call(Controller, "getCapacity", {
    volumeCapabilities: [mountCapability("ext4")],
    parameters,
  });
  return reply.availableCapacity;
}

/** The one PV that holds the LV's extents (the test makes linear 64 MiB volumes). */
async function pvOf(h: () => Harness, lv: string): Promise<string> {
  const out = await h().must(["lvs", "--noheadings", "-o", "devices", `${MVG}/${lv}`]);
  const pv = /(\/dev\/\S+?)\(\d+\)/.exec(out.stdout)?.[1];
  if (!pv) throw new Error(`no PV found for ${MVG}/${lv}: ${out.stdout}`);
  return pv;
}

async function lvNames(h: () => Harness): Promise<string[]> {
  const out = await h().must(["lvs", "--noheadings", "-o", "lv_name", MVG], { allowFailure: true });
  return out.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .sort();
}

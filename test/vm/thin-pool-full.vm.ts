/**
 * A thin pool that runs out of data space, on real LVM (issue 13, item 2): a 16 MiB pool in
 * the harness VG, set to error when full (lvchange --errorwhenfull y; loam's classes have no
 * such setting), a 16 MiB loam volume published as a block device, and a 64 MiB thin LV made
 * by hand in the same pool (loam itself refuses a thin volume larger than the pool's free
 * space) written until writes fail; then writes to loam's volume fail too. ControllerGetVolume, ListVolumes and NodeGetVolumeStats, asked before the writes (so
 * loam's LVM cache is warm), must then report it abnormal with what to do, and normal again
 * once the pool is extended. The pool and the volume are removed afterwards.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, KUBELET_DIR, VG } from "./harness.js";
import { writeRandom } from "./device-classes.vm.js";
import { blockCapability, createRequest, rejectsWith } from "./support.js";

const CONFIG = "/run/loam-test/thin-pool-full.json";
const POOL = "fullpool";
const CLASS = { "loam.csi.dev/deviceClass": "full" };

interface Condition {
  abnormal: boolean;
  message: string;
}

export function thinPoolFullTests(h: () => Harness): void {
  describe("thin-pool-full: a thin pool out of data space shows in every condition", () => {
    const capability = blockCapability();
    const staging = join(KUBELET_DIR, "plugins/kubernetes.io/csi/loam.csi.dev/thin-full/globalmount");
    const target = join(KUBELET_DIR, "pods/thin-full/volumeDevices/kubernetes.io~csi/pvc/dev");
    let id = "";

    before(async () => {
      await h().lvm.createThinPool({ vg: VG, name: POOL, sizeBytes: 16 * MiB });
      await h().must(["lvchange", "--errorwhenfull", "y", `${VG}/${POOL}`]);
      await writeFile(
        CONFIG,
        JSON.stringify({
          deviceClasses: [
            { name: "plain", volumeGroup: VG, default: true },
            { name: "full", volumeGroup: VG, type: "thin", thinPool: POOL, overprovisionRatio: 10 },
          ],
        }),
      );
      await h().killLoam("SIGTERM");
      await h().startLoam(["--config", CONFIG]);
      mkdirSync(staging, { recursive: true });
      mkdirSync(dirname(target), { recursive: true });
    });

    after(async () => {
      if (id) {
        const volume = { volumeId: id };
        await h()
          .client.call(Node, "nodeUnpublishVolume", { ...volume, targetPath: target })
          .catch(() => undefined);
        await h()
          .client.call(Node, "nodeUnstageVolume", { ...volume, stagingTargetPath: staging })
          .catch(() => undefined);
      }
      await h().killLoam("SIGTERM");
      const { lvs } = await h().report();
      for (const lv of lvs.filter((l) => !l.internal && l.segType === "thin" && l.poolLv === POOL))
        await h().must(["lvremove", "-y", `${VG}/${lv.name}`]);
      await h().must(["lvremove", "-y", `${VG}/${POOL}`]);
      await h().startLoam();
    });

    /** The condition each of the three RPCs gives for the volume, and how long each took. */
    async function conditions(): Promise<Record<"get" | "list" | "stats", Condition | undefined>> {
      const plain = (c: Condition | undefined): Condition | undefined =>
        c && { abnormal: c.abnormal, message: c.message };
      const get = await h().client.call(Controller, "controllerGetVolume", { volumeId: id });
      const list = await h().client.call(Controller, "listVolumes", {});
      const stats = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: target });
      return {
        get: plain(get.status?.volumeCondition),
        list: plain(list.entries.find((e) => e.volume?.volumeId === id)?.status?.volumeCondition),
        stats: plain(stats.volumeCondition),
      };
    }

    async function assertAll(abnormal: boolean, message: RegExp): Promise<void> {
      for (const [rpc, condition] of Object.entries(await conditions())) {
        assert.equal(condition?.abnormal, abnormal, `${rpc}: ${condition?.message}`);
        // NodeGetVolumeStats says only "volume is healthy" when nothing is wrong.
        if (rpc === "stats" && !abnormal) assert.equal(condition?.message, "volume is healthy");
        else assert.match(condition?.message ?? "", message, rpc);
      }
    }

    const FILLER = `/dev/${VG}/thin-full-filler`;
    /** dd's complaint, or "" when the write went through. */
    const write = (mib: number, seekMiB: number, device = target): Promise<string> =>
      writeRandom(h, device, mib, seekMiB).then(
        () => "",
        (error: Error) => error.message || "failed",
      );

    test("writes past the pool fail; all three conditions say so and what to do; normal again after lvextend", async (t) => {
      const made = await h().client.call(Controller, "createVolume", {
        ...createRequest("thin-full", 16 * MiB),
        volumeCapabilities: [capability],
        parameters: CLASS,
      });
      id = made.volume?.volumeId ?? "";
      const stage = { volumeId: id, stagingTargetPath: staging, volumeCapability: capability };
      await h().client.call(Node, "nodeStageVolume", stage);
      await h().client.call(Node, "nodePublishVolume", { ...stage, targetPath: target, readonly: false });

      // Made before the conditions are first asked: filling it later changes no LVM metadata.
      await h().must(["lvcreate", "-y", "-V", "64M", "--thin", "-n", "thin-full-filler", `${VG}/${POOL}`]);
      // Asked once before the pool fills: loam's LVM state cache now holds "data 0%".
      await assertAll(false, /^thin volume is active; pool loamvg\/fullpool data [\d.]+%, metadata [\d.]+%$/);

      assert.equal(await write(4, 0), "", "loam's volume takes 4 MiB of the pool");
      const filled = await write(32, 0, FILLER);
      assert.match(
        filled,
        /No space left on device|Input\/output error/,
        "a 32 MiB write into a 16 MiB pool must fail",
      );
      const failed = await write(4, 8);
      assert.match(failed, /No space left on device|Input\/output error/, "writes to loam's volume fail too");
      const dm = await h().must(["dmsetup", "status", `${VG}-${POOL}-tpool`]);
      assert.match(dm.stdout, / out_of_data_space /);

      const started = performance.now();
      await assertAll(
        true,
        /^thin pool loamvg\/fullpool is out of data space \(data 100%, metadata [\d.]+%\): writes that need new blocks fail; extend the pool \(lvextend -L \+SIZE loamvg\/fullpool, after vgextend loamvg NEW_PV if the volume group has no free space\) or free blocks in it/,
      );
      t.diagnostic(`three condition reads of a full pool: ${(performance.now() - started).toFixed(0)} ms`);
      await rejectsWith(
        h().client.call(Controller, "createVolume", { ...createRequest("thin-full-2", 8 * MiB), parameters: CLASS }),
        status.RESOURCE_EXHAUSTED,
        /data usage is 100%/,
      );

      await h().must(["lvextend", "-L", "+48M", `${VG}/${POOL}`]);
      await assertAll(false, /^thin volume is active; pool loamvg\/fullpool data 25%, metadata [\d.]+%$/);
      const more = await write(4, 8);
      assert.equal(more, "", "a write after the pool was extended");
    });
  });
}

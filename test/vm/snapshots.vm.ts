/**
 * Snapshots, restores and clones against real LVM: content checked by checksums of the block
 * devices and by mounting restored filesystems; idempotency, listing, thick refusals.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { status } from "@grpc/grpc-js";
import { Controller, ControllerServiceCapability_RPC_Type as Rpc } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, VG } from "./harness.js";
import { createRequest, rejectsWith } from "./support.js";
import { sha256, useDeviceClasses, writeRandom } from "./device-classes.vm.js";

const PARAM = "loam.csi.dev/deviceClass";
const MNT = "/run/loam-test/mnt";

const thinRequest = (name: string, bytes = 16 * MiB) => ({
  ...createRequest(name, bytes),
  parameters: { [PARAM]: "thin" },
});
const device = (id: string): string => `/dev/${VG}/${id}`;

export function snapshotTests(h: () => Harness): void {
  describe("snapshots, restores and clones", () => {
    let undo: (() => Promise<void>) | undefined;
    before(async () => {
      undo = await useDeviceClasses(
        h,
        [{ name: "snappool", sizeBytes: 256 * MiB }],
        [
          { name: "thick", volumeGroup: VG, default: true },
          { name: "thin", volumeGroup: VG, type: "thin", thinPool: "snappool", overprovisionRatio: 4 },
        ],
      );
      await mkdir(MNT, { recursive: true });
    });
    after(async () => {
      await undo?.();
    });

    /** Reads a snapshot's blocks: activate it (it skips activation), hash, deactivate. */
    async function snapshotHash(id: string, bytes?: number): Promise<string> {
      await h().must(["lvchange", "-ay", "-K", `${VG}/${id}`]);
      try {
        return await sha256(device(id), bytes);
      } finally {
        await h().must(["lvchange", "-an", `${VG}/${id}`]);
      }
    }

    test("ControllerGetCapabilities offers snapshots, listing and cloning", async () => {
      const { capabilities } = await h().client.call(Controller, "controllerGetCapabilities", {});
      const rpcs = capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : undefined));
      for (const rpc of [Rpc.CREATE_DELETE_SNAPSHOT, Rpc.LIST_SNAPSHOTS, Rpc.CLONE_VOLUME])
        assert.ok(rpcs.includes(rpc), Rpc[rpc]);
    });

    test("a thin snapshot holds the source as it was; later writes to the source do not reach it; a restore shows it", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", thinRequest("snap-src"));
      const id = volume!.volumeId;
      await writeRandom(h, device(id), 16);
      const before = await sha256(device(id));

      const started = Date.now();
      const { snapshot } = await h().client.call(Controller, "createSnapshot", { name: "snap-1", sourceVolumeId: id });
      assert.ok(snapshot);
      assert.equal(snapshot.readyToUse, true);
      assert.equal(snapshot.sourceVolumeId, id);
      assert.equal(Number(snapshot.sizeBytes), 16 * MiB);
      const created = Number(snapshot.creationTime!.seconds) * 1000;
      assert.ok(Math.abs(created - started) < 60_000, "creation_time is now");
      const lv = (await h().report()).lvs.find((l) => l.name === snapshot.snapshotId)!;
      assert.deepEqual([lv.segType, lv.poolLv, lv.active], ["thin", "snappool", false]);

      assert.equal(await snapshotHash(snapshot.snapshotId), before, "snapshot equals the source at snapshot time");
      await writeRandom(h, device(id), 4, 4);
      assert.notEqual(await sha256(device(id)), before);
      assert.equal(
        await snapshotHash(snapshot.snapshotId),
        before,
        "later writes to the source do not change the snapshot",
      );

      // Restore into a larger volume: the first 16 MiB are the snapshot's.
      const restore = {
        ...thinRequest("snap-restore", 32 * MiB),
        volumeContentSource: { type: { case: "snapshot" as const, value: { snapshotId: snapshot.snapshotId } } },
      };
      const restored = (await h().client.call(Controller, "createVolume", restore)).volume!;
      assert.equal(Number(restored.capacityBytes), 32 * MiB);
      assert.equal(restored.contentSource?.type.case, "snapshot");
      const rlv = (await h().report()).lvs.find((l) => l.name === restored.volumeId)!;
      assert.deepEqual([rlv.segType, rlv.sizeBytes, rlv.active], ["thin", 32 * MiB, true]);
      assert.equal(await sha256(device(restored.volumeId), 16 * MiB), before);
      assert.ok(!rlv.tags.some((t) => t.startsWith("loam.csi.dev/state=")), "the populating mark is gone");

      // The same restore again is the same volume.
      const again = (await h().client.call(Controller, "createVolume", restore)).volume!;
      assert.equal(again.volumeId, restored.volumeId);

      // Deleting the source and then the snapshot leaves the restored volume intact.
      await h().client.call(Controller, "deleteVolume", { volumeId: id });
      const listed = await h().client.call(Controller, "listSnapshots", { snapshotId: snapshot.snapshotId });
      assert.equal(listed.entries.length, 1, "a snapshot outlives its source");
      await h().client.call(Controller, "deleteSnapshot", { snapshotId: snapshot.snapshotId });
      await h().client.call(Controller, "deleteSnapshot", { snapshotId: snapshot.snapshotId });
      assert.equal(await sha256(device(restored.volumeId), 16 * MiB), before);
      await h().client.call(Controller, "deleteVolume", { volumeId: restored.volumeId });
    });

    test("a restored filesystem mounts and shows the snapshot's file, not the source's later one", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", thinRequest("fs-src"));
      const id = volume!.volumeId;
      await h().must(["mkfs.ext4", "-q", device(id)]);
      await h().must(["mount", device(id), MNT]);
      await writeFile(`${MNT}/data.txt`, "at snapshot time\n");
      await h().must(["umount", MNT]);
      const { snapshot } = await h().client.call(Controller, "createSnapshot", { name: "fs-snap", sourceVolumeId: id });
      await h().must(["mount", device(id), MNT]);
      await writeFile(`${MNT}/data.txt`, "later\n");
      await h().must(["umount", MNT]);

      const restore = {
        ...thinRequest("fs-restore"),
        volumeContentSource: { type: { case: "snapshot" as const, value: { snapshotId: snapshot!.snapshotId } } },
      };
      const restored = (await h().client.call(Controller, "createVolume", restore)).volume!;
      await h().must(["mount", device(restored.volumeId), MNT]);
      try {
        assert.equal(await readFile(`${MNT}/data.txt`, "utf8"), "at snapshot time\n");
      } finally {
        await h().must(["umount", MNT]);
      }
      await h().client.call(Controller, "deleteVolume", { volumeId: restored.volumeId });
      await h().client.call(Controller, "deleteSnapshot", { snapshotId: snapshot!.snapshotId });
      await h().client.call(Controller, "deleteVolume", { volumeId: id });
    });

    test("a clone of a live, mounted thin volume mounts and shows the data synced before the clone", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", thinRequest("live-src"));
      const id = volume!.volumeId;
      await h().must(["mkfs.ext4", "-q", device(id)]);
      await h().must(["mount", device(id), MNT]);
      try {
        await writeFile(`${MNT}/live.txt`, "written while mounted\n");
        await h().must(["sync"]);
        const clone = {
          ...thinRequest("live-clone"),
          volumeContentSource: { type: { case: "volume" as const, value: { volumeId: id } } },
        };
        const cloned = (await h().client.call(Controller, "createVolume", clone)).volume!;
        assert.equal(cloned.contentSource?.type.case, "volume");
        // Into the thick class it would be a block copy of a mounted volume: refused, with the way out.
        await rejectsWith(
          h().client.call(Controller, "createVolume", { ...clone, ...createRequest("live-thick-clone", 16 * MiB) }),
          status.FAILED_PRECONDITION,
          /is in use \(open: mounted or held by a process\).*torn copy.*clone it in a thin device class on its own pool \(loamvg\/snappool\)/,
        );
        assert.deepEqual(await h().lvsNamed("live-thick-clone"), []);
        await h().must(["umount", MNT]);
        await h().must(["mount", device(cloned.volumeId), MNT]);
        assert.equal(await readFile(`${MNT}/live.txt`, "utf8"), "written while mounted\n");
        await h().must(["umount", MNT]);
        await h().client.call(Controller, "deleteVolume", { volumeId: cloned.volumeId });
      } finally {
        await h().must(["umount", MNT], { allowFailure: true });
      }
      await h().client.call(Controller, "deleteVolume", { volumeId: id });
    });

    test("thick clones are block copies: same checksum, larger target allowed, and a thick volume into the thin class", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", {
        ...createRequest("thick-src", 16 * MiB),
        parameters: {},
      });
      const id = volume!.volumeId;
      await writeRandom(h, device(id), 16);
      const sum = await sha256(device(id));
      const source = { type: { case: "volume" as const, value: { volumeId: id } } };

      const thick = (
        await h().client.call(Controller, "createVolume", {
          ...createRequest("thick-clone", 24 * MiB),
          parameters: {},
          volumeContentSource: source,
        })
      ).volume!;
      const tlv = (await h().report()).lvs.find((l) => l.name === thick.volumeId)!;
      assert.deepEqual([tlv.segType, tlv.sizeBytes], ["linear", 24 * MiB]);
      assert.equal(await sha256(device(thick.volumeId), 16 * MiB), sum);

      const thin = (
        await h().client.call(Controller, "createVolume", {
          ...thinRequest("thick-to-thin"),
          volumeContentSource: source,
        })
      ).volume!;
      assert.equal((await h().report()).lvs.find((l) => l.name === thin.volumeId)?.segType, "thin");
      assert.equal(await sha256(device(thin.volumeId)), sum);

      await rejectsWith(
        h().client.call(Controller, "createSnapshot", { name: "thick-snap", sourceVolumeId: id }),
        status.FAILED_PRECONDITION,
        /is a thick linear volume .*snapshots need a thin device class/,
      );
      for (const v of [thick.volumeId, thin.volumeId, id])
        await h().client.call(Controller, "deleteVolume", { volumeId: v });
    });

    test("a thick clone of a volume a process holds open is FAILED_PRECONDITION (a torn copy); closed, it is copied", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", createRequest("held-src", 8 * MiB));
      const id = volume!.volumeId;
      await writeRandom(h, device(id), 8);
      const sum = await sha256(device(id));
      const clone = {
        ...createRequest("held-clone", 8 * MiB),
        volumeContentSource: { type: { case: "volume" as const, value: { volumeId: id } } },
      };
      const held = await open(device(id), "r");
      try {
        const report = (await h().report()).lvs.find((l) => l.name === id)!;
        assert.equal(report.attr.charAt(5), "o", `lv_attr ${report.attr} shows the LV open`);
        await rejectsWith(
          h().client.call(Controller, "createVolume", clone),
          status.FAILED_PRECONDITION,
          new RegExp(`^source volume ${id} is in use \\(open: mounted or held by a process\\) on this node.*torn copy`),
        );
        assert.deepEqual(await h().lvsNamed("held-clone"), [], "no LV is made for a refused clone");
      } finally {
        await held.close();
      }
      const cloned = (await h().client.call(Controller, "createVolume", clone)).volume!;
      assert.equal(await sha256(device(cloned.volumeId)), sum);
      for (const v of [cloned.volumeId, id]) await h().client.call(Controller, "deleteVolume", { volumeId: v });
    });

    test("CreateSnapshot is idempotent by name; another source is ALREADY_EXISTS; ListSnapshots filters and pages", async () => {
      const a = (await h().client.call(Controller, "createVolume", thinRequest("list-a", 8 * MiB))).volume!.volumeId;
      const b = (await h().client.call(Controller, "createVolume", thinRequest("list-b", 8 * MiB))).volume!.volumeId;
      const first = (await h().client.call(Controller, "createSnapshot", { name: "list-s1", sourceVolumeId: a }))
        .snapshot!;
      const again = (await h().client.call(Controller, "createSnapshot", { name: "list-s1", sourceVolumeId: a }))
        .snapshot!;
      assert.equal(again.snapshotId, first.snapshotId);
      assert.equal(again.creationTime?.seconds, first.creationTime?.seconds);
      await rejectsWith(
        h().client.call(Controller, "createSnapshot", { name: "list-s1", sourceVolumeId: b }),
        status.ALREADY_EXISTS,
        new RegExp(`snapshot "list-s1" exists with source volume ${a}; this request names ${b}`),
      );
      await h().client.call(Controller, "createSnapshot", { name: "list-s2", sourceVolumeId: a });
      await h().client.call(Controller, "createSnapshot", { name: "list-s3", sourceVolumeId: b });

      const all: string[] = [];
      const sizes: number[] = [];
      let token = "";
      do {
        const page = await h().client.call(Controller, "listSnapshots", { maxEntries: 2, startingToken: token });
        sizes.push(page.entries.length);
        all.push(...page.entries.map((e) => e.snapshot!.snapshotId));
        token = page.nextToken;
      } while (token);
      assert.deepEqual(sizes, [2, 1]);
      const ofA = await h().client.call(Controller, "listSnapshots", { sourceVolumeId: a });
      assert.equal(ofA.entries.length, 2);
      assert.ok(ofA.entries.every((e) => e.snapshot?.sourceVolumeId === a));
      assert.equal(
        (await h().client.call(Controller, "listSnapshots", { snapshotId: "snap-no-such-0123456789abcdef" })).entries
          .length,
        0,
      );
      const got = await h().client.call(Controller, "getSnapshot", { snapshotId: first.snapshotId });
      assert.equal(got.snapshot?.sourceVolumeId, a);

      // DeleteVolume with a snapshot's id leaves the snapshot alone.
      await h().client.call(Controller, "deleteVolume", { volumeId: first.snapshotId });
      assert.equal(
        (await h().client.call(Controller, "listSnapshots", { snapshotId: first.snapshotId })).entries.length,
        1,
      );
      for (const id of all) await h().client.call(Controller, "deleteSnapshot", { snapshotId: id });
      for (const id of [a, b]) await h().client.call(Controller, "deleteVolume", { volumeId: id });
      assert.equal((await h().client.call(Controller, "listSnapshots", {})).entries.length, 0);
    });

    test("restores that cannot be: unknown source is NOT_FOUND, a limit below the source is OUT_OF_RANGE", async () => {
      const a = (await h().client.call(Controller, "createVolume", thinRequest("bad-src", 16 * MiB))).volume!.volumeId;
      const snap = (await h().client.call(Controller, "createSnapshot", { name: "bad-snap", sourceVolumeId: a }))
        .snapshot!;
      await rejectsWith(
        h().client.call(Controller, "createVolume", {
          ...thinRequest("bad-r1"),
          volumeContentSource: { type: { case: "snapshot", value: { snapshotId: "snap-nope-0123456789abcdef" } } },
        }),
        status.NOT_FOUND,
        /snapshot snap-nope-0123456789abcdef \(volume_content_source\) does not exist/,
      );
      await rejectsWith(
        h().client.call(Controller, "createVolume", {
          ...thinRequest("bad-r2"),
          capacityRange: { requiredBytes: 0n, limitBytes: BigInt(8 * MiB) },
          volumeContentSource: { type: { case: "snapshot", value: { snapshotId: snap.snapshotId } } },
        }),
        status.OUT_OF_RANGE,
        /limit_bytes \(8388608\) is smaller than the source's 16777216 bytes/,
      );
      await h().client.call(Controller, "deleteSnapshot", { snapshotId: snap.snapshotId });
      await h().client.call(Controller, "deleteVolume", { volumeId: a });
    });
  });
}

/** Controller and Identity against real LVM: create, idempotency, sizes, capacity, listing, deletion. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import {
  Controller,
  Identity,
  Node,
  PluginCapability_Service_Type as ServiceType,
} from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, NODE_ID, TOPOLOGY_KEY, VG } from "./harness.js";
import { createRequest, rejectsWith } from "./support.js";

export function controllerTests(h: () => Harness): void {
  describe("identity", () => {
    test("GetPluginInfo names the driver and its version", async () => {
      const info = await h().client.call(Identity, "getPluginInfo", {});
      assert.equal(info.name, "loam.csi.dev");
      assert.match(info.vendorVersion, /^\d+\.\d+\.\d+/);
    });

    test("GetPluginCapabilities offers the controller service and topology constraints", async () => {
      const { capabilities } = await h().client.call(Identity, "getPluginCapabilities", {});
      const services = capabilities.map((c) => (c.type.case === "service" ? c.type.value.type : undefined));
      assert.ok(services.includes(ServiceType.CONTROLLER_SERVICE));
      assert.ok(services.includes(ServiceType.VOLUME_ACCESSIBILITY_CONSTRAINTS));
    });

    test("Probe is ready while the volume group can be read", async () => {
      const reply = await h().client.call(Identity, "probe", {});
      assert.equal(reply.ready, true);
    });
  });

  describe("create and delete", () => {
    test("CreateVolume makes one tagged linear LV of the rounded size, visible to lvs", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", createRequest("cv-basic", 5 * MiB));
      assert.ok(volume);
      const extent = (await h().report()).vg.extentSizeBytes;
      assert.equal(Number(volume.capacityBytes), Math.ceil((5 * MiB) / extent) * extent);
      assert.deepEqual(volume.accessibleTopology[0]?.segments, { [TOPOLOGY_KEY]: NODE_ID });
      const lv = (await h().report()).lvs.find((l) => l.name === volume.volumeId);
      assert.ok(lv, "the LV exists");
      assert.equal(lv.sizeBytes, Number(volume.capacityBytes));
      assert.equal(lv.segType, "linear");
      assert.ok(lv.active, "the LV is active");
      await h().client.call(Controller, "deleteVolume", { volumeId: volume.volumeId });
      assert.equal(
        (await h().report()).lvs.find((l) => l.name === volume.volumeId),
        undefined,
      );
    });

    test("DeleteVolume of an unknown id succeeds, and twice in a row succeeds", async () => {
      await h().client.call(Controller, "deleteVolume", { volumeId: "never-made-0123456789abcdef" });
      const { volume } = await h().client.call(Controller, "createVolume", createRequest("cv-twice"));
      await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
      await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
    });

    test("DeleteVolume never removes an LV that loam did not create", async () => {
      await h().must(["lvcreate", "-y", "-L", "8M", "-n", "foreign-0123456789abcdef", VG]);
      await h().client.call(Controller, "deleteVolume", { volumeId: "foreign-0123456789abcdef" });
      assert.ok((await h().report()).lvs.some((l) => l.name === "foreign-0123456789abcdef"));
      await h().must(["lvremove", "-y", `${VG}/foreign-0123456789abcdef`]);
    });

    test("the same name and size returns the same volume; another size is ALREADY_EXISTS", async () => {
      const first = await h().client.call(Controller, "createVolume", createRequest("cv-idem", 16 * MiB));
      const again = await h().client.call(Controller, "createVolume", createRequest("cv-idem", 16 * MiB));
      assert.equal(again.volume?.volumeId, first.volume?.volumeId);
      assert.equal(again.volume?.capacityBytes, first.volume?.capacityBytes);
      await rejectsWith(
        h().client.call(Controller, "createVolume", createRequest("cv-idem", 32 * MiB)),
        status.ALREADY_EXISTS,
        /exists with 16777216 bytes/,
      );
      assert.equal((await h().lvsNamed("cv-idem")).length, 1);
      await h().client.call(Controller, "deleteVolume", { volumeId: first.volume!.volumeId });
    });

    test("16 parallel CreateVolume calls with one name make exactly one LV", async () => {
      const replies = await Promise.all(
        Array.from({ length: 16 }, () =>
          h().client.call(Controller, "createVolume", createRequest("cv-parallel", 32 * MiB)),
        ),
      );
      const ids = new Set(replies.map((r) => r.volume?.volumeId));
      assert.equal(ids.size, 1);
      assert.deepEqual(await h().lvsNamed("cv-parallel"), [...ids]);
      await h().client.call(Controller, "deleteVolume", { volumeId: [...ids][0]! });
    });

    test("a request larger than the free space is RESOURCE_EXHAUSTED with requested and free bytes, and nothing is made", async () => {
      const free = (await h().report()).vg.freeBytes;
      const extent = (await h().report()).vg.extentSizeBytes;
      await rejectsWith(
        h().client.call(Controller, "createVolume", createRequest("cv-too-big", free + extent)),
        status.RESOURCE_EXHAUSTED,
        new RegExp(`requested ${free + extent} bytes, free ${free} bytes`),
      );
      assert.deepEqual(await h().lvsNamed("cv-too-big"), []);
    });

    test("a request for exactly the free space succeeds", async () => {
      const free = (await h().report()).vg.freeBytes;
      const { volume } = await h().client.call(Controller, "createVolume", createRequest("cv-all", free));
      assert.equal(Number(volume!.capacityBytes), free);
      assert.equal((await h().report()).vg.freeBytes, 0);
      await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
    });

    test("a requisite topology without this node is refused with a message that says so", async () => {
      const request = createRequest("cv-elsewhere");
      const requisite = [{ segments: { [TOPOLOGY_KEY]: "other-node" } }];
      request.accessibilityRequirements = { requisite, preferred: [] };
      await rejectsWith(
        h().client.call(Controller, "createVolume", request),
        status.RESOURCE_EXHAUSTED,
        /this node \(topology.loam.csi.dev\/node=vm-node\) is not in the requested topology/,
      );
      requisite.push({ segments: { [TOPOLOGY_KEY]: NODE_ID } });
      const { volume } = await h().client.call(Controller, "createVolume", request);
      await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
    });
  });

  describe("capacity and listing", () => {
    test("GetCapacity equals the free bytes vgs reports, and minimum is one extent", async () => {
      const vgs = await h().must([
        "vgs",
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        "vg_free,vg_extent_size",
        VG,
      ]);
      const row = (
        JSON.parse(vgs.stdout) as { report: Array<{ vg: Array<{ vg_free: string; vg_extent_size: string }> }> }
      ).report[0].vg[0];
      const capacity = await h().client.call(Controller, "getCapacity", {});
      assert.equal(capacity.availableCapacity, BigInt(row.vg_free));
      assert.equal(capacity.maximumVolumeSize, BigInt(row.vg_free));
      assert.equal(capacity.minimumVolumeSize, BigInt(row.vg_extent_size));
    });

    test("GetCapacity for this node's segment counts; another node's segment is 0", async () => {
      const mine = await h().client.call(Controller, "getCapacity", {
        accessibleTopology: { segments: { [TOPOLOGY_KEY]: NODE_ID } },
      });
      assert.ok(mine.availableCapacity > 0n);
      const other = await h().client.call(Controller, "getCapacity", {
        accessibleTopology: { segments: { [TOPOLOGY_KEY]: "other" } },
      });
      assert.equal(other.availableCapacity, 0n);
    });

    test("ListVolumes pages 25 volumes by 10 with tokens, and refuses a token it did not issue", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) {
        const { volume } = await h().client.call(
          Controller,
          "createVolume",
          createRequest(`page-${String(i).padStart(2, "0")}`, 4 * MiB),
        );
        ids.push(volume!.volumeId);
      }
      const seen: string[] = [];
      const sizes: number[] = [];
      let token = "";
      do {
        const page = await h().client.call(Controller, "listVolumes", { maxEntries: 10, startingToken: token });
        sizes.push(page.entries.length);
        seen.push(...page.entries.map((e) => e.volume!.volumeId));
        token = page.nextToken;
      } while (token);
      assert.deepEqual(sizes, [10, 10, 5]);
      assert.deepEqual([...seen].sort(), [...ids].sort());
      await rejectsWith(
        h().client.call(Controller, "listVolumes", { maxEntries: 10, startingToken: "page-07" }),
        status.ABORTED,
        /starting_token was not issued/,
      );
      for (const id of ids) await h().client.call(Controller, "deleteVolume", { volumeId: id });
    });

    test("ControllerGetVolume reports the volume and its condition; NOT_FOUND for an unknown id", async () => {
      const { volume } = await h().client.call(Controller, "createVolume", createRequest("cv-get"));
      const got = await h().client.call(Controller, "controllerGetVolume", { volumeId: volume!.volumeId });
      assert.equal(got.volume?.capacityBytes, volume!.capacityBytes);
      assert.equal(got.status?.volumeCondition?.abnormal, false);
      await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
      await rejectsWith(
        h().client.call(Controller, "controllerGetVolume", { volumeId: volume!.volumeId }),
        status.NOT_FOUND,
        /does not exist/,
      );
    });

    test("NodeGetInfo gives the node id and its topology", async () => {
      const info = await h().client.call(Node, "nodeGetInfo", {});
      assert.equal(info.nodeId, NODE_ID);
      assert.deepEqual(info.accessibleTopology?.segments, { [TOPOLOGY_KEY]: NODE_ID });
    });
  });
}

/**
 * The Node service against real LVs through the CSI socket: stage, publish, write, online
 * expansion (xfs and ext4), stats, unpublish, unstage, restage without reformatting, raw
 * block volumes, the size as a hard limit, path attacks, idempotency and missing fields.
 * Long because each case needs a real volume made and torn down in the guest; they share
 * its helpers and one VM boot (see docs/vm.md for why the suite runs as one process).
 */
import { describe, test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import {
  Controller,
  Identity,
  Node,
  NodeServiceCapability_RPC_Type as Rpc,
  PluginCapability_VolumeExpansion_Type as ExpansionType,
  VolumeCapability_AccessMode_Mode as Mode,
  VolumeUsage_Unit as Unit,
} from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, KUBELET_DIR, VG } from "./harness.js";
import {
  blockCapability,
  createRequest,
  kubeletPaths,
  mountCapability,
  mountLines,
  rejectsWith,
  stageAndPublish,
} from "./support.js";

const sha256 = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");

const pathsFor = kubeletPaths;

const mountedAt = (path: string): boolean => mountLines(path).length > 0;

async function timed<T>(t: TestContext, what: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await fn();
  t.diagnostic(`${what}: ${Math.round(performance.now() - started)} ms`);
  return result;
}

export function nodeTests(h: () => Harness): void {
  const create = async (
    name: string,
    bytes: number,
    capability: ReturnType<typeof mountCapability> | ReturnType<typeof blockCapability>,
  ) => {
    const { volume } = await h().client.call(Controller, "createVolume", {
      ...createRequest(name, bytes),
      volumeCapabilities: [capability],
    });
    assert.ok(volume);
    return volume.volumeId;
  };
  const remove = (volumeId: string) => h().client.call(Controller, "deleteVolume", { volumeId });

  describe("node", () => {
    test("NodeGetCapabilities offers stage, expand, stats, condition and single-node multi-writer; the plugin expands online", async () => {
      const first = await h().client.call(Node, "nodeGetCapabilities", {});
      const again = await h().client.call(Node, "nodeGetCapabilities", {});
      const rpcs = first.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : undefined));
      assert.deepEqual(
        [...rpcs].sort(),
        [
          Rpc.STAGE_UNSTAGE_VOLUME,
          Rpc.EXPAND_VOLUME,
          Rpc.GET_VOLUME_STATS,
          Rpc.VOLUME_CONDITION,
          Rpc.SINGLE_NODE_MULTI_WRITER,
        ].sort(),
      );
      assert.deepEqual(again, first);
      const plugin = await h().client.call(Identity, "getPluginCapabilities", {});
      assert.ok(
        plugin.capabilities.some(
          (c) => c.type.case === "volumeExpansion" && c.type.value.type === ExpansionType.ONLINE,
        ),
        "online volume expansion is advertised",
      );
      const info = await h().client.call(Node, "nodeGetInfo", {});
      assert.deepEqual(await h().client.call(Node, "nodeGetInfo", {}), info);
    });

    const lifecycle = [
      { fsType: "xfs", size: 320 * MiB, grown: 512 * MiB },
      { fsType: "ext4", size: 64 * MiB, grown: 160 * MiB },
    ];
    for (const { fsType, size, grown } of lifecycle) {
      test(`${fsType}: stage, publish, write, expand online, stats, unpublish, unstage, restage keeps the data, delete`, async (t) => {
        const capability = mountCapability(fsType);
        const id = await create(`node-life-${fsType}`, size, capability);
        const { staging, target } = pathsFor(`life-${fsType}`);
        const stage = { volumeId: id, stagingTargetPath: staging, volumeCapability: capability };
        const publish = { ...stage, targetPath: target, readonly: false };

        await timed(t, `${fsType} NodeStageVolume (mkfs + mount)`, () =>
          h().client.call(Node, "nodeStageVolume", stage),
        );
        await timed(t, `${fsType} NodeStageVolume again`, () => h().client.call(Node, "nodeStageVolume", stage));
        assert.ok(mountedAt(staging));
        assert.match(readFileSync("/proc/self/mountinfo", "utf8"), new RegExp(` ${staging} .* - ${fsType} `));

        await timed(t, `${fsType} NodePublishVolume`, () => h().client.call(Node, "nodePublishVolume", publish));
        await h().client.call(Node, "nodePublishVolume", publish);
        await rejectsWith(
          h().client.call(Node, "nodePublishVolume", { ...publish, readonly: true }),
          status.ALREADY_EXISTS,
          /read-write/,
        );

        const file = join(target, "data.bin");
        writeFileSync(file, randomBytes(2 * MiB));
        const checksum = sha256(file);

        const statsBefore = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: target });
        const bytesBefore = statsBefore.usage.find((u) => u.unit === Unit.BYTES);
        assert.ok(bytesBefore && bytesBefore.used >= BigInt(2 * MiB), "the written file shows in used bytes");
        assert.ok(
          statsBefore.usage.some((u) => u.unit === Unit.INODES && u.used > 0n),
          "inodes are reported",
        );
        assert.equal(statsBefore.volumeCondition?.abnormal, false);

        const expand = {
          volumeId: id,
          volumePath: target,
          capacityRange: { requiredBytes: BigInt(grown), limitBytes: 0n },
          volumeCapability: capability,
        };
        const expanded = await timed(t, `${fsType} NodeExpandVolume (lvextend + grow)`, () =>
          h().client.call(Node, "nodeExpandVolume", expand),
        );
        assert.equal(expanded.capacityBytes, BigInt(grown));
        assert.deepEqual(await h().client.call(Node, "nodeExpandVolume", expand), expanded);
        assert.equal((await h().report()).lvs.find((lv) => lv.name === id)?.sizeBytes, grown);

        const statsAfter = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: target });
        const bytesAfter = statsAfter.usage.find((u) => u.unit === Unit.BYTES);
        assert.ok(
          bytesAfter && bytesAfter.total - bytesBefore.total > BigInt(Math.floor(((grown - size) * 8) / 10)),
          `total ${bytesBefore.total} -> ${bytesAfter?.total}`,
        );

        await timed(t, `${fsType} NodeUnpublishVolume`, () =>
          h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: target }),
        );
        await h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: target });
        assert.equal(existsSync(target), false, "unpublish removes the target directory");
        await timed(t, `${fsType} NodeUnstageVolume`, () =>
          h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging }),
        );
        await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
        assert.equal(mountedAt(staging), false);

        await timed(t, `${fsType} NodeStageVolume of a volume with data`, () =>
          h().client.call(Node, "nodeStageVolume", stage),
        );
        assert.equal(
          sha256(join(staging, "data.bin")),
          checksum,
          "restage found the same data: nothing was reformatted",
        );
        await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
        await remove(id);
      });
    }

    test("a read-only publish refuses writes while the read-write publish of the same volume keeps working", async () => {
      const capability = mountCapability("ext4");
      const id = await create("node-ro", 32 * MiB, capability);
      const { staging, target } = pathsFor("ro");
      const other = pathsFor("ro-writer").target;
      await h().client.call(Node, "nodeStageVolume", {
        volumeId: id,
        stagingTargetPath: staging,
        volumeCapability: capability,
      });
      await h().client.call(Node, "nodePublishVolume", {
        volumeId: id,
        stagingTargetPath: staging,
        targetPath: target,
        volumeCapability: capability,
        readonly: true,
      });
      await h().client.call(Node, "nodePublishVolume", {
        volumeId: id,
        stagingTargetPath: staging,
        targetPath: other,
        volumeCapability: capability,
        readonly: false,
      });
      assert.throws(() => writeFileSync(join(target, "x"), "x"), /EROFS/);
      writeFileSync(join(other, "y"), "y");
      assert.equal(readFileSync(join(target, "y"), "utf8"), "y", "the read-only view sees the writer's file");
      for (const path of [target, other])
        await h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: path });
      await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
      await remove(id);
    });

    test("SINGLE_NODE_SINGLE_WRITER is one workload: a second target is FAILED_PRECONDITION (read-only too, after a restart of loam too, block too); DeleteVolume of the staged volume is FAILED_PRECONDITION", async () => {
      const oneWorkload =
        /has access mode SINGLE_NODE_SINGLE_WRITER \(ReadWriteOncePod: one workload at a time\) and is already published at /;
      for (const capability of [
        mountCapability("ext4", Mode.SINGLE_NODE_SINGLE_WRITER),
        blockCapability(Mode.SINGLE_NODE_SINGLE_WRITER),
      ]) {
        const kind = capability.accessType.case;
        const id = await create(`node-rwop-${kind}`, 16 * MiB, capability);
        const { staging, target } = pathsFor(`rwop-${kind}-a`);
        const second = pathsFor(`rwop-${kind}-b`).target;
        const stage = { volumeId: id, stagingTargetPath: staging, volumeCapability: capability };
        const publishAt = (targetPath: string, readonly = false) =>
          h().client.call(Node, "nodePublishVolume", { ...stage, targetPath, readonly });
        await h().client.call(Node, "nodeStageVolume", stage);
        await publishAt(target);
        const refused = await rejectsWith(publishAt(second), status.FAILED_PRECONDITION, oneWorkload);
        assert.ok(refused.details.includes(target), refused.details);
        if (kind === "mount") {
          await rejectsWith(publishAt(second, true), status.FAILED_PRECONDITION, oneWorkload);
          // The LV is mounted: LVM refuses to remove it, and loam says so.
          await rejectsWith(remove(id), status.FAILED_PRECONDITION, /is in use \(mounted or open\) on this node/);
          // What is published is read from the kernel's mount table, not remembered by the process.
          await h().killLoam("SIGKILL");
          await h().startLoam();
          await rejectsWith(publishAt(second), status.FAILED_PRECONDITION, oneWorkload);
        }
        assert.equal(mountedAt(second), false, "nothing is mounted at the refused target");
        await publishAt(target);
        await h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: target });
        await publishAt(second);
        await h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: second });
        await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
        await remove(id);
      }
    });

    test("block: publish binds the device onto a file; dd writes through it and reads back the same bytes; expand grows the LV", async (t) => {
      const capability = blockCapability();
      const id = await create("node-block", 16 * MiB, capability);
      const { staging, target } = pathsFor("block");
      const stage = { volumeId: id, stagingTargetPath: staging, volumeCapability: capability };
      const publish = { ...stage, targetPath: target, readonly: false };
      await h().client.call(Node, "nodeStageVolume", stage);
      await h().client.call(Node, "nodeStageVolume", stage);
      await timed(t, "block NodePublishVolume", () => h().client.call(Node, "nodePublishVolume", publish));
      await h().client.call(Node, "nodePublishVolume", publish);
      assert.ok(lstatSync(target).isBlockDevice());

      const pattern = "/tmp/loam-block-pattern";
      writeFileSync(pattern, randomBytes(4 * MiB));
      await h().must(["dd", `if=${pattern}`, `of=${target}`, "bs=1M", "count=4", "conv=fsync"]);
      const copy = "/tmp/loam-block-readback";
      await h().must(["dd", `if=/dev/${VG}/${id}`, `of=${copy}`, "bs=1M", "count=4"]);
      assert.equal(sha256(copy), sha256(pattern), "the bytes written through the published file are on the LV");

      const expanded = await h().client.call(Node, "nodeExpandVolume", {
        volumeId: id,
        volumePath: target,
        capacityRange: { requiredBytes: BigInt(32 * MiB), limitBytes: 0n },
        volumeCapability: capability,
      });
      assert.equal(expanded.capacityBytes, BigInt(32 * MiB));
      const stats = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: target });
      assert.equal(stats.usage.find((u) => u.unit === Unit.BYTES)?.total, BigInt(32 * MiB));
      assert.equal(stats.volumeCondition?.abnormal, false);

      await rejectsWith(
        h().client.call(Node, "nodePublishVolume", { ...publish, targetPath: `${target}-ro`, readonly: true }),
        status.INVALID_ARGUMENT,
        /read-only bind mount of a device node/,
      );
      await h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: target });
      await h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: target });
      assert.equal(existsSync(target), false, "unpublish removes the device file");
      await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
      await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
      await remove(id);
    });

    test("the size is a hard limit: filling a volume ends in ENOSPC, and a second volume on the VG still takes writes", async () => {
      const capability = mountCapability("ext4");
      const small = await create("node-full", 32 * MiB, capability);
      const neighbour = await create("node-neighbour", 32 * MiB, capability);
      const a = pathsFor("full");
      const b = pathsFor("neighbour");
      await stageAndPublish(
        h().client,
        [
          [small, a],
          [neighbour, b],
        ],
        capability,
      );
      const neighbourBefore = await h().client.call(Node, "nodeGetVolumeStats", {
        volumeId: neighbour,
        volumePath: b.target,
      });
      const fill = await h().must(["dd", "if=/dev/zero", `of=${join(a.target, "fill")}`, "bs=1M", "count=64"], {
        allowFailure: true,
      });
      assert.notEqual(fill.exitCode, 0, "dd past the volume's size fails");
      assert.match(fill.stderr, /No space left on device/);
      const full = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: small, volumePath: a.target });
      assert.equal(full.usage.find((u) => u.unit === Unit.BYTES)?.available, 0n);

      await h().must(["dd", "if=/dev/zero", `of=${join(b.target, "ok")}`, "bs=1M", "count=8", "conv=fsync"]);
      const neighbourAfter = await h().client.call(Node, "nodeGetVolumeStats", {
        volumeId: neighbour,
        volumePath: b.target,
      });
      assert.equal(
        neighbourAfter.usage.find((u) => u.unit === Unit.BYTES)?.total,
        neighbourBefore.usage.find((u) => u.unit === Unit.BYTES)?.total,
      );
      for (const [id, p] of [
        [small, a],
        [neighbour, b],
      ] as const) {
        await h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: p.target });
        await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: p.staging });
        await remove(id);
      }
    });

    test("existing data is never formatted over: another filesystem or unknown bytes give FAILED_PRECONDITION", async () => {
      const xfsId = await create("node-keep-xfs", 320 * MiB, mountCapability("xfs"));
      const { staging } = pathsFor("keep");
      await h().client.call(Node, "nodeStageVolume", {
        volumeId: xfsId,
        stagingTargetPath: staging,
        volumeCapability: mountCapability("xfs"),
      });
      await h().client.call(Node, "nodeUnstageVolume", { volumeId: xfsId, stagingTargetPath: staging });
      await rejectsWith(
        h().client.call(Node, "nodeStageVolume", {
          volumeId: xfsId,
          stagingTargetPath: staging,
          volumeCapability: mountCapability("ext4"),
        }),
        status.FAILED_PRECONDITION,
        /already holds a xfs filesystem but ext4 was asked for/,
      );
      assert.equal(mountedAt(staging), false);
      await remove(xfsId);

      // A raw block volume's first stage takes off the mark its lvcreate wrote; what is then
      // written through the device is data, whatever a later stage asks for.
      const rawId = await create("node-keep-raw", 16 * MiB, blockCapability());
      await h().client.call(Node, "nodeStageVolume", {
        volumeId: rawId,
        stagingTargetPath: staging,
        volumeCapability: blockCapability(),
      });
      await h().client.call(Node, "nodeUnstageVolume", { volumeId: rawId, stagingTargetPath: staging });
      const junk = "/tmp/loam-junk";
      writeFileSync(junk, randomBytes(64 * 1024));
      await h().must(["dd", `if=${junk}`, `of=/dev/${VG}/${rawId}`, "bs=64k", "count=1", "conv=fsync"]);
      await rejectsWith(
        h().client.call(Node, "nodeStageVolume", {
          volumeId: rawId,
          stagingTargetPath: staging,
          volumeCapability: mountCapability("ext4"),
        }),
        status.FAILED_PRECONDITION,
        /never formats over existing data/,
      );
      await rejectsWith(
        h().client.call(Node, "nodeStageVolume", {
          volumeId: rawId,
          stagingTargetPath: staging,
          volumeCapability: mountCapability("ext4"),
        }),
        status.FAILED_PRECONDITION,
        /never formats over existing data/,
      );
      await remove(rawId);
    });

    test("volume condition: an unmounted staging path and an inactive LV are abnormal; stage reactivates the LV", async () => {
      const capability = mountCapability("ext4");
      const id = await create("node-condition", 16 * MiB, capability);
      const { staging } = pathsFor("condition");
      await h().must(["lvchange", "-an", `${VG}/${id}`]);
      const stats = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: staging });
      assert.equal(stats.volumeCondition?.abnormal, true);
      assert.match(stats.volumeCondition?.message ?? "", /not active/);
      assert.match(stats.volumeCondition?.message ?? "", /nothing is mounted/);
      await h().client.call(Node, "nodeStageVolume", {
        volumeId: id,
        stagingTargetPath: staging,
        volumeCapability: capability,
      });
      const healthy = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: staging });
      assert.equal(healthy.volumeCondition?.abnormal, false, healthy.volumeCondition?.message);
      await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
      await rejectsWith(
        h().client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: join(KUBELET_DIR, "no-such-path") }),
        status.NOT_FOUND,
        /does not exist/,
      );
      await remove(id);
    });

    test("path attacks are refused: outside the kubelet directory, .. segments, a symlink pointing outside", async () => {
      const capability = mountCapability("ext4");
      const id = await create("node-paths", 16 * MiB, capability);
      const { staging } = pathsFor("paths");
      mkdirSync("/tmp/loam-outside", { recursive: true });
      const link = join(KUBELET_DIR, "pods", "paths", "escape");
      if (!existsSync(link)) symlinkSync("/tmp/loam-outside", link);
      const attempts: Array<[string, RegExp]> = [
        ["/tmp/loam-outside/stage", /is not under/],
        [`${KUBELET_DIR}/pods/../../../tmp/loam-outside/stage`, /"\.\." segment/],
        [join(link, "stage"), /resolves to \/tmp\/loam-outside\/stage/],
      ];
      for (const [path, why] of attempts) {
        await rejectsWith(
          h().client.call(Node, "nodeStageVolume", {
            volumeId: id,
            stagingTargetPath: path,
            volumeCapability: capability,
          }),
          status.INVALID_ARGUMENT,
          new RegExp(`staging_target_path .*${why.source}`),
        );
      }
      await h().client.call(Node, "nodeStageVolume", {
        volumeId: id,
        stagingTargetPath: staging,
        volumeCapability: capability,
      });
      await rejectsWith(
        h().client.call(Node, "nodePublishVolume", {
          volumeId: id,
          stagingTargetPath: staging,
          targetPath: join(link, "mount"),
          volumeCapability: capability,
        }),
        status.INVALID_ARGUMENT,
        /target_path .*not under/,
      );
      assert.equal(existsSync("/tmp/loam-outside/mount"), false, "nothing was created outside");
      assert.equal(
        mountedAt("/tmp/loam-outside/stage") || mountedAt("/tmp/loam-outside/mount"),
        false,
        "nothing was mounted outside",
      );
      await h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
      await remove(id);
    });

    test("MULTI_NODE access modes are refused at stage with a reason", async () => {
      const { staging } = pathsFor("multi");
      await rejectsWith(
        h().client.call(Node, "nodeStageVolume", {
          volumeId: "any-volume-0123456789abcdef",
          stagingTargetPath: staging,
          volumeCapability: mountCapability("xfs", Mode.MULTI_NODE_MULTI_WRITER),
        }),
        status.INVALID_ARGUMENT,
        /MULTI_NODE_MULTI_WRITER is not supported \(a local LVM volume can only be reached from the node that holds it\)/,
      );
    });

    test("each missing required field of each Node RPC is INVALID_ARGUMENT naming the field", async () => {
      const capability = mountCapability("xfs");
      const path = join(KUBELET_DIR, "pods", "fields");
      const full = {
        stage: { volumeId: "v-0123456789abcdef", stagingTargetPath: path, volumeCapability: capability },
        publish: {
          volumeId: "v-0123456789abcdef",
          stagingTargetPath: path,
          targetPath: `${path}/t`,
          volumeCapability: capability,
        },
        unpublish: { volumeId: "v-0123456789abcdef", targetPath: `${path}/t` },
        unstage: { volumeId: "v-0123456789abcdef", stagingTargetPath: path },
        expand: { volumeId: "v-0123456789abcdef", volumePath: path },
        stats: { volumeId: "v-0123456789abcdef", volumePath: path },
      };
      const cases: Array<[string, () => Promise<unknown>, string]> = [];
      const drop = <T extends object>(request: T, key: keyof T): T => ({
        ...request,
        [key]: key === "volumeCapability" ? undefined : "",
      });
      for (const key of ["volumeId", "stagingTargetPath", "volumeCapability"] as const) {
        cases.push([
          "NodeStageVolume",
          () => h().client.call(Node, "nodeStageVolume", drop(full.stage, key)),
          snake(key),
        ]);
      }
      for (const key of ["volumeId", "stagingTargetPath", "targetPath", "volumeCapability"] as const) {
        cases.push([
          "NodePublishVolume",
          () => h().client.call(Node, "nodePublishVolume", drop(full.publish, key)),
          snake(key),
        ]);
      }
      for (const key of ["volumeId", "targetPath"] as const) {
        cases.push([
          "NodeUnpublishVolume",
          () => h().client.call(Node, "nodeUnpublishVolume", drop(full.unpublish, key)),
          snake(key),
        ]);
      }
      for (const key of ["volumeId", "stagingTargetPath"] as const) {
        cases.push([
          "NodeUnstageVolume",
          () => h().client.call(Node, "nodeUnstageVolume", drop(full.unstage, key)),
          snake(key),
        ]);
      }
      for (const key of ["volumeId", "volumePath"] as const) {
        cases.push([
          "NodeExpandVolume",
          () => h().client.call(Node, "nodeExpandVolume", drop(full.expand, key)),
          snake(key),
        ]);
        cases.push([
          "NodeGetVolumeStats",
          () => h().client.call(Node, "nodeGetVolumeStats", drop(full.stats, key)),
          snake(key),
        ]);
      }
      for (const [method, call, field] of cases) {
        const error = await rejectsWith(call(), status.INVALID_ARGUMENT, new RegExp(`^${field} is required`));
        assert.ok(error, `${method} without ${field}`);
        await rejectsWith(call(), status.INVALID_ARGUMENT, new RegExp(`^${field} is required`));
      }
    });
  });
}

const snake = (camel: string): string => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

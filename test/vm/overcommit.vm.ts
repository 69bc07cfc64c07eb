/**
 * Concurrent creates at the edge of what fits, on real LVM (issue 13, item 6): 12 parallel
 * CreateVolumes through gRPC at the edge of a thin class's overprovision ratio, and 12 at the
 * edge of a thick class's spare. Exactly the ones that fit succeed, the others are
 * RESOURCE_EXHAUSTED, and lvs afterwards shows no over-commit. The forced interleavings are
 * the host tests' (test/unit/overcommit.test.ts); this is the same storm where LVM is real.
 * Uses loamvg only; removes every LV and the pool it made and restarts loam as it found it.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { status } from "@grpc/grpc-js";
import { CsiCallError } from "../../src/csi/client.js";
import { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, VG } from "./harness.js";
import { createRequest } from "./support.js";

const CONFIG = "/run/loam-test/overcommit.json";
const POOL = "ocpool";
const POOL_BYTES = 64 * MiB;
const RATIO = 2;
const VOLUME = 16 * MiB;
const STORM = 12;

/** Sends every request at once; the ids made and the codes of the refusals. */
async function storm(
  h: () => Harness,
  prefix: string,
  deviceClass: string,
): Promise<{ ids: string[]; codes: string[] }> {
  const results = await Promise.allSettled(
    Array.from({ length: STORM }, (_, i) =>
      h().client.call(Controller, "createVolume", {
        ...createRequest(`${prefix}-${i}`, VOLUME),
        parameters: { "loam.csi.dev/deviceClass": deviceClass },
      }),
    ),
  );
  const ids: string[] = [];
  const codes: string[] = [];
  for (const result of results) {
    if (result.status === "fulfilled") ids.push(result.value.volume!.volumeId);
    else if (result.reason instanceof CsiCallError) codes.push(status[result.reason.code]);
    else throw result.reason;
  }
  return { ids, codes };
}

export function overcommitTests(h: () => Harness): void {
  describe("overcommit", () => {
    const made: string[] = [];
    before(async () => {
      await h().lvm.createThinPool({ vg: VG, name: POOL, sizeBytes: POOL_BYTES });
      const { vg } = await h().report();
      // Room above the spare for exactly 6 volumes of 16 MiB (and 2 extents over, so a 7th does not fit).
      const spareExtents = vg.freeExtentCount - 6 * (VOLUME / vg.extentSizeBytes) - 2;
      const classes = [
        { name: "plain", volumeGroup: VG, default: true },
        { name: "oc-thin", volumeGroup: VG, type: "thin", thinPool: POOL, overprovisionRatio: RATIO },
        { name: "oc-spare", volumeGroup: VG, spareBytes: spareExtents * vg.extentSizeBytes },
      ];
      await writeFile(CONFIG, JSON.stringify({ deviceClasses: classes }));
      await h().killLoam("SIGTERM");
      await h().startLoam(["--config", CONFIG]);
    });
    after(async () => {
      await Promise.all(made.map((volumeId) => h().client.call(Controller, "deleteVolume", { volumeId })));
      await h().killLoam("SIGTERM");
      await h().must(["lvremove", "-y", `${VG}/${POOL}`]);
      await h().startLoam();
    });

    test(`${STORM} parallel thin CreateVolumes at the edge of the overprovision ratio: exactly those that fit`, async () => {
      const { ids, codes } = await storm(h, "oc-thin", "oc-thin");
      made.push(...ids);
      const fit = (RATIO * POOL_BYTES) / VOLUME;
      assert.equal(ids.length, fit, `made ${ids.length}, refused ${codes.join(", ")}`);
      assert.deepEqual(new Set(codes), new Set(["RESOURCE_EXHAUSTED"]));
      const { lvs } = await h().report();
      const virtual = lvs
        .filter((lv) => lv.segType === "thin" && lv.poolLv === POOL)
        .reduce((sum, lv) => sum + lv.sizeBytes, 0);
      assert.equal(virtual, RATIO * POOL_BYTES, "lvs: Σ virtual sizes in the pool is the ratio's budget, not more");
    });

    test(`${STORM} parallel thick CreateVolumes at the edge of the class's spare: exactly those that fit`, async () => {
      const before = (await h().report()).vg.freeExtentCount;
      const { ids, codes } = await storm(h, "oc-spare", "oc-spare");
      made.push(...ids);
      assert.equal(ids.length, 6, `made ${ids.length}, refused ${codes.join(", ")}`);
      assert.deepEqual(new Set(codes), new Set(["RESOURCE_EXHAUSTED"]));
      const { vg } = await h().report();
      assert.equal(vg.freeExtentCount, before - 6 * (VOLUME / vg.extentSizeBytes), "vgs: the spare is still free");
    });
  });
}

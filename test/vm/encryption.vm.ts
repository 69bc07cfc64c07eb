/**
 * Encrypted volumes on real dm-crypt (issue 18): LUKS2 volumes staged, published, written,
 * unstaged and staged again; raw block; online expansion of xfs and ext4 (lvextend, cryptsetup
 * resize, the filesystem); a wrong or missing passphrase refused with the LV untouched; unstage
 * with the mapping held open; a crash between luksFormat and mkfs that the next stage converges
 * from; the passphrase in no log line. (Throughput plain vs encrypted is the bench's
 * `throughput` section, tools/bench/throughput.ts.)
 *
 * The shared harness's VG (the first two disks, as most groups) and loam, restarted with
 * --log-level debug for the group so every request and command is logged. The StorageClass
 * parameters use PBKDF2 with a 1 ms iteration time so unlocking takes no time under emulation:
 * a test setting only, never a default (docs/encryption.md).
 */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statfsSync,
  writeFileSync,
  writeSync,
  fsyncSync,
} from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { FORMATTING_TAG } from "../../src/volumes/metadata.js";
import { MiB } from "../../src/volumes/size.js";
import { type Harness, VG } from "./harness.js";
import { blockCapability, createRequest, kubeletPaths, mountCapability, rejectsWith, until } from "./support.js";

const PASSPHRASE = "loam-vm-encryption-passphrase-7f3a9c";
const WRONG = "loam-vm-wrong-passphrase-0b1e22";
const secrets = { encryptionPassphrase: PASSPHRASE };
/** Fast unlocks for tests only: PBKDF2 timed to 1 ms. */
const ENCRYPTED = {
  "loam.csi.dev/encryption": "luks2",
  "loam.csi.dev/encryptionPbkdf": "pbkdf2",
  "loam.csi.dev/encryptionIterTime": "1",
};
const WORK = "/tmp/loam-encryption";
const SHIMS = join(WORK, "bin");

const mapper = (id: string): string => `/dev/mapper/loam-${id}`;
const lvPath = (id: string): string => `/dev/${VG}/${id}`;

function sha256Of(device: string, bytes: number): string {
  const fd = openSync(device, "r");
  try {
    const hash = createHash("sha256");
    const chunk = Buffer.alloc(MiB);
    for (let at = 0; at < bytes; at += chunk.length) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, bytes - at), at);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
    }
    return hash.digest("hex");
  } finally {
    closeSync(fd);
  }
}

/** Whether the bytes occur anywhere in the device's first `bytes`. */
function deviceHolds(device: string, needle: Buffer, bytes: number): boolean {
  const fd = openSync(device, "r");
  try {
    const chunk = Buffer.alloc(4 * MiB + needle.length);
    for (let at = 0; at < bytes; at += 4 * MiB) {
      const n = readSync(fd, chunk, 0, chunk.length, at);
      if (n === 0) break;
      if (chunk.subarray(0, n).includes(needle)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

export function encryptionTests(h: () => Harness): void {
  describe("encryption", () => {
    const made: string[] = [];
    const create = async (
      name: string,
      bytes: number,
      capability: ReturnType<typeof mountCapability> | ReturnType<typeof blockCapability> = mountCapability("ext4"),
    ) => {
      const { volume } = await h().client.call(Controller, "createVolume", {
        ...createRequest(name, bytes),
        volumeCapabilities: [capability],
        parameters: ENCRYPTED,
      });
      made.push(volume!.volumeId);
      return volume!.volumeId;
    };
    const stage = (id: string, staging: string, capability: object, withSecrets: Record<string, string> = secrets) =>
      h().client.call(Node, "nodeStageVolume", {
        volumeId: id,
        stagingTargetPath: staging,
        volumeCapability: capability,
        secrets: withSecrets,
      });
    const unstage = (id: string, staging: string) =>
      h().client.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: staging });
    const publish = (id: string, p: { staging: string; target: string }, capability: object) =>
      h().client.call(Node, "nodePublishVolume", {
        volumeId: id,
        stagingTargetPath: p.staging,
        targetPath: p.target,
        volumeCapability: capability,
        readonly: false,
      });
    const unpublish = (id: string, target: string) =>
      h().client.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: target });

    before(async () => {
      // Everything logged from here on: requests (redacted), host commands, errors.
      await h().killLoam("SIGTERM");
      await h().startLoam(["--log-level", "debug"]);
    });

    after(async () => {
      for (const id of made) {
        await h().must(["cryptsetup", "close", `loam-${id}`], { allowFailure: true });
        await h()
          .client.call(Controller, "deleteVolume", { volumeId: id })
          .catch(() => undefined);
      }
      rmSync(WORK, { recursive: true, force: true });
      await h().killLoam("SIGTERM");
      await h().startLoam();
    });

    test("stage formats LUKS2 and opens /dev/mapper/loam-<id>; write, unstage (closed), restage: the same bytes, none in the clear on the LV", async () => {
      const id = await create("enc-roundtrip", 64 * MiB);
      const p = kubeletPaths("enc-roundtrip");
      const capability = mountCapability("ext4");
      await stage(id, p.staging, capability);
      assert.equal((await h().must(["cryptsetup", "isLuks", lvPath(id)], { allowFailure: true })).exitCode, 0);
      const fsOnMapping = await h().must(["blkid", "-p", "-o", "value", "-s", "TYPE", mapper(id)]);
      assert.equal(fsOnMapping.stdout.trim(), "ext4");
      await publish(id, p, capability);
      const marker = `plaintext-marker-${"x".repeat(64)}`;
      const content = Buffer.from(`${marker}\n`.repeat(4096));
      writeFileSync(join(p.target, "file"), content);
      await unpublish(id, p.target);
      await unstage(id, p.staging);
      assert.ok(!existsSync(mapper(id)), "unstage closed the mapping");
      assert.ok(!deviceHolds(lvPath(id), Buffer.from(marker), 64 * MiB), "the LV never holds the plaintext");
      await stage(id, p.staging, capability);
      await publish(id, p, capability);
      assert.ok(readFileSync(join(p.target, "file")).equals(content), "restaged: the same bytes");
      await unpublish(id, p.target);
      await unstage(id, p.staging);
      const { lvs } = await h().report();
      assert.ok(!lvs.find((lv) => lv.name === id)?.tags.includes(FORMATTING_TAG), "no mark left");
    });

    test("raw block: the mapping is published; bytes written through it read back after unstage and restage", async () => {
      const capability = blockCapability();
      const id = await create("enc-block", 64 * MiB, capability);
      const p = kubeletPaths("enc-block");
      await stage(id, p.staging, capability);
      await publish(id, p, capability);
      const pattern = createHash("sha512").update("block").digest();
      const data = Buffer.concat(Array.from({ length: 16384 }, () => pattern)); // 1 MiB
      const fd = openSync(p.target, "r+");
      writeSync(fd, data, 0, data.length, 0);
      fsyncSync(fd);
      closeSync(fd);
      await unpublish(id, p.target);
      await unstage(id, p.staging);
      assert.ok(!existsSync(mapper(id)), "unstage closed the mapping");
      assert.ok(!deviceHolds(lvPath(id), pattern, 64 * MiB), "the LV holds only ciphertext");
      await stage(id, p.staging, capability);
      await publish(id, p, capability);
      const back = Buffer.alloc(data.length);
      const again = openSync(p.target, "r");
      readSync(again, back, 0, back.length, 0);
      closeSync(again);
      assert.ok(back.equals(data), "the same bytes after restage");
      await unpublish(id, p.target);
      await unstage(id, p.staging);
    });

    for (const fsType of ["xfs", "ext4"] as const) {
      test(`online expansion, ${fsType}: lvextend, cryptsetup resize with the node-expand secret, then the filesystem`, async () => {
        const capability = mountCapability(fsType);
        const id = await create(`enc-grow-${fsType}`, 512 * MiB, capability);
        const p = kubeletPaths(`enc-grow-${fsType}`);
        await stage(id, p.staging, capability);
        await publish(id, p, capability);
        writeFileSync(join(p.target, "kept"), "kept across the growth");
        const before = statfsSync(p.target);
        const grow = {
          volumeId: id,
          volumePath: p.target,
          capacityRange: { requiredBytes: BigInt(768 * MiB), limitBytes: 0n },
          volumeCapability: capability,
        };
        await rejectsWith(
          h().client.call(Node, "nodeExpandVolume", grow),
          status.INVALID_ARGUMENT,
          /no non-empty "encryptionPassphrase" key .*node-expand-secret-name/,
        );
        const grown = await h().client.call(Node, "nodeExpandVolume", { ...grow, secrets });
        assert.equal(grown.capacityBytes, BigInt(768 * MiB));
        const after = statfsSync(p.target);
        assert.ok(
          after.blocks * after.bsize - before.blocks * before.bsize > 200 * MiB,
          `${fsType} grew: ${before.blocks * before.bsize} -> ${after.blocks * after.bsize}`,
        );
        const status_ = await h().must(["cryptsetup", "status", `loam-${id}`]);
        assert.match(status_.stdout, /size:\s+1540096 sectors/, "the mapping fills the LV less the 16 MiB header");
        assert.equal(readFileSync(join(p.target, "kept"), "utf8"), "kept across the growth");
        const stats = await h().client.call(Node, "nodeGetVolumeStats", { volumeId: id, volumePath: p.target });
        assert.equal(stats.volumeCondition?.abnormal, false, stats.volumeCondition?.message);
        await unpublish(id, p.target);
        await unstage(id, p.staging);
      });
    }

    test("wrong or missing passphrase: INVALID_ARGUMENT, nothing opened, the LV byte for byte as it was", async () => {
      const capability = mountCapability("ext4");
      const id = await create("enc-wrong", 64 * MiB);
      const p = kubeletPaths("enc-wrong");
      await stage(id, p.staging, capability);
      writeFileSync(join(p.staging, "file"), "data");
      await unstage(id, p.staging);
      const before = sha256Of(lvPath(id), 64 * MiB);
      await rejectsWith(
        stage(id, p.staging, capability, { encryptionPassphrase: WRONG }),
        status.INVALID_ARGUMENT,
        /does not open volume .* LUKS2 header .*nothing on the volume was changed/,
      );
      await rejectsWith(
        stage(id, p.staging, capability, {}),
        status.INVALID_ARGUMENT,
        /no non-empty "encryptionPassphrase" key .*node-stage-secret-name/,
      );
      assert.ok(!existsSync(mapper(id)), "nothing opened");
      assert.equal(sha256Of(lvPath(id), 64 * MiB), before, "the LV is untouched");
      await stage(id, p.staging, capability);
      assert.equal(readFileSync(join(p.staging, "file"), "utf8"), "data");
      await unstage(id, p.staging);
    });

    test("a new encrypted volume over an LV that holds data is refused, nothing formatted", async () => {
      const id = await create("enc-over-data", 64 * MiB);
      // As a volume staged before (or made before create-time marks): without the mark its lvcreate wrote.
      await h().must(["lvchange", "--deltag", FORMATTING_TAG, `${VG}/${id}`]);
      await h().must(["mkfs.ext4", "-q", "-F", lvPath(id)]);
      const before = sha256Of(lvPath(id), 64 * MiB);
      await rejectsWith(
        stage(id, kubeletPaths("enc-over-data").staging, mountCapability("ext4")),
        status.FAILED_PRECONDITION,
        /holds a ext4 filesystem, not a LUKS header; loam never formats over existing data/,
      );
      assert.equal(sha256Of(lvPath(id), 64 * MiB), before);
    });

    test("unstage while the mapping is held open: FAILED_PRECONDITION, the mapping stays; once released, unstage closes it", async () => {
      const capability = mountCapability("ext4");
      const id = await create("enc-busy", 64 * MiB);
      const p = kubeletPaths("enc-busy");
      await stage(id, p.staging, capability);
      const holder = openSync(mapper(id), "r");
      try {
        await rejectsWith(unstage(id, p.staging), status.FAILED_PRECONDITION, /still in use .*stays open/);
        assert.ok(existsSync(mapper(id)), "the mapping stays open");
      } finally {
        closeSync(holder);
      }
      await unstage(id, p.staging);
      assert.ok(!existsSync(mapper(id)));
    });

    test("loam SIGKILLed between luksFormat and mkfs: the next stage formats again and the volume works", async () => {
      rmSync(WORK, { recursive: true, force: true });
      mkdirSync(SHIMS, { recursive: true });
      // mkfs.ext4 that says it was reached and waits to be killed: the kill lands after luksFormat, before mkfs.
      writeFileSync(
        join(SHIMS, "mkfs.ext4"),
        ["#!/bin/bash", `echo $$ > ${WORK}/mkfs.pid`, `touch ${WORK}/reached`, "exec sleep 300", ""].join("\n"),
      );
      chmodSync(join(SHIMS, "mkfs.ext4"), 0o755);
      const capability = mountCapability("ext4");
      const id = await create("enc-crash", 64 * MiB);
      const p = kubeletPaths("enc-crash");
      let loam: "usual" | "shimmed" | "none" = "usual";
      try {
        await h().killLoam("SIGTERM");
        loam = "none";
        await h().startLoam(["--log-level", "debug"], { ...process.env, PATH: `${SHIMS}:${process.env.PATH ?? ""}` });
        loam = "shimmed";
        const pending = stage(id, p.staging, capability).catch((error: unknown) => error);
        await Promise.race([
          until("the mkfs stand-in", () => existsSync(join(WORK, "reached")), 60_000),
          pending.then((outcome) => {
            throw new Error(`the stage ended before mkfs: ${String(outcome)}`);
          }),
        ]);
        assert.equal((await h().must(["cryptsetup", "isLuks", lvPath(id)], { allowFailure: true })).exitCode, 0);
        assert.ok((await h().report()).lvs.find((lv) => lv.name === id)?.tags.includes(FORMATTING_TAG), "marked");
        await h().killLoam("SIGKILL");
        loam = "none";
        process.kill(Number(readFileSync(join(WORK, "mkfs.pid"), "utf8")), "SIGKILL");
        await pending;
        assert.ok(existsSync(mapper(id)), "the killed stage left its mapping open");
        await h().startLoam(["--log-level", "debug"]);
        loam = "usual";
        await stage(id, p.staging, capability);
        writeFileSync(join(p.staging, "after-the-crash"), "ok");
        await unstage(id, p.staging);
        assert.ok(!(await h().report()).lvs.find((lv) => lv.name === id)?.tags.includes(FORMATTING_TAG), "unmarked");
        await stage(id, p.staging, capability);
        assert.equal(readFileSync(join(p.staging, "after-the-crash"), "utf8"), "ok");
        await unstage(id, p.staging);
      } finally {
        if (loam === "shimmed") await h().killLoam("SIGTERM");
        if (loam !== "usual") await h().startLoam(["--log-level", "debug"]);
      }
    });

    test("the passphrase (and the wrong one) is in no log line, though requests and commands were logged", () => {
      const logs = h().logs;
      assert.match(logs, /nodeStageVolume|NodeStageVolume/, "requests were logged");
      assert.match(logs, /cryptsetup/, "cryptsetup commands were logged");
      for (const secret of [PASSPHRASE, WRONG]) {
        assert.ok(!logs.includes(secret), "a passphrase reached the log");
        assert.ok(!logs.includes(Buffer.from(secret).toString("base64")), "a passphrase reached the log in base64");
        assert.ok(!logs.includes(Buffer.from(secret).toString("hex")), "a passphrase reached the log in hex");
      }
    });
  });
}

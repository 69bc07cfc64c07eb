/**
 * Reproducible image (issue 19): building the image a second time from the same commit gives the
 * same layer digests, config and manifest. The second build makes layer 1 anew with mmdebstrap
 * (--no-base-cache; only the downloaded .debs are reused from .cache/image/debs), so the check
 * covers the Debian layer as well as the Node.js and loam layers.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { imageInfo } from "./runc.js";

const run = promisify(execFile);
const repo = new URL("../../../", import.meta.url).pathname;

test(
  "a second build of the same commit, Debian layer included, has the same digests",
  { timeout: 600_000 },
  async () => {
    const first = await imageInfo();
    const out = await mkdtemp(join(tmpdir(), "loam-image-again-"));
    try {
      const started = Date.now();
      await run("bash", ["scripts/image", "--out", out, "--no-base-cache"], { cwd: repo, maxBuffer: 16 << 20 });
      process.stdout.write(`second image build, Debian layer anew: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      const second = await imageInfo(`${out}/`);
      assert.equal(second.commit, first.commit);
      assert.deepEqual(
        second.layers.map((l) => [l.diffId, l.digest]),
        first.layers.map((l) => [l.diffId, l.digest]),
        "layer digests of the two builds (Debian, Node.js, loam)",
      );
      assert.equal(second.config, first.config, "config digest");
      assert.equal(second.digest, first.digest, "manifest digest");
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  },
);

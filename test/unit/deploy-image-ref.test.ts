/**
 * `npm run manifests -- --image REF` (issue 19): the reference `npm run image` prints, tag and
 * digest, goes into deploy/values.json as images.loam (that string only, the file's layout kept)
 * and from there into the DaemonSet and the controller Deployment; a reference without a digest
 * is refused and changes nothing.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { VALUES_FILE, generate, runGenerator } from "../../src/deploy/generate.js";

const ROOT = process.cwd();
const REF = `registry.example.com/loam/loam:0.1.0@sha256:${"ab".repeat(32)}`;

async function copyOfRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "loam-image-ref-"));
  for (const path of [...(await generate(ROOT)).keys(), VALUES_FILE]) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), await readFile(join(ROOT, path), "utf8"));
  }
  return root;
}

test("--image writes the reference into values.json, the DaemonSet and the controller", async () => {
  const root = await copyOfRoot();
  const quiet = process.stdout.write.bind(process.stdout);
  try {
    process.stdout.write = (): boolean => true;
    const code = await runGenerator(["--root", root, "--image", REF]);
    process.stdout.write = quiet;
    assert.equal(code, 0);
    const before = await readFile(join(ROOT, VALUES_FILE), "utf8");
    const after = await readFile(join(root, VALUES_FILE), "utf8");
    const changed = after.split("\n").filter((line, i) => line !== before.split("\n")[i]);
    assert.deepEqual(changed, [`    "loam": "${REF}",`], "only images.loam changed");
    for (const file of ["deploy/kubernetes/40-daemonset.yaml", "deploy/kubernetes/cluster/45-controller.yaml"]) {
      assert.match(
        await readFile(join(root, file), "utf8"),
        new RegExp(`image: ${REF.replace(/[.]/g, "\\.")}\\n`),
        file,
      );
    }
    assert.equal(await runGenerator(["--root", root, "--check"]), 0, "the files agree with the new values");
  } finally {
    process.stdout.write = quiet;
    await rm(root, { recursive: true, force: true });
  }
});

test("--image without a digest exits 2, says what is allowed and changes nothing", async () => {
  const root = await copyOfRoot();
  const stderr: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  try {
    process.stderr.write = (chunk: string | Uint8Array): boolean => (stderr.push(String(chunk)), true);
    const code = await runGenerator(["--root", root, "--image", "registry.example.com/loam/loam:0.1.0"]);
    process.stderr.write = write;
    assert.equal(code, 2);
    assert.match(stderr.join(""), /must name a tag and a digest.*path:tag@sha256:<64 hex>/);
    assert.equal(await readFile(join(root, VALUES_FILE), "utf8"), await readFile(join(ROOT, VALUES_FILE), "utf8"));
  } finally {
    process.stderr.write = write;
    await rm(root, { recursive: true, force: true });
  }
});

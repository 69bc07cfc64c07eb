/**
 * The single executable `npm run sea` built (dist/sea/loam, issue 19), run for real from a
 * folder of its own, without dist/ or node_modules beside it: --version prints the commit,
 * `doctor` finds what the bundle finds on this host, `node --help` prints loam node's flags.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const repo = new URL("../../../", import.meta.url).pathname;
let dir: string;
let loam: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "loam-sea-"));
  loam = join(dir, "loam");
  await copyFile(`${repo}dist/sea/loam`, loam).catch(() => {
    throw new Error("dist/sea/loam is missing: run npm run sea (scripts/test does before these tests)");
  });
  await run("chmod", ["0755", loam]);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const outcome = async (file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await run(file, args, { cwd: dir });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

test("the single executable prints the commit it was built from, with no warning", async () => {
  const head = (await run("git", ["rev-parse", "HEAD"], { cwd: repo })).stdout.trim();
  const { code, stdout, stderr } = await outcome(loam, ["--version"]);
  assert.equal(code, 0);
  assert.match(stdout, new RegExp(`^loam 0\\.1\\.0 \\(commit ${head}(-dirty)?\\)\\n$`));
  assert.equal(stderr, "", "no experimental-feature warning on stderr");
});

test("the single executable's doctor finds on this host what the bundle finds", async () => {
  const checks = (text: string): unknown =>
    (JSON.parse(text) as { findings: { check: string; status: string }[] }).findings.map((f) => [f.check, f.status]);
  const sea = await outcome(loam, ["doctor", "--json"]);
  const bundle = await outcome(process.execPath, [`${repo}dist/loam.mjs`, "doctor", "--json"]);
  assert.equal(sea.code, bundle.code);
  assert.deepEqual(checks(sea.stdout), checks(bundle.stdout));
  assert.deepEqual((checks(sea.stdout) as string[][])[0], ["device-mapper", "fail"]);
});

test("the single executable's node --help prints loam node's flags", async () => {
  const { code, stdout } = await outcome(loam, ["node", "--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: loam node /);
  assert.match(stdout, /--volume-group/);
});

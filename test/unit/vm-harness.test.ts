// Checks of scripts/vm that need no guest: its usage text and how it refuses
// bad invocations before it installs, downloads or boots anything. Booting
// checks live in docs/vm.md (they take ~10 s each under TCG).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const script = `${repo}scripts/vm`;

function runVm(args: string[]) {
  const r = spawnSync(script, args, { encoding: "utf8", timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("scripts/vm --help documents every option and exits 0", () => {
  const r = runVm(["--help"]);
  assert.equal(r.status, 0);
  for (const flag of ["--disks", "--disk-size", "--mem", "--timeout", "--env", "--rebuild", "--verbose"]) {
    assert.match(r.stdout, new RegExp(`^\\s+${flag}\\b`, "m"), `usage lacks ${flag}`);
  }
  assert.match(r.stdout, /LOAM_VM_DISKS/);
});

test("scripts/vm without a command fails with 125 before booting", () => {
  const r = runVm(["--disks", "1"]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /no command given/);
});

test("scripts/vm rejects an unknown option instead of treating it as the command", () => {
  const r = runVm(["--bogus", "true"]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /unknown option '--bogus'/);
});

test("scripts/vm rejects --env values that are not NAME=VALUE", () => {
  const r = runVm(["--env", "1BAD=x", "--", "true"]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /--env wants NAME=VALUE/);
});

test("scripts/vm rejects a non-numeric --disks", () => {
  const r = runVm(["--disks=two", "--", "true"]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /--disks wants/);
});

/** Host commands fail with host or exec errors, never LVM ones. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandExitError, CommandRunner, CommandTimeoutError } from "../../src/exec/index.js";
import { HostCommandError } from "../../src/host/errors.js";
import { runChecked } from "../../src/host/run.js";
import { LvmError } from "../../src/lvm/index.js";

const runner = new CommandRunner();

test("a host command that exits non-zero is a HostCommandError naming the command line and its stderr", async () => {
  const error = await runChecked(runner, ["sh", "-c", "echo 'no such device' >&2; exit 32"]).then(
    () => assert.fail("the command should have failed"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof HostCommandError);
  assert.ok(error instanceof CommandExitError);
  assert.ok(!(error instanceof LvmError));
  assert.equal(error.name, "HostCommandError");
  assert.equal(error.exitCode, 32);
  assert.equal(error.stderr, "no such device\n");
  assert.equal(error.message, "sh -c echo 'no such device' >&2; exit 32 exited 32: no such device");
});

test("a host command that runs past its deadline is a CommandTimeoutError, not an LvmError", async () => {
  const error = await runChecked(runner, ["sleep", "5"], { timeoutMs: 100 }).then(
    () => assert.fail("the command should have timed out"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CommandTimeoutError);
  assert.ok(!(error instanceof LvmError));
  assert.equal(error.message, "sleep did not finish within 100 ms and was killed");
});

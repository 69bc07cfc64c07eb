import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import {
  CommandCancelledError,
  CommandRunner,
  CommandStartError,
  CommandTimeoutError,
  type CommandObservation,
} from "../../src/exec/index.js";

/** True while the process exists and is not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function eventually(check: () => boolean, ms = 2000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

test("run resolves with exit code 0 and empty output for `true`", async () => {
  const result = await new CommandRunner().run(["true"]);
  assert.deepEqual(result, { stdout: "", stderr: "", exitCode: 0 });
});

test("run resolves (does not reject) with the non-zero exit code of `false`", async () => {
  const result = await new CommandRunner().run(["false"]);
  assert.equal(result.exitCode, 1);
});

test("run captures stdout and stderr separately", async () => {
  const result = await new CommandRunner().run(["sh", "-c", "printf out; printf err >&2; exit 7"]);
  assert.deepEqual(result, { stdout: "out", stderr: "err", exitCode: 7 });
});

test("arguments reach the command verbatim, shell metacharacters included", async () => {
  const nasty = ["$(touch /tmp/loam-pwned)", "; rm -rf /", "a b", "`id`", "*", "'\"", "-n"];
  const result = await new CommandRunner().run(["printf", "%s\\n", ...nasty]);
  assert.equal(result.stdout, nasty.map((s) => `${s}\n`).join(""));
});

test("LC_ALL=C is in the child's environment even when the caller's env sets another", async () => {
  const runner = new CommandRunner({ env: { LC_ALL: "de_DE.UTF-8", LOAM_EXTRA: "yes" } });
  const lines = (await runner.run(["env"])).stdout.split("\n");
  assert.ok(lines.includes("LC_ALL=C"), "LC_ALL=C missing");
  assert.ok(lines.includes("LOAM_EXTRA=yes"), "runner env missing");
  assert.ok(!lines.includes("LC_ALL=de_DE.UTF-8"));
});

test("the prefix is prepended to every command", async () => {
  const runner = new CommandRunner({ prefix: ["echo", "prefix-word"] });
  const result = await runner.run(["lvm", "fullreport"]);
  assert.equal(result.stdout, "prefix-word lvm fullreport\n");
});

test("a missing binary rejects with CommandStartError naming ENOENT", async () => {
  await assert.rejects(new CommandRunner().run(["/nonexistent/loam-no-such-binary", "x"]), (error: unknown) => {
    assert.ok(error instanceof CommandStartError);
    assert.match(error.message, /ENOENT/);
    assert.deepEqual(error.argv, ["/nonexistent/loam-no-such-binary", "x"]);
    return true;
  });
});

test("an empty argv rejects with CommandStartError", async () => {
  await assert.rejects(new CommandRunner().run([]), CommandStartError);
});

test("timeout: `sleep 5` with a 100 ms timeout rejects with CommandTimeoutError quickly and the child is gone", async () => {
  const seen: CommandObservation[] = [];
  const runner = new CommandRunner({ onCommand: (o) => seen.push(o) });
  const started = Date.now();
  await assert.rejects(runner.run(["sleep", "5"], { timeoutMs: 100 }), CommandTimeoutError);
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  assert.equal(seen.length, 1);
  const pid = seen[0].pid;
  assert.ok(pid !== undefined);
  assert.equal(alive(pid), false, `sleep (pid ${pid}) still running`);
  assert.equal(seen[0].exitCode, null);
  assert.equal(seen[0].failed, true);
});

test("timeout kills the whole process group: a grandchild started by the command dies too", async () => {
  const runner = new CommandRunner();
  let grandchild = 0;
  await assert.rejects(
    runner.run(["sh", "-c", "sleep 30 & echo $! >&2; wait"], { timeoutMs: 300 }),
    (error: unknown) => {
      assert.ok(error instanceof CommandTimeoutError);
      grandchild = Number.parseInt(error.stderr.trim(), 10);
      return true;
    },
  );
  assert.ok(grandchild > 0);
  assert.ok(await eventually(() => !alive(grandchild)), `grandchild ${grandchild} survived`);
});

test("a command that ignores SIGTERM is killed with SIGKILL after the grace period", async () => {
  const seen: CommandObservation[] = [];
  const runner = new CommandRunner({ killGraceMs: 300, onCommand: (o) => seen.push(o) });
  const started = Date.now();
  // Give sh time to install the trap before the deadline.
  await assert.rejects(runner.run(["sh", "-c", "trap '' TERM; sleep 30"], { timeoutMs: 200 }), CommandTimeoutError);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 450 && elapsed < 3000, `took ${elapsed} ms`);
  assert.equal(alive(seen[0].pid!), false);
});

test("AbortSignal cancellation kills the child and rejects with CommandCancelledError", async () => {
  const seen: CommandObservation[] = [];
  const runner = new CommandRunner({ onCommand: (o) => seen.push(o) });
  const controller = new AbortController();
  const running = runner.run(["sleep", "5"], { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("client went away")), 100);
  const started = Date.now();
  await assert.rejects(running, (error: unknown) => {
    assert.ok(error instanceof CommandCancelledError);
    assert.equal((error.cause as Error).message, "client went away");
    return true;
  });
  assert.ok(Date.now() - started < 2000);
  assert.equal(alive(seen[0].pid!), false);
});

test("an already aborted signal rejects without starting the command", async () => {
  const seen: CommandObservation[] = [];
  const runner = new CommandRunner({ onCommand: (o) => seen.push(o) });
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(
    runner.run(["touch", "/tmp/loam-should-not-exist"], { signal: controller.signal }),
    CommandCancelledError,
  );
  assert.equal(seen[0].pid, undefined);
});

test("the default timeout applies when run gets none", async () => {
  const runner = new CommandRunner({ defaultTimeoutMs: 100 });
  await assert.rejects(
    runner.run(["sleep", "5"]),
    (error: unknown) => error instanceof CommandTimeoutError && error.timeoutMs === 100,
  );
});

test("onCommand observes argv without the prefix, duration, exit code and failure", async () => {
  const seen: CommandObservation[] = [];
  const runner = new CommandRunner({ prefix: ["env"], onCommand: (o) => seen.push(o) });
  await runner.run(["sh", "-c", "sleep 0.05; exit 3"]);
  await runner.run(["true"]);
  assert.equal((await runner.run(["/nonexistent/loam-x"])).exitCode, 127);
  assert.equal(seen.length, 3);
  assert.deepEqual(seen[0].argv, ["sh", "-c", "sleep 0.05; exit 3"]);
  assert.equal(seen[0].exitCode, 3);
  assert.equal(seen[0].failed, true);
  assert.ok(seen[0].durationMs >= 40, `duration ${seen[0].durationMs}`);
  assert.deepEqual(seen[1].argv, ["true"]);
  assert.equal(seen[1].exitCode, 0);
  assert.equal(seen[1].failed, false);
  // Through the `env` prefix a missing binary is env's exit 127: a result, not a rejection.
  assert.equal(seen[2].exitCode, 127);
  assert.equal(seen[2].failed, true);
});

test("a throwing onCommand hook does not fail the command", async () => {
  const runner = new CommandRunner({
    onCommand: () => {
      throw new Error("metrics broke");
    },
  });
  assert.equal((await runner.run(["true"])).exitCode, 0);
});

test("fds: the command gets the given descriptors as its fds 3, 4, ... in that order", async () => {
  const first = await open("/proc/self/fdinfo", "r");
  const second = await open("/proc/self/mountinfo", "r");
  try {
    const result = await new CommandRunner().run(["ls", "-l", "/proc/self/fd/"], { fds: [second.fd, first.fd] });
    assert.equal(result.exitCode, 0);
    const links = result.stdout.split("\n").filter((line) => line.includes(" -> "));
    const target = (fd: number) => links.find((line) => line.includes(` ${fd} -> `))?.split(" -> ")[1];
    assert.equal(target(3), "/proc/self/mountinfo".replace("self", String(process.pid)));
    assert.equal(target(4), "/proc/self/fdinfo".replace("self", String(process.pid)));
  } finally {
    await first.close();
    await second.close();
  }
});

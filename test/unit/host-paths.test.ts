import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveUnder } from "../../src/host/paths.js";
import { UnsafePathError } from "../../src/host/errors.js";

let base = "";
let kubelet = "";
before(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), "loam-paths-")));
  kubelet = join(base, "kubelet");
  mkdirSync(join(kubelet, "pods", "p1"), { recursive: true });
  mkdirSync(join(base, "outside"));
  symlinkSync(join(base, "outside"), join(kubelet, "pods", "escape"));
  symlinkSync(join(kubelet, "pods", "p1"), join(kubelet, "pods", "inside-link"));
  symlinkSync(join(base, "outside", "missing"), join(kubelet, "pods", "dangling"));
});
after(() => rmSync(base, { recursive: true, force: true }));

const refused = (path: string, pattern: RegExp) =>
  assert.rejects(resolveUnder(kubelet, path), (e: unknown) => e instanceof UnsafePathError && pattern.test(e.message));

test("a path under the kubelet directory resolves to itself, existing or not", async () => {
  assert.equal(await resolveUnder(kubelet, join(kubelet, "pods", "p1")), join(kubelet, "pods", "p1"));
  assert.equal(
    await resolveUnder(kubelet, join(kubelet, "pods", "p1", "new", "mount")),
    join(kubelet, "pods", "p1", "new", "mount"),
  );
});

test("a symlink that stays inside resolves to its target", async () => {
  assert.equal(
    await resolveUnder(kubelet, join(kubelet, "pods", "inside-link", "m")),
    join(kubelet, "pods", "p1", "m"),
  );
});

test("a path outside the kubelet directory is refused", () => refused(join(base, "outside", "m"), /not under/));

test("a path with a .. segment is refused even when it would land inside", () =>
  refused(`${kubelet}/pods/../pods/p1`, /"\.\."/));

test("a symlink under the kubelet directory pointing outside is refused", () =>
  refused(join(kubelet, "pods", "escape", "m"), /resolves to .*outside/));

test("a dangling symlink is refused, since mount would follow it", () =>
  refused(join(kubelet, "pods", "dangling"), /symlink to a path that does not exist/));

test("the kubelet directory itself, a relative path and control characters are refused", async () => {
  await refused(kubelet, /not under/);
  await refused("pods/p1", /not an absolute path/);
  await refused(`${kubelet}/pods/a\nb`, /control characters/);
});

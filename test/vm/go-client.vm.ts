/** A grpc-go client, built from Debian's Go packages and our proto, talks to loam as kubelet and the sidecars do. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { type Harness, ENDPOINT, repoRoot } from "./harness.js";

const run = promisify(execFile);

export function goClientTests(h: () => Harness): void {
  describe("grpc-go client", () => {
    test("GetPluginInfo, CreateVolume, ListVolumes and DeleteVolume from grpc-go over unix://", async () => {
      const client = join(repoRoot(), "dist", "go", "csi-client");
      const { stdout } = await run(client, ["--endpoint", ENDPOINT, "--name", "go-client-volume", "lifecycle"], {
        timeout: 120_000,
      });
      const lines = stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(lines.length >= 5, stdout);
      assert.deepEqual(await h().lvsNamed("go-client-volume"), [], "the Go client deleted what it created");
    });
  });
}

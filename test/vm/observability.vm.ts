/**
 * Observability against real LVM: /metrics follows volumes as they come and go, RPC and LVM
 * histograms count, a failing LVM command counts as a failure, /readyz follows the volume
 * group, secrets never reach the logs, and `loam doctor` / `loam status` on a real host.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Controller, Node, VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";
import { type Sample, parseExposition, sampleValue } from "../support/exposition.js";
import { DEFAULT_CACHE_MS } from "../../src/metrics/lvm-state.js";
import { METADATA_BYTES_PER_VOLUME } from "../../src/cli/doctor/metadata-area.js";
import { MiB } from "../../src/volumes/size.js";
import { ENDPOINT, type Harness, VG, repoRoot } from "./harness.js";
import { createRequest } from "./support.js";

/** The harness runs `loam node` with the default metricsAddress. */
const METRICS = "http://127.0.0.1:9975";
const SECRET = "vm-secret-Q7wz3LpA";

async function scrape(): Promise<Sample[]> {
  // Past the LVM state sampler's cache period, so the figures are read afresh.
  await sleep(DEFAULT_CACHE_MS + 200);
  const response = await fetch(`${METRICS}/metrics`);
  assert.equal(response.status, 200);
  return parseExposition(await response.text()).samples;
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number =>
  sampleValue(samples, name, labels) ?? 0;

/** Runs the bundled `loam` CLI in the guest; its exit code and output. */
export async function runLoam(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(repoRoot(), "dist", "loam.mjs"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stdout, stderr };
}

export function observabilityTests(h: () => Harness): void {
  describe("observability", () => {
    test("/metrics follows a volume being created and deleted, and the RPC histogram counts the calls", async () => {
      const before = await scrape();
      const vg = { volume_group: VG };
      const request = {
        ...createRequest("obs-metrics", 64 * MiB),
        parameters: { "csi.storage.k8s.io/pvc/name": "data-db-0", "csi.storage.k8s.io/pvc/namespace": "prod" },
      };
      const { volume } = await h().client.call(Controller, "createVolume", request);
      assert.ok(volume);
      const created = await scrape();
      assert.equal(value(created, "loam_volumes", vg), value(before, "loam_volumes", vg) + 1);
      assert.equal(
        value(created, "loam_volume_group_free_bytes", vg),
        value(before, "loam_volume_group_free_bytes", vg) - Number(volume.capacityBytes),
      );
      assert.equal(
        value(created, "loam_volume_group_allocated_bytes", vg),
        value(before, "loam_volume_group_allocated_bytes", vg) + Number(volume.capacityBytes),
      );
      assert.equal(
        sampleValue(created, "loam_volume_provisioned_bytes", {
          ...vg,
          volume_id: volume.volumeId,
          pvc_namespace: "prod",
          pvc_name: "data-db-0",
        }),
        Number(volume.capacityBytes),
      );
      const ok = { method: "Controller.CreateVolume", code: "OK" };
      assert.equal(
        value(created, "loam_csi_rpc_duration_seconds_count", ok),
        value(before, "loam_csi_rpc_duration_seconds_count", ok) + 1,
      );
      assert.ok(
        value(created, "loam_lvm_command_duration_seconds_count", { command: "lvcreate" }) >
          value(before, "loam_lvm_command_duration_seconds_count", { command: "lvcreate" }),
      );
      assert.equal(value(created, "loam_volume_group_size_bytes", vg), (await h().report()).vg.sizeBytes);

      await h().client.call(Controller, "deleteVolume", { volumeId: volume.volumeId });
      const deleted = await scrape();
      assert.equal(value(deleted, "loam_volumes", vg), value(before, "loam_volumes", vg));
      assert.equal(
        value(deleted, "loam_volume_group_free_bytes", vg),
        value(before, "loam_volume_group_free_bytes", vg),
      );
      assert.equal(sampleValue(deleted, "loam_volume_provisioned_bytes", { volume_id: volume.volumeId }), undefined);
      const deletes = { method: "Controller.DeleteVolume", code: "OK" };
      assert.equal(
        value(deleted, "loam_csi_rpc_duration_seconds_count", deletes),
        value(created, "loam_csi_rpc_duration_seconds_count", deletes) + 1,
      );
    });

    test("a scrape runs exactly one LVM report", async () => {
      const fullreport = { command: "fullreport" };
      const first = await scrape();
      const second = await scrape();
      assert.equal(
        value(second, "loam_lvm_command_duration_seconds_count", fullreport),
        value(first, "loam_lvm_command_duration_seconds_count", fullreport) + 1,
      );
    });

    test("while the volume group cannot be read, /readyz fails, up is 0 and the failing report counts as a failure", async () => {
      const before = await scrape();
      const renamed = `${VG}-away`;
      await h().must(["vgrename", VG, renamed]);
      try {
        const during = await scrape();
        assert.equal(value(during, "loam_volume_group_up", { volume_group: VG }), 0);
        assert.equal(
          value(during, "loam_lvm_command_failures_total", { command: "fullreport" }),
          value(before, "loam_lvm_command_failures_total", { command: "fullreport" }) + 1,
        );
        const ready = await fetch(`${METRICS}/readyz`);
        assert.equal(ready.status, 503);
        assert.match(await ready.text(), new RegExp(`volume group ${VG} cannot be read`));
        assert.equal((await fetch(`${METRICS}/healthz`)).status, 200);
      } finally {
        await h().must(["vgrename", renamed, VG]);
      }
      await sleep(DEFAULT_CACHE_MS + 200);
      assert.equal((await fetch(`${METRICS}/readyz`)).status, 200);
    });

    test("at debug level, RPCs carrying secrets log their bodies with the secrets blanked", async () => {
      await h().killLoam("SIGTERM");
      const from = h().logs.length;
      await h().startLoam(["--log-level", "debug"]);
      try {
        const { volume } = await h().client.call(Controller, "createVolume", {
          ...createRequest("obs-secrets"),
          secrets: { password: SECRET },
        });
        await h()
          .client.call(Node, "nodeStageVolume", {
            volumeId: "obs-no-such-volume",
            stagingTargetPath: "/var/lib/kubelet/plugins/kubernetes.io/csi/obs/staging",
            volumeCapability: {
              accessType: { case: "mount", value: { fsType: "xfs" } },
              accessMode: { mode: Mode.SINGLE_NODE_WRITER },
            },
            secrets: { "chap-password": SECRET },
          })
          .catch(() => undefined);
        await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId, secrets: { token: SECRET } });
      } finally {
        await h().killLoam("SIGTERM");
        await h().startLoam();
      }
      const logs = h().logs.slice(from);
      assert.ok(!logs.includes(SECRET), "a secret value reached the log");
      const lines = logs
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const bodies = lines.filter((line) => line.msg === "rpc request").map((line) => line.method);
      for (const method of ["Controller.CreateVolume", "Node.NodeStageVolume", "Controller.DeleteVolume"])
        assert.ok(bodies.includes(method), `no request body logged for ${method}`);
      const rpc = lines.find((line) => line.msg === "rpc" && line.method === "Controller.DeleteVolume");
      assert.ok(rpc, "one line per RPC");
      assert.equal(rpc.code, "OK");
      assert.equal(typeof rpc.requestId, "string");
      assert.equal(typeof rpc.durationMs, "number");
      assert.equal(typeof rpc.volumeId, "string");
    });

    test("loam doctor passes on the VM (device-mapper, targets, LVM, tools, the VG and the room in its metadata area)", async () => {
      const kubelet = await mkdtemp(join(tmpdir(), "kubelet-"));
      try {
        const result = await runLoam([
          "doctor",
          "--json",
          "--volume-group",
          VG,
          "--kubelet-dir",
          kubelet,
          "--endpoint",
          ENDPOINT,
        ]);
        const report = JSON.parse(result.stdout) as {
          ok: boolean;
          findings: Array<{ check: string; status: string; detail: string }>;
        };
        const failures = report.findings.filter((f) => f.status === "fail");
        assert.deepEqual(failures, [], result.stdout);
        assert.equal(result.code, 0, result.stderr);
        const status = Object.fromEntries(report.findings.map((f) => [f.check, f.status]));
        for (const check of [
          "device-mapper",
          "dm target striped",
          "dm target thin-pool",
          "dm target snapshot",
          "dm target raid",
          "dm target mirror",
          "lvm2",
          `volume group ${VG}`,
        ]) {
          assert.equal(
            status[check],
            "ok",
            `${check}: ${JSON.stringify(report.findings.find((f) => f.check === check))}`,
          );
        }
        // The metadata area check counts volumes from LVM's own vg_mda_free.
        const mdaFree = Number(
          (
            await h().must(["vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_mda_free", VG])
          ).stdout.trim(),
        );
        const metadata = report.findings.find((f) => f.check === `metadata area of ${VG}`);
        assert.equal(metadata?.status, "ok", JSON.stringify(metadata));
        assert.match(
          metadata.detail,
          new RegExp(`room for about ${Math.floor(mdaFree / METADATA_BYTES_PER_VOLUME)} more volume`),
        );
      } finally {
        await rm(kubelet, { recursive: true, force: true });
      }
    });

    test("loam status lists the volume group and a volume with its CSI name and claim", async () => {
      const request = {
        ...createRequest("obs-status", 32 * MiB),
        parameters: { "csi.storage.k8s.io/pvc/name": "cache", "csi.storage.k8s.io/pvc/namespace": "web" },
      };
      const { volume } = await h().client.call(Controller, "createVolume", request);
      try {
        const json = await runLoam(["status", "--json", "--volume-group", VG]);
        assert.equal(json.code, 0, json.stderr);
        const parsed = JSON.parse(json.stdout) as {
          volumeGroups: Array<{
            name: string;
            ok: boolean;
            sizeBytes: number;
            volumes: Array<{ id: string; name: string; pvcName: string; pvcNamespace: string; sizeBytes: number }>;
          }>;
        };
        const entry = parsed.volumeGroups[0];
        assert.equal(entry?.name, VG);
        assert.equal(entry.ok, true);
        const listed = entry.volumes.find((v) => v.id === volume!.volumeId);
        assert.deepEqual(
          listed && { name: listed.name, pvc: `${listed.pvcNamespace}/${listed.pvcName}`, size: listed.sizeBytes },
          {
            name: "obs-status",
            pvc: "web/cache",
            size: Number(volume!.capacityBytes),
          },
        );
        const table = await runLoam(["status", "--volume-group", VG]);
        assert.equal(table.code, 0);
        assert.match(table.stdout, new RegExp(`^VOLUME GROUP\\s+SIZE`));
        assert.match(table.stdout, new RegExp(`${VG}/${volume!.volumeId}\\s+obs-status\\s+web/cache\\s+32 MiB`));
      } finally {
        await h().client.call(Controller, "deleteVolume", { volumeId: volume!.volumeId });
      }
    });
  });
}

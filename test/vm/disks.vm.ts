/**
 * `loam disks` on real devices (issue 16): NVMe disks with set serials (QEMU's model is
 * "QEMU NVMe Ctrl"; QEMU sets no other), kept between two boots of the VM by scripts/test-disks,
 * which drops one disk and adds a new one between them. No udev runs in the guest, so the
 * rules select by serial (sysfs) and there are no by-id names. The guest's root is a tmpfs:
 * what a host keeps on its root filesystem (LVM's metadata backup, the wipe record) is carried
 * from boot 1 to boot 2 in LOAM_DISKS_STATE, a directory of the shared repository.
 *
 * Boot 1: fresh disks → VG (pvcreate --metadatasize, tag, thin pool, striped aggregate mounted
 * with a nofail unit), a disk holding xfs refused and named, the /boot disk never selected even
 * by a wipe rule with every opt-in, a second apply changes nothing, the cleared disk added
 * (vgextend). Boot 2: the dropped disk reported missing with the volumes on it and nothing
 * changed; apply --recover drops it, lists the volumes lost and adds the new disk; then every
 * PV blanked in place (what LVM sees of a stopped and started instance: new empty disks, the
 * VG unknown, its backup kept) and `loam node --disks-config` rebuilds the VG at start, logs
 * the lost volumes, and serves.
 *
 * Runs only when LOAM_DISKS_BOOT is set (scripts/test-disks); the main VM run skips it.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, readFile, readdir, readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CommandRunner } from "../../src/exec/index.js";
import { encodeTag } from "../../src/lvm/tags.js";
import { disksPlanAndApply } from "../../src/cli/disks.js";
import { MANAGED_VG_TAG } from "../../src/disks/lvm-state.js";
import { Harness, repoRoot } from "./harness.js";

const VG = "loamdisks";
const DIR = "/run/loam-disks";
const CONFIG = `${DIR}/disks.json`;
const AGGREGATE = `${DIR}/aggregate`;
const SYSTEMD = `${DIR}/systemd`;

interface PlanJson {
  state: string;
  devices: { name: string; serial: string; action: string; why: string }[];
  missing: { uuid: string; volumes: { name: string }[] }[];
  lost: { name: string }[];
  problems: string[];
  changes: { kind: string; argv?: string[] }[];
}

const runner = new CommandRunner({ defaultTimeoutMs: 120_000 });
async function must(argv: string[]): Promise<string> {
  const result = await runner.run(argv);
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

/** Each step's bound: a normal run takes under 15 s, a loaded host's several times that. */
const LOAM_DISKS_TIMEOUT_MS = 180_000;
const STEP = { timeout: 300_000 };

/** `loam disks ...` from the bundle: its exit code and output. */
async function loamDisks(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(repoRoot(), "dist", "loam.mjs"), "disks", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  // A hang fails this test naming the command and what it printed, instead of holding the
  // VM until scripts/vm's timeout, which says nothing about where it stopped.
  const timer = setTimeout(() => child.kill("SIGKILL"), LOAM_DISKS_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  if (code === null)
    assert.fail(
      `loam disks ${args.join(" ")} did not end within ${LOAM_DISKS_TIMEOUT_MS / 1000} s; stdout: ${stdout} stderr: ${stderr}`,
    );
  return { code, stdout, stderr };
}

/** serial → /dev/nvmeXnY, once every NVMe disk scripts/vm attached has appeared. */
async function nvmeBySerial(): Promise<Map<string, string>> {
  const wanted = (process.env.LOAM_VM_NVME ?? "").split(/\s+/).filter(Boolean);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = new Map<string, string>();
    for (const name of (await readdir("/sys/block")).filter((n) => n.startsWith("nvme"))) {
      const serial = (await readFile(`/sys/block/${name}/device/serial`, "utf8").catch(() => "")).trim();
      if (serial) found.set(serial, `/dev/${name}`);
    }
    if (wanted.every((s) => found.has(s))) return found;
    if (Date.now() > deadline)
      throw new Error(`NVMe disks ${wanted.join(", ")} did not all appear: ${[...found.keys()].join(", ")}`);
    await sleep(100);
  }
}

const pvsOf = async (vg: string): Promise<string[]> =>
  (await must(["pvs", "--noheadings", "-o", "pv_name,vg_name"]))
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === vg)
    .map((f) => f[0])
    .sort();

const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const result = await work();
  console.log(`disks: ${label} took ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  return result;
};

export function disksTests(): void {
  const boot = process.env.LOAM_DISKS_BOOT;
  const state = process.env.LOAM_DISKS_STATE ?? "";
  if (boot === undefined) return;
  describe(`disks, boot ${boot} of 2 (NVMe disks kept between boots)`, () => {
    let disk = new Map<string, string>();
    const dev = (serial: string): string => disk.get(serial) ?? assert.fail(`no NVMe disk with serial ${serial}`);
    const bootDisk = (process.env.LOAM_VM_DISKS ?? "").split(/\s+/)[0] ?? "";

    before(async () => {
      disk = await nvmeBySerial();
      // The system disk: a filesystem holding /boot (the guest's root is a tmpfs, on no disk).
      await must(["mkfs.ext4", "-q", "-F", bootDisk]);
      await mkdir("/boot", { recursive: true });
      await must(["mount", bootDisk, "/boot"]);
      await mkdir(DIR, { recursive: true });
      await writeFile(
        CONFIG,
        JSON.stringify({
          volumeGroup: VG,
          rules: [
            { serial: "loam-nvme-*", transport: ["nvme"] },
            { transport: ["virtio"], wipe: true },
          ],
          wipeConfirm: "destroy-data-on-matching-disks",
          thinPool: { name: "pool", sizePercent: 20 },
          aggregate: { name: "agg", sizePercent: 20, filesystem: "xfs", mountPoint: AGGREGATE },
          stateDir: `${state}/var-lib-loam`,
          systemdDir: SYSTEMD,
        }),
      );
      if (boot === "2") {
        // What a host's root filesystem would have kept: LVM's metadata backup.
        await mkdir("/etc/lvm/backup", { recursive: true });
        await copyFile(`${state}/lvm-backup/${VG}`, `/etc/lvm/backup/${VG}`);
      }
    }, STEP);

    if (boot === "1") {
      test(
        "fresh disks become the VG; a disk holding xfs is refused and named; the /boot disk is never selected; a second apply changes nothing; the cleared disk is added with vgextend",
        STEP,
        async () => {
          await rm(state, { recursive: true, force: true });
          await mkdir(state, { recursive: true });
          await must(["mkfs.xfs", "-q", "-f", dev("loam-nvme-c")]);

          const planned = await timed("plan (process)", () => loamDisks(["plan", "--config", CONFIG, "--json"]));
          assert.equal(planned.code, 0, planned.stderr);
          const plan = JSON.parse(planned.stdout) as PlanJson;
          const bySerial = (s: string) => plan.devices.find((d) => d.serial === s);
          assert.equal(bySerial("loam-nvme-a")?.action, "add");
          assert.equal(bySerial("loam-nvme-b")?.action, "add");
          assert.equal(bySerial("loam-nvme-c")?.action, "none");
          assert.match(bySerial("loam-nvme-c")?.why ?? "", /holds xfs filesystem: refused/);
          const system = plan.devices.find((d) => `/dev/${d.name}` === bootDisk);
          assert.equal(system?.action, "none");
          assert.match(system?.why ?? "", /holds \/boot: the system's disk is never used, whatever the rules say/);

          const applied = await timed("apply (process)", () => loamDisks(["apply", "--config", CONFIG]));
          assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);
          assert.deepEqual(await pvsOf(VG), [dev("loam-nvme-a"), dev("loam-nvme-b")].sort());
          assert.ok(!(await pvsOf(VG)).includes(bootDisk));
          assert.match(
            await must(["vgs", "--noheadings", "-o", "vg_tags", VG]),
            new RegExp(MANAGED_VG_TAG.replace(/[.+]/g, "\\$&")),
          );
          const mda = await must([
            "pvs",
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "pv_mda_size",
            dev("loam-nvme-a"),
          ]);
          assert.ok(Number(mda.trim()) >= 60 * 2 ** 20, `metadata area ${mda.trim()} bytes: --metadatasize 64m`);
          const lvs = await must(["lvs", "--noheadings", "-o", "lv_name,segtype,stripes", VG]);
          assert.match(lvs, /agg\s+striped\s+2/);
          assert.match(lvs, /pool\s+thin-pool/);
          assert.match(
            await readFile("/proc/self/mountinfo", "utf8"),
            new RegExp(` ${AGGREGATE} .* - xfs /dev/mapper/${VG}-agg `),
          );
          const unit = await readFile(`${SYSTEMD}/run-loam\\x2ddisks-aggregate.mount`, "utf8");
          assert.match(unit, /^Options=defaults,nofail,x-systemd\.device-timeout=10s$/m);
          assert.equal(
            await readlink(`${SYSTEMD}/local-fs.target.wants/run-loam\\x2ddisks-aggregate.mount`),
            `${SYSTEMD}/run-loam\\x2ddisks-aggregate.mount`,
          );

          const again = await timed("second apply (in process)", () =>
            disksPlanAndApply({ configPath: CONFIG, runner, apply: true, recover: false }),
          );
          assert.equal(again.applied, 0, JSON.stringify(again.plan.changes));

          // The operator clears the refused disk: the next apply adds it.
          await must(["wipefs", "--all", "--quiet", dev("loam-nvme-c")]);
          const added = await timed("apply with a new disk", () =>
            disksPlanAndApply({ configPath: CONFIG, runner, apply: true, recover: false }),
          );
          assert.deepEqual(
            added.plan.changes.filter((c) => c.kind === "run").map((c) => (c.kind === "run" ? c.argv[0] : "")),
            ["pvcreate", "vgextend"],
          );
          assert.deepEqual(await pvsOf(VG), [dev("loam-nvme-a"), dev("loam-nvme-b"), dev("loam-nvme-c")].sort());
          assert.equal(added.after?.changes.length, 0);

          // Volumes for boot 2 to lose or keep, with loam's name tag.
          const volume = (lv: string, name: string, pv: string) =>
            must(["lvcreate", "--yes", "-L", "32m", "-n", lv, "--addtag", encodeTag("name", name), VG, pv]);
          await volume("vol-a", "pvc-on-a", dev("loam-nvme-a"));
          await volume("vol-b", "pvc-on-b", dev("loam-nvme-b"));
          await mkdir(`${state}/lvm-backup`, { recursive: true });
          await copyFile(`/etc/lvm/backup/${VG}`, `${state}/lvm-backup/${VG}`);
          await must(["umount", AGGREGATE]);
          await must(["vgchange", "-an", VG]);
        },
      );
    }

    if (boot === "2") {
      test(
        "a dropped disk is reported with its volumes and nothing changes; --recover removes it, lists the volumes lost and adds the new disk",
        STEP,
        async () => {
          const planned = await timed("plan with a missing disk (process)", () =>
            loamDisks(["plan", "--config", CONFIG, "--json"]),
          );
          assert.equal(planned.code, 3, planned.stderr);
          const plan = JSON.parse(planned.stdout) as PlanJson;
          assert.equal(plan.missing.length, 1);
          const onMissing = plan.missing[0]?.volumes.map((v) => v.name) ?? [];
          assert.ok(onMissing.includes("pvc-on-b") && onMissing.includes("agg"), onMissing.join(", "));
          assert.ok(!onMissing.includes("pvc-on-a"), onMissing.join(", "));
          assert.deepEqual(plan.changes, []);
          assert.match(plan.problems.join("\n"), new RegExp(`${dev("loam-nvme-d")} wait`));

          const recovered = await timed("apply --recover", () =>
            disksPlanAndApply({ configPath: CONFIG, runner, apply: true, recover: true }),
          );
          const lost = recovered.plan.lost.map((v) => v.name);
          assert.ok(lost.includes("pvc-on-b") && !lost.includes("pvc-on-a"), lost.join(", "));
          assert.deepEqual(await pvsOf(VG), [dev("loam-nvme-a"), dev("loam-nvme-c"), dev("loam-nvme-d")].sort());
          const lvs = await must(["lvs", "--noheadings", "-o", "lv_name,segtype,stripes", VG]);
          assert.match(lvs, /vol-a/);
          assert.doesNotMatch(lvs, /vol-b/);
          assert.match(lvs, /agg\s+striped\s+3/);
          assert.equal(recovered.after?.changes.length, 0, JSON.stringify(recovered.after?.changes));
        },
      );

      test(
        "all disks new and empty (every PV blanked in place; the backup kept): loam node --disks-config rebuilds the VG at start, logs the lost volumes, and serves",
        STEP,
        async () => {
          await must(["umount", AGGREGATE]);
          await must(["vgchange", "-an", VG]);
          const pvs = await pvsOf(VG);
          for (const pv of pvs) await must(["wipefs", "--all", "--quiet", pv]);
          const loam = new Harness({ socket: `${DIR}/csi.sock`, kubeletDir: "/var/lib/kubelet" });
          // The disks' plan and apply come before serving: seven LVM and mkfs commands under TCG.
          loam.startTimeoutMs = 240_000;
          await mkdir("/var/lib/kubelet", { recursive: true });
          await writeFile(`${DIR}/node.json`, JSON.stringify({ volumeGroup: VG, disksConfig: CONFIG }));
          try {
            await timed("loam node start with --disks-config (rebuild)", () =>
              loam.startLoam(["--config", `${DIR}/node.json`]),
            );
            const lostLine = loam.logs.split("\n").find((l) => l.includes("disks: volumes lost")) ?? "";
            assert.match(lostLine, /pvc-on-a/, loam.logs);
            assert.deepEqual(await pvsOf(VG), pvs);
            assert.match(await must(["lvs", "--noheadings", "-o", "lv_name", VG]), /agg/);
          } finally {
            await loam.stop();
          }
        },
      );
    }
  });
}

/**
 * `npm run demo`: the main job end to end on real LVM, through the operator's CSI client
 * (`loam csi`), with a readable transcript and the time each step took. Exits 0 only if
 * every step worked. Runs where device-mapper exists: inside the test VM (disks from
 * LOAM_VM_DISKS) or on a host with device-mapper (disks are sparse files on loop devices).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { CommandRunner } from "../../src/exec/index.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { scratchDisks } from "../testbed/scratch-disks.js";

const VG = "loamdemo";
const POOL = "pool";
const SOCKET = "/run/loam-demo/csi.sock";
const ENDPOINT = `unix://${SOCKET}`;
const KUBELET = "/var/lib/kubelet";
const LOAM = join(dirname(fileURLToPath(import.meta.url)), "loam.mjs");

const runner = new CommandRunner({ defaultTimeoutMs: 300_000 });
const started = performance.now();
let stepNumber = 0;
const cleanups: Array<() => Promise<void>> = [];

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function step<T>(title: string, fn: () => Promise<T>): Promise<T> {
  stepNumber++;
  say(`\n── ${String(stepNumber).padStart(2)}. ${title}`);
  const t0 = performance.now();
  try {
    const result = await fn();
    say(`   ✔ ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    return result;
  } catch (error) {
    say(
      `   ✘ ${((performance.now() - t0) / 1000).toFixed(2)} s: ${error instanceof Error ? error.message : String(error)}`,
    );
    throw error;
  }
}

/** Runs a command, echoing it and its output indented; throws on a non-zero exit. */
async function sh(argv: string[], options: { quiet?: boolean } = {}): Promise<string> {
  say(`   $ ${argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}`);
  const result = await runner.run(argv);
  const output = (result.stdout + result.stderr).trimEnd();
  if (output && !options.quiet) say(output.replace(/^/gm, "     "));
  if (result.exitCode !== 0) throw new Error(`${argv[0]} exited ${result.exitCode}`);
  return result.stdout;
}

/** `loam csi ...` against the demo's driver, shown as an operator would type it. */
async function csi(...args: string[]): Promise<string> {
  return sh([process.execPath, LOAM, "csi", "--endpoint", ENDPOINT, ...args]);
}

async function csiJson<T>(...args: string[]): Promise<T> {
  const result = await runner.run([process.execPath, LOAM, "csi", "--endpoint", ENDPOINT, "--json", ...args]);
  if (result.exitCode !== 0) throw new Error(result.stderr.trim());
  return JSON.parse(result.stdout) as T;
}

async function startLoam(configPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [LOAM, "node", "--config", configPath], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let logs = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => (logs += chunk));
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  });
  for (let i = 0; i < 300; i++) {
    const probe = await runner.run([process.execPath, LOAM, "csi", "--endpoint", ENDPOINT, "probe"]);
    if (probe.exitCode === 0) return child;
    if (child.exitCode !== null) throw new Error(`loam exited with ${child.exitCode}:\n${logs}`);
    await sleep(200);
  }
  throw new Error(`loam did not become ready:\n${logs}`);
}

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

async function demo(): Promise<void> {
  say("loam demo: local persistent volumes from LVM, driven through CSI with `loam csi`");
  const devices = await step("Two disks for the node", async () => {
    const { devices: found, release } = await scratchDisks("demo", "2G", (argv) =>
      sh(argv, { quiet: argv[0] === "losetup" }),
    );
    cleanups.push(release);
    say(`   disks: ${found.join(", ")}`);
    return found;
  });

  await step(`Volume group ${VG} on both disks, with a thin pool for thin volumes`, async () => {
    await sh(["pvcreate", "-ff", "-y", ...devices]);
    await sh(["vgcreate", VG, ...devices]);
    await sh(["lvcreate", "--type", "thin-pool", "--size", "2G", "--name", POOL, VG]);
    cleanups.push(async () => void (await runner.run(["vgremove", "-ff", "-y", VG])));
  });

  const configDir = await mkdtemp(join(tmpdir(), "loam-demo-config-"));
  const configPath = join(configDir, "config.json");
  await step(
    "Start `loam node` with two device classes (thick on the VG, thin in the pool, overcommit 4x)",
    async () => {
      const config = {
        endpoint: ENDPOINT,
        nodeId: "demo-node",
        kubeletDir: KUBELET,
        deviceClasses: [
          { name: "thick", volumeGroup: VG, type: "thick", default: true },
          { name: "thin", volumeGroup: VG, type: "thin", thinPool: POOL, overprovisionRatio: 4 },
        ],
      };
      await writeFile(configPath, JSON.stringify(config, null, 2));
      say(JSON.stringify(config, null, 2).replace(/^/gm, "     "));
      await startLoam(configPath);
      await csi("info");
    },
  );

  // external-provisioner (v5.2.0, the version deploy/ pins and the contract tests check) sends
  // GetCapacity each StorageClass's parameters exactly as stored, csi.storage.k8s.io/fstype included.
  await step(
    "Capacity the scheduler would see, asked as csi-provisioner v5.2.0 asks for the shipped loam-xfs and loam-thin classes",
    async () => {
      await csi(
        "get-capacity",
        "--parameter",
        "csi.storage.k8s.io/fstype=xfs",
        "--parameter",
        "loam.csi.dev/deviceClass=thick",
      );
      await csi(
        "get-capacity",
        "--parameter",
        "csi.storage.k8s.io/fstype=xfs",
        "--parameter",
        "loam.csi.dev/deviceClass=thin",
      );
    },
  );

  const thin = await step("Create a 512 MiB thin volume", async () => {
    await csi(
      "create-volume",
      "--name",
      "demo-thin",
      "--size",
      "512Mi",
      "--parameter",
      "loam.csi.dev/deviceClass=thin",
    );
    return lvNameFor("demo-thin");
  });

  const striped = await step(
    "Create a 512 MiB volume striped across both disks, and look at both with lvs",
    async () => {
      await csi(
        "create-volume",
        "--name",
        "demo-striped",
        "--size",
        "512Mi",
        "--parameter",
        "loam.csi.dev/deviceClass=thick",
        "--parameter",
        "loam.csi.dev/stripes=2",
      );
      await sh(["lvs", "-o", "lv_name,lv_size,segtype,stripes,pool_lv", VG]);
      return lvNameFor("demo-striped");
    },
  );

  const paths = (id: string) => ({
    staging: join(KUBELET, "plugins/kubernetes.io/csi/loam.csi.dev", id, "globalmount"),
    target: join(KUBELET, "pods/demo-pod/volumes/kubernetes.io~csi", id, "mount"),
  });

  await step(
    "Encrypted volume (loam.csi.dev/encryption=luks2): stage formats LUKS2 and opens it with the node-stage secret, unstage closes it",
    async () => {
      await csi(
        "create-volume",
        "--name",
        "demo-encrypted",
        "--size",
        "64Mi",
        "--parameter",
        "loam.csi.dev/encryption=luks2",
        "--parameter",
        "loam.csi.dev/encryptionPbkdfMemory=65536",
      );
      const id = lvNameFor("demo-encrypted");
      const p = paths(id);
      // The passphrase goes in a file, as kubelet hands loam the Secret: never on a command line.
      const secrets = join(await mkdtemp(join(tmpdir(), "loam-demo-secret-")), "secrets.json");
      await writeFile(secrets, JSON.stringify({ encryptionPassphrase: randomBytes(24).toString("base64") }), {
        mode: 0o600,
      });
      await mkdir(p.staging, { recursive: true });
      await csi(
        "stage",
        "--volume-id",
        id,
        "--staging-path",
        p.staging,
        "--fs-type",
        "ext4",
        "--secrets-file",
        secrets,
      );
      await sh(["cryptsetup", "status", `loam-${id}`]);
      await writeFile(join(p.staging, "secret.txt"), "only ciphertext reaches the disk");
      await csi("unstage", "--volume-id", id, "--staging-path", p.staging);
      await sh(["blkid", "-p", "-o", "value", "-s", "TYPE", `/dev/${VG}/${id}`]);
      await csi("delete-volume", "--volume-id", id);
    },
  );

  const thinPaths = paths(thin);
  await step("Stage (mkfs.xfs + mount) and publish (bind mount) the thin volume", async () => {
    await mkdir(thinPaths.staging, { recursive: true });
    await csi("stage", "--volume-id", thin, "--staging-path", thinPaths.staging, "--fs-type", "xfs");
    await csi("publish", "--volume-id", thin, "--staging-path", thinPaths.staging, "--target-path", thinPaths.target);
    await sh(["findmnt", "--target", thinPaths.target]);
  });

  const data = randomBytes(8 * 1024 * 1024);
  const checksum = sha256(data);
  await step("Write 8 MiB into the published volume", async () => {
    await writeFile(join(thinPaths.target, "data.bin"), data);
    await sh(["sync"]);
    say(`   sha256 ${checksum}`);
  });

  await step("Grow the thin volume online to 1 GiB (lvextend + xfs_growfs, still mounted)", async () => {
    await csi("expand", "--volume-id", thin, "--volume-path", thinPaths.target, "--size", "1Gi");
    await csi("stats", "--volume-id", thin, "--volume-path", thinPaths.target);
  });

  const snapshot = await step(
    "Snapshot the thin volume while it is mounted (LVM's suspend freezes the filesystem itself)",
    async () => {
      const reply = await csiJson<{ snapshot: { snapshotId: string; sizeBytes: string; readyToUse: boolean } }>(
        "create-snapshot",
        "--name",
        "demo-snap",
        "--source-volume-id",
        thin,
      );
      say(
        `   snapshot ${reply.snapshot.snapshotId}: ${reply.snapshot.sizeBytes} bytes, ready ${reply.snapshot.readyToUse}`,
      );
      return reply.snapshot.snapshotId;
    },
  );

  await step("Change the source after the snapshot (the snapshot must not see this)", async () => {
    await writeFile(join(thinPaths.target, "data.bin"), "overwritten");
  });

  const restored = await step(
    "Restore the snapshot into a new volume, stage and publish it, compare the data",
    async () => {
      await csi(
        "create-volume",
        "--name",
        "demo-restored",
        "--size",
        "1Gi",
        "--parameter",
        "loam.csi.dev/deviceClass=thin",
        "--from-snapshot",
        snapshot,
      );
      const id = lvNameFor("demo-restored");
      const p = paths(id);
      await mkdir(p.staging, { recursive: true });
      await csi("stage", "--volume-id", id, "--staging-path", p.staging, "--fs-type", "xfs");
      await csi("publish", "--volume-id", id, "--staging-path", p.staging, "--target-path", p.target);
      const restoredSum = sha256(await readFile(join(p.target, "data.bin")));
      say(`   restored sha256 ${restoredSum}`);
      if (restoredSum !== checksum) throw new Error("the restored data differs from the data at snapshot time");
      return id;
    },
  );

  await step("List volumes and capacity now", async () => {
    await csi("list-volumes");
    await csi("get-capacity", "--parameter", "loam.csi.dev/deviceClass=thin");
  });

  await step("Unpublish, unstage and delete everything", async () => {
    for (const id of [thin, restored]) {
      const p = paths(id);
      await csi("unpublish", "--volume-id", id, "--target-path", p.target);
      await csi("unstage", "--volume-id", id, "--staging-path", p.staging);
    }
    await csi("delete-snapshot", "--snapshot-id", snapshot);
    for (const id of [restored, thin, striped]) await csi("delete-volume", "--volume-id", id);
    await csi("list-volumes");
  });
}

let failed = false;
try {
  await demo();
} catch {
  failed = true;
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
say(
  `\n${failed ? "demo FAILED" : "demo finished: every step worked"} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
process.exitCode = failed ? 1 : 0;

/**
 * Runs the image that `npm run image` built (dist/image) with Debian's runc, rootful: unpacks it
 * once with umoci into a runtime bundle, then starts one container per command with the bundle's
 * config.json rewritten. `hostMounts` gives the container what loam's DaemonSet gives it: the
 * host's /dev, /sys and /run, every capability, the host's PID namespace. (crun 1.8 refuses
 * hosts with hybrid cgroups, as this one has, so runc it is.)
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const IMAGE_DIR = new URL("../../image/", import.meta.url).pathname;

export interface ImageInfo {
  reference: string;
  tag: string;
  digest: string;
  config: string;
  commit: string;
  node: string;
  layers: { digest: string; diffId: string; compressedBytes: number; uncompressedBytes: number }[];
  uncompressedBytes: number;
  compressedBytes: number;
  archive: string;
  sbom: string;
}

export async function imageInfo(dir = IMAGE_DIR): Promise<ImageInfo> {
  const text = await readFile(join(dir, "image.json"), "utf8").catch(() => {
    throw new Error(`${dir}image.json is missing: run npm run image (scripts/test does before these tests)`);
  });
  return JSON.parse(text) as ImageInfo;
}

interface Spec {
  process: { args: string[]; terminal: boolean; noNewPrivileges?: boolean; capabilities?: Record<string, string[]> };
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: { namespaces: { type: string }[]; maskedPaths?: string[]; readonlyPaths?: string[] };
}

// Capabilities by number (linux/capability.h, 0 to 37).
const CAP_NAMES = (
  "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE " +
  "NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT " +
  "SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP " +
  "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ"
)
  .split(" ")
  .map((c) => `CAP_${c}`);

/** What `privileged: true` gives the DaemonSet's container: every capability this process may hold. */
async function privilegedCaps(): Promise<string[]> {
  const status = await readFile("/proc/self/status", "utf8");
  const bounding = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0"}`);
  return CAP_NAMES.filter((_, bit) => (bounding >> BigInt(bit)) & 1n);
}

export class RuncBundle {
  private count = 0;
  private constructor(
    readonly dir: string,
    private readonly spec: Spec,
  ) {}

  static async unpack(info: ImageInfo, dir = IMAGE_DIR): Promise<RuncBundle> {
    const bundle = join(await mkdtemp(join(tmpdir(), "loam-runc-")), "bundle");
    const tag = info.tag.slice(info.tag.lastIndexOf(":") + 1);
    await run("umoci", ["unpack", "--image", `${join(dir, "layout")}:${tag}`, bundle]);
    const spec = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as Spec;
    return new RuncBundle(bundle, spec);
  }

  /** Runs ARGS (the image's entrypoint when args[0] is not absolute) and returns its exit code and output. */
  async run(
    args: string[],
    options: { hostMounts?: boolean } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const spec = structuredClone(this.spec);
    spec.process.terminal = false;
    spec.process.args = args[0]?.startsWith("/") ? args : [...spec.process.args, ...args];
    if (options.hostMounts) {
      spec.mounts = spec.mounts.filter((m) => !/^\/(dev|sys)(\/|$)/.test(m.destination));
      for (const path of ["/dev", "/sys", "/run"]) {
        spec.mounts.push({ destination: path, type: "bind", source: path, options: ["rbind", "rw"] });
      }
      spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== "pid" && n.type !== "network");
      delete spec.linux.maskedPaths;
      delete spec.linux.readonlyPaths;
      spec.process.noNewPrivileges = false;
      const caps = await privilegedCaps();
      spec.process.capabilities = Object.fromEntries(
        ["bounding", "effective", "inheritable", "permitted", "ambient"].map((set) => [set, caps]),
      );
    }
    await writeFile(join(this.dir, "config.json"), JSON.stringify(spec));
    const id = `loam-test-${process.pid}-${++this.count}`;
    try {
      const { stdout, stderr } = await run("runc", ["run", "--bundle", this.dir, id], { maxBuffer: 16 << 20 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: unknown; stdout?: string; stderr?: string };
      if (typeof e.code !== "number") throw error;
      return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
  }

  async remove(): Promise<void> {
    await rm(join(this.dir, ".."), { recursive: true, force: true });
  }
}

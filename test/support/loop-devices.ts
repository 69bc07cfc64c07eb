/**
 * Real loop devices for the host tests. Every device and mount made here is recorded and
 * torn down by cleanup(), which also sweeps any mount left under the scratch directory,
 * so a failing test cannot leave the machine with a busy loop device.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class LoopScratch {
  readonly dir = mkdtempSync(join(tmpdir(), "loam-host-"));
  private readonly devices: string[] = [];

  /** A fresh zero-filled loop device of this many MiB, backed by a sparse file. */
  loop(mib: number): { device: string; file: string } {
    const file = join(this.dir, `disk${this.devices.length}.img`);
    writeFileSync(file, "");
    truncateSync(file, mib * 1024 * 1024);
    const device = execFileSync("losetup", ["--find", "--show", file], { encoding: "utf8" }).trim();
    this.devices.push(device);
    return { device, file };
  }

  /**
   * A loop device whose minor is at least `minimum` (loop-control makes /dev/loopN on demand):
   * the first free N from there. For the device-number checks of minors above 255.
   */
  loopAtOrAbove(mib: number, minimum: number): { device: string; file: string } {
    const file = join(this.dir, `disk${this.devices.length}.img`);
    writeFileSync(file, "");
    truncateSync(file, mib * 1024 * 1024);
    for (let n = minimum; n < minimum + 200; n++) {
      const device = `/dev/loop${n}`;
      try {
        execFileSync("losetup", [device, file], { stdio: "ignore" });
      } catch {
        continue; // in use
      }
      this.devices.push(device);
      return { device, file };
    }
    throw new Error(`no free loop device from /dev/loop${minimum}`);
  }

  /** Grows the backing file and tells the loop driver, as lvextend would grow an LV. */
  grow(loop: { device: string; file: string }, mib: number): void {
    truncateSync(loop.file, mib * 1024 * 1024);
    execFileSync("losetup", ["--set-capacity", loop.device]);
  }

  /** Mount points at or below the scratch directory, innermost (latest) first. */
  mountsBelow(): string[] {
    return readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((line) => line.split(" ")[4] ?? "")
      .filter((point) => point === this.dir || point.startsWith(`${this.dir}/`))
      .reverse();
  }

  cleanup(): void {
    for (let round = 0; round < 10; round++) {
      const left = this.mountsBelow();
      if (left.length === 0) break;
      for (const point of left) {
        try {
          execFileSync("umount", ["-l", point], { stdio: "ignore" });
        } catch {
          // Already gone, or under another mount that goes first.
        }
      }
    }
    for (const device of this.devices.splice(0)) {
      try {
        execFileSync("losetup", ["--detach", device], { stdio: "ignore" });
      } catch {
        // Detached already.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Loop devices need root and a kernel with the loop driver. */
export function canUseLoopDevices(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("losetup", ["--find"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * The skip option of a host test that needs root and loop devices: skipped, with the reason,
 * where they are missing, except in CI (CI=true), where the test runs and fails, so a CI
 * machine without them cannot pass by skipping.
 */
export function skipWithoutLoopDevices(): string | false {
  if (canUseLoopDevices() || process.env.CI === "true") return false;
  return "needs root and loop devices";
}

/** Whether this process holds a capability, e.g. 24 = CAP_SYS_RESOURCE, which online ext4 resize needs. */
export function hasCapability(bit: number): boolean {
  const line = readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith("CapEff:"));
  return line ? ((BigInt(`0x${line.slice(7).trim()}`) >> BigInt(bit)) & 1n) === 1n : false;
}
export const CAP_SYS_RESOURCE = 24;

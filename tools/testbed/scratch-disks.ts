/**
 * The two disks `npm run demo` and `npm run bench` build their volume group on: the guest's
 * scratch disks inside scripts/vm (listed in LOAM_VM_DISKS), otherwise, on a host with
 * device-mapper, two sparse files on loop devices. One place decides, so the demo and the
 * benchmark always run on the same kind of disks.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommandRunner } from "../../src/exec/index.js";

export interface ScratchDisks {
  devices: string[];
  /** Detaches loop devices made here and removes their files; nothing to do for the VM's disks. */
  release: () => Promise<void>;
}

/**
 * `size` is each loop file's size as truncate(1) takes it; `run` starts a command and returns
 * its standard output, failing on a non-zero exit (each caller shows commands its own way).
 */
export async function scratchDisks(
  label: string,
  size: string,
  run: (argv: string[]) => Promise<string>,
): Promise<ScratchDisks> {
  const fromVm = (process.env.LOAM_VM_DISKS ?? "").split(/\s+/).filter(Boolean);
  if (fromVm.length >= 2) return { devices: fromVm.slice(0, 2), release: () => Promise.resolve() };
  const dir = await mkdtemp(join(tmpdir(), `loam-${label}-`));
  const devices: string[] = [];
  const release = async (): Promise<void> => {
    const runner = new CommandRunner();
    for (const device of devices) await runner.run(["losetup", "-d", device]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const name of ["disk0", "disk1"]) {
      const file = join(dir, name);
      await run(["truncate", "-s", size, file]);
      devices.push((await run(["losetup", "--find", "--show", file])).trim());
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { devices, release };
}

/**
 * `loam disks apply`: the plan's changes, in order, each checked; the wipe record is written
 * (and synced) before any wipe starts. Idempotent: a second apply plans nothing.
 */
import { mkdir, open, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { CommandRunner } from "../exec/index.js";
import { type DisksConfig, onHost } from "./config.js";
import { readWipeRecord, wipeRecordPath } from "./gather.js";
import type { Change, Plan } from "./plan.js";

export class DisksApplyError extends Error {
  constructor(
    message: string,
    readonly change: Change,
  ) {
    super(message);
    this.name = "DisksApplyError";
  }
}

/** Makes each change; stops at the first that fails. Returns how many were made. */
export async function applyPlan(
  config: DisksConfig,
  plan: Plan,
  runner: CommandRunner,
  onChange: (change: Change) => void = () => {},
): Promise<number> {
  let done = 0;
  for (const change of plan.changes) {
    onChange(change);
    await applyChange(config, change, runner);
    done++;
  }
  return done;
}

async function applyChange(config: DisksConfig, change: Change, runner: CommandRunner): Promise<void> {
  switch (change.kind) {
    case "run": {
      const result = await runner.run(change.argv);
      if (result.exitCode !== 0)
        throw new DisksApplyError(
          `${change.argv.join(" ")} exited ${result.exitCode} (${change.why}): ${result.stderr.trim() || "(no message)"}`,
          change,
        );
      return;
    }
    case "write-file":
      await writeDurably(onHost(config, change.path), change.content);
      return;
    case "mkdir":
      await mkdir(onHost(config, change.path), { recursive: true });
      return;
    case "symlink": {
      const path = onHost(config, change.path);
      await mkdir(dirname(path), { recursive: true });
      const current = await readlink(path).catch(() => undefined);
      if (current === change.target) return;
      const temporary = `${path}.loam-tmp`;
      await rm(temporary, { force: true });
      await symlink(change.target, temporary);
      await rename(temporary, path);
      return;
    }
    case "record-wipe": {
      const at = new Date().toISOString();
      const earlier = (await readWipeRecord(config)).filter((id) => !change.ids.includes(id));
      const wiped = [...earlier.map((id) => ({ id })), ...change.ids.map((id) => ({ id, at }))];
      await writeDurably(wipeRecordPath(config), `${JSON.stringify({ wiped }, null, 2)}\n`);
      return;
    }
  }
}

/** Written to a temporary file, synced, renamed over the path. */
async function writeDurably(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.loam-tmp`;
  await writeFile(temporary, content, { mode: 0o644 });
  const handle = await open(temporary, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}

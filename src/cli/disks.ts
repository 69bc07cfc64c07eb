/**
 * `loam disks plan|apply`: finds this node's local disks by the rules of disks.json and makes
 * (and keeps) its volume group (src/disks, docs/disks.md). `loam node --disks-config` runs the
 * same plan and apply before it serves.
 */
import { parseArgs } from "node:util";
import { CommandRunner } from "../exec/index.js";
import type { Logger } from "../log.js";
import {
  DisksConfigError,
  applyPlan,
  changeText,
  gatherFacts,
  planDisks,
  planJson,
  planText,
  readDisksConfig,
  type Plan,
} from "../disks/index.js";
import { ConfigError } from "./config.js";

export const DISKS_USAGE = `Usage: loam disks plan|apply --config disks.json [flags]

plan    prints every block device of this host, whether a rule selects it and why or why not,
        and the exact changes apply would make
apply   makes them (idempotent: nothing to do the second time)

Flags:
  --config FILE                  disks.json (docs/disks.md; schema in docs/schema/disks.schema.json)
  --json                         plan: print the plan as JSON
  --recover                      apply: drop missing disks (vgreduce --removemissing) and the volumes on them
  --lvm-command-prefix "WORDS"   words put before every command, e.g. "nsenter --target=1 --mount --"
  --mountinfo FILE               the mount table to read (default /proc/1/mountinfo)

Exit status: 0 done; 1 a command failed; 3 plan or apply left a problem (a missing disk, no disk
selected, a volume group that is not loam's).
`;

export async function runDisks(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || rest.includes("--help")) {
    process.stdout.write(DISKS_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "plan" && sub !== "apply") {
    process.stderr.write(`loam disks: unknown subcommand "${sub}"\n\n${DISKS_USAGE}`);
    return 2;
  }
  let values;
  try {
    values = parseArgs({
      args: rest,
      options: {
        config: { type: "string" },
        json: { type: "boolean" },
        recover: { type: "boolean" },
        "lvm-command-prefix": { type: "string" },
        mountinfo: { type: "string" },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new ConfigError("flags", `${(error as Error).message}\n\n${DISKS_USAGE}`);
  }
  if (values.config === undefined) throw new ConfigError("--config", `is required\n\n${DISKS_USAGE}`);
  if (values.recover && sub === "plan")
    throw new ConfigError("--recover", "belongs to apply (plan --recover is not a thing)");
  const prefix = (values["lvm-command-prefix"] ?? "").split(/\s+/).filter(Boolean);
  const runner = new CommandRunner({ prefix, defaultTimeoutMs: 300_000 });
  const outcome = await disksPlanAndApply({
    configPath: values.config,
    runner,
    apply: sub === "apply",
    recover: values.recover ?? false,
    ...(values.mountinfo !== undefined ? { mountInfo: values.mountinfo } : {}),
    onChange: (change) => process.stderr.write(`loam disks: ${changeText(change)}\n`),
  });
  if (sub === "plan") process.stdout.write(values.json ? planJson(outcome.plan) : planText(outcome.plan));
  else {
    process.stdout.write(planText(outcome.plan));
    process.stdout.write(`\nApplied ${outcome.applied} change(s).\n`);
    if (outcome.after && outcome.after.changes.length > 0)
      process.stdout.write(`Still to do after apply (a bug: apply should leave nothing):\n${planText(outcome.after)}`);
  }
  return outcome.plan.problems.length > 0 ? 3 : 0;
}

export interface DisksOutcome {
  plan: Plan;
  applied: number;
  /** The plan read again after apply (empty changes when apply did all it meant to). */
  after?: Plan;
}

/** plan (and apply): what both `loam disks` and `loam node --disks-config` do. */
export async function disksPlanAndApply(options: {
  configPath: string;
  runner: CommandRunner;
  apply: boolean;
  recover: boolean;
  mountInfo?: string;
  onChange?: Parameters<typeof applyPlan>[3];
}): Promise<DisksOutcome> {
  let config;
  try {
    config = await readDisksConfig(options.configPath);
  } catch (error) {
    if (error instanceof DisksConfigError)
      throw new ConfigError(`${options.configPath}: ${error.field}`, error.message.slice(error.field.length + 2));
    throw error;
  }
  const gather = {
    runner: options.runner,
    ...(options.mountInfo !== undefined ? { mountInfo: options.mountInfo } : {}),
  };
  const plan = planDisks(config, await gatherFacts(config, gather), { recover: options.recover });
  if (!options.apply || plan.changes.length === 0) return { plan, applied: 0 };
  const applied = await applyPlan(config, plan, options.runner, options.onChange);
  const after = planDisks(config, await gatherFacts(config, gather), { recover: false });
  return { plan, applied, after };
}

/** `loam node --disks-config`: plan and apply before serving; problems are logged, not fatal. */
export async function disksAtStart(configPath: string, runner: CommandRunner, logger: Logger): Promise<void> {
  const outcome = await disksPlanAndApply({
    configPath,
    runner,
    apply: true,
    recover: false,
    onChange: (change) => logger.info("disks: change", { change: changeText(change) }),
  });
  const { plan } = outcome;
  for (const d of plan.devices) logger.info("disks: device", { device: d.device.path, action: d.action, why: d.why });
  for (const problem of plan.problems) logger.warn("disks: problem", { problem });
  if (plan.lost.length > 0) logger.warn("disks: volumes lost", { volumes: plan.lost.map((v) => v.name) });
  logger.info("disks: done", { volumeGroup: plan.volumeGroup, state: plan.state, applied: outcome.applied });
}

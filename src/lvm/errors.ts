/**
 * Typed failures of LVM commands, built on src/exec's command errors. LVM says everything
 * with exit code 5 and a sentence on stderr, so a failure is classified by both: the exit code says which family (5 = the
 * command ran and failed, 3 = LVM refused the command line, 126/127 = nothing could run) and
 * the sentence says which kind. Patterns come from real LVM 2.03 output kept in
 * test/fixtures/lvm/.
 */
import { type CommandResult, CommandError, CommandStartError, describeCommand } from "../exec/index.js";

/** A failure LVM reported, classified from its exit code and stderr (or an answer that lacks what was asked). */
export class LvmError extends CommandError {}

export class VolumeGroupNotFoundError extends LvmError {}
export class LogicalVolumeNotFoundError extends LvmError {}
export class LogicalVolumeExistsError extends LvmError {}
/** The LV is open (mounted or held by a process), so LVM refuses to remove or deactivate it. */
export class LogicalVolumeInUseError extends LvmError {}

export class InsufficientSpaceError extends LvmError {
  /** Extents LVM said it needed and had, when its message gives them. */
  readonly neededExtents: number | null;
  readonly availableExtents: number | null;

  constructor(
    message: string,
    argv: readonly string[],
    exitCode: number | null,
    stderr: string,
    extents: { needed: number | null; available: number | null } = { needed: null, available: null },
  ) {
    super(message, argv, exitCode, stderr);
    this.neededExtents = extents.needed;
    this.availableExtents = extents.available;
  }
}
/** More stripes or mirror legs were asked for than the VG has physical volumes. */
export class InsufficientPhysicalVolumesError extends InsufficientSpaceError {}

/** lvextend to the size the LV already has (after rounding to extents). */
export class LogicalVolumeSizeUnchangedError extends LvmError {}
/** lvextend to a size smaller than the LV: LVM never shrinks through lvextend. */
export class LogicalVolumeShrinkError extends LvmError {}
/** LVM rejected the command line (exit 3): a name, tag or size it does not accept. */
export class LvmUsageError extends LvmError {}
/** A thin pool with no thin-pool target in device-mapper: inactive, or not a pool. */
export class ThinPoolNotActiveError extends LvmError {}
/**
 * Another command (or, with lvmlockd, another host) held the volume group's lock and LVM gave
 * up waiting: nothing was changed, and the same command may succeed when retried.
 */
export class LvmLockContentionError extends LvmError {}
/**
 * The VG has a PV LVM cannot find, and LVM refuses to change it ("Cannot change VG <vg> while
 * PVs are missing."). Nothing was changed; the same command succeeds once the PV is restored
 * or removed from the VG.
 */
export class MissingPhysicalVolumesError extends LvmError {
  /** The missing PVs' uuids, from LVM's warnings ("VG <vg> is missing PV <uuid> ..."). */
  get missingPvUuids(): string[] {
    return missingPvUuidsIn(this.stderr);
  }
}
/**
 * LVM refuses to activate an LV with extents on a missing PV ("Refusing activation of partial
 * LV <vg>/<lv>.  Use '--activationmode partial' to override."): its blocks there are gone.
 * Nothing was changed; activation succeeds once the PV is back.
 */
export class PartialLogicalVolumeError extends LvmError {
  get missingPvUuids(): string[] {
    return missingPvUuidsIn(this.stderr);
  }
}

const missingPvUuidsIn = (stderr: string): string[] =>
  [...new Set([...stderr.matchAll(/is missing PV (\S+)/g)].map((m) => m[1] ?? ""))].filter(Boolean);

/** The lines of stderr that say something: LVM's warnings about disabled activation, leaked fds and so on are noise here. */
export function meaningfulStderr(stderr: string): string {
  return stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("WARNING:") && !/^File descriptor \d+ .* leaked/.test(line))
    .join("; ");
}

const ECMD_FAILED = 5;
const EINVALID_CMD_LINE = 3;

type Builder = (message: string, argv: readonly string[], result: CommandResult, match: RegExpMatchArray) => LvmFailure;

/**
 * LVM refuses to activate a thin pool (or a thin LV in it) while one of the pool's hidden
 * components (`_tmeta`, `_tdata`) is active on its own: what a command killed in the middle of
 * activating the pool leaves behind (a crash of loam, a timeout). `component` is "vg/lv" as LVM
 * names it.
 */
export class ComponentActiveError extends LvmError {
  constructor(
    message: string,
    argv: readonly string[],
    exitCode: number | null,
    stderr: string,
    readonly component: string,
  ) {
    super(message, argv, exitCode, stderr);
  }
}

/** What a failed LVM command becomes: LVM's own failure, or nothing could run. */
export type LvmFailure = LvmError | CommandStartError;

interface Rule {
  exitCodes: readonly number[];
  pattern: RegExp;
  build: Builder;
}

const simple =
  (
    Kind: new (message: string, argv: readonly string[], exitCode: number | null, stderr: string) => LvmFailure,
  ): Builder =>
  (message, argv, result) =>
    new Kind(message, argv, result.exitCode, result.stderr);

const toInt = (s: string | undefined): number | null => (s === undefined ? null : Number.parseInt(s, 10));

const RULES: readonly Rule[] = [
  {
    exitCodes: [126, 127],
    pattern: /failed to execute|No such file or directory|command not found|Permission denied/i,
    build: simple(CommandStartError),
  },
  {
    // vg_read and the tools say "Can't get lock for <vg>"; lvmlockd says "VG <vg> lock failed: held by
    // other host" and "Cannot access VG <vg> due to failed lock". Checked before "not found", which
    // can follow a failed lock in the same stderr.
    exitCodes: [ECMD_FAILED],
    pattern: /Can't get lock for|lock failed: held by other host|due to failed lock|Volume group "?[^"\s]*"? is locked/,
    build: simple(LvmLockContentionError),
  },
  { exitCodes: [ECMD_FAILED], pattern: /while PVs are missing/, build: simple(MissingPhysicalVolumesError) },
  // Text from LVM2's lib/activate/activate.c (_lv_activate); older releases said "Use --partial to override".
  { exitCodes: [ECMD_FAILED], pattern: /Refusing activation of partial LV/, build: simple(PartialLogicalVolumeError) },
  { exitCodes: [ECMD_FAILED], pattern: /Volume group "?[^"\s]*"? not found/, build: simple(VolumeGroupNotFoundError) },
  {
    exitCodes: [ECMD_FAILED],
    pattern: /Failed to find logical volume|Logical volume \S+ not found in volume group|logical volume\(s\) not found/,
    build: simple(LogicalVolumeNotFoundError),
  },
  { exitCodes: [ECMD_FAILED], pattern: /already exists in volume group/, build: simple(LogicalVolumeExistsError) },
  {
    exitCodes: [ECMD_FAILED],
    pattern: /Insufficient free space: (\d+) extents needed, but only (\d+) available/,
    build: (message, argv, result, m) =>
      new InsufficientSpaceError(message, argv, result.exitCode, result.stderr, {
        needed: toInt(m[1]),
        available: toInt(m[2]),
      }),
  },
  {
    exitCodes: [ECMD_FAILED],
    pattern: /has insufficient free space \((\d+) extents\): (\d+) required/,
    build: (message, argv, result, m) =>
      new InsufficientSpaceError(message, argv, result.exitCode, result.stderr, {
        needed: toInt(m[2]),
        available: toInt(m[1]),
      }),
  },
  {
    exitCodes: [ECMD_FAILED],
    pattern: /must not exceed number of physical volumes/,
    build: (message, argv, result) =>
      new InsufficientPhysicalVolumesError(message, argv, result.exitCode, result.stderr),
  },
  {
    exitCodes: [ECMD_FAILED],
    pattern: /Insufficient suitable allocatable extents|insufficient free (space|extents)/i,
    build: (message, argv, result) => new InsufficientSpaceError(message, argv, result.exitCode, result.stderr),
  },
  {
    exitCodes: [ECMD_FAILED],
    pattern: /contains a filesystem in use|Logical volume \S+ in use|Can't remove open logical volume/,
    build: simple(LogicalVolumeInUseError),
  },
  {
    exitCodes: [ECMD_FAILED],
    pattern:
      /Activation of logical volume \S+ is prohibited while logical volume ([^/\s]+\/[^/\s]+_t(?:meta|data)) is active/,
    build: (message, argv, result, m) => new ComponentActiveError(message, argv, result.exitCode, result.stderr, m[1]),
  },
  {
    exitCodes: [ECMD_FAILED],
    pattern: /New size \(\d+ extents\) matches existing size/,
    build: simple(LogicalVolumeSizeUnchangedError),
  },
  {
    exitCodes: [ECMD_FAILED],
    pattern: /New size given \(\d+ extents\) not larger than existing size/,
    build: simple(LogicalVolumeShrinkError),
  },
];

/**
 * Turns a failed command's result into the most specific error the exit code and stderr support
 * together: an LvmError, or a CommandStartError when a prefix such as nsenter could not run LVM.
 */
export function classifyLvmFailure(argv: readonly string[], result: CommandResult): LvmFailure {
  const said = meaningfulStderr(result.stderr);
  const message = `${describeCommand(argv)} failed with exit code ${result.exitCode}${said ? `: ${said}` : ""}`;
  for (const rule of RULES) {
    if (!rule.exitCodes.includes(result.exitCode)) continue;
    const match = result.stderr.match(rule.pattern);
    if (match) return rule.build(message, argv, result, match);
  }
  if (result.exitCode === EINVALID_CMD_LINE) return new LvmUsageError(message, argv, result.exitCode, result.stderr);
  return new LvmError(message, argv, result.exitCode, result.stderr);
}

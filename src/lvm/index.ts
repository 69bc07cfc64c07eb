/** The LVM command layer: typed errors, reports, tags, names and the Lvm facade (commands run through src/exec). */
export type { LvmFailure } from "./errors.js";
export {
  classifyLvmFailure,
  ComponentActiveError,
  InsufficientPhysicalVolumesError,
  InsufficientSpaceError,
  LogicalVolumeExistsError,
  LogicalVolumeInUseError,
  LogicalVolumeNotFoundError,
  LogicalVolumeShrinkError,
  LogicalVolumeSizeUnchangedError,
  LvmError,
  LvmLockContentionError,
  LvmUsageError,
  MissingPhysicalVolumesError,
  PartialLogicalVolumeError,
  ThinPoolNotActiveError,
  VolumeGroupNotFoundError,
} from "./errors.js";
export { FULLREPORT_ARGS, parseFullReport, ReportParseError } from "./report.js";
export type { LogicalVolume, PhysicalVolume, VolumeGroup, VolumeGroupReport } from "./report.js";
export { decodeTags, encodeTag, InvalidTagError, isValidTag, MAX_TAG_LENGTH, TAG_PREFIX, tagsWithKey } from "./tags.js";
export { isValidLvName, isValidVgName, lvNameFor, MAX_LVM_NAME_LENGTH, snapshotLvNameFor } from "./names.js";
export { InvalidLvmArgumentError, Lvm } from "./lvm.js";
export type { CreateLvSpec, LvmOptions, ThinPoolSpec, ThinSnapshotSpec } from "./lvm.js";
export type { ThinPoolStatus, ThinPoolUsage } from "./thin-pool-status.js";

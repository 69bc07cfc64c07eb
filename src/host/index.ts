/** The host layer: devices, filesystems and mounts of this machine. */
export { HostCommandError, PathChangedError, UnsafePathError } from "./errors.js";
export { type DeviceContent, type FirstLook, firstLook, probeDevice } from "./blkid.js";
export {
  type FilesystemType,
  type FilesystemUsage,
  filesystemUsage,
  growFilesystem,
  makeFilesystem,
} from "./filesystem.js";
export { type MountEntry, isReadOnly, majorMinorOf, mountAt, parseMountInfo, readMountInfo } from "./mountinfo.js";
export { Mounter } from "./mount.js";
export { HostOperations, type PathInfo } from "./operations.js";
export { resolveUnder } from "./paths.js";
export { CRYPTSETUP_EXIT, type LuksFormatSettings, type MappingStatus } from "./crypt.js";

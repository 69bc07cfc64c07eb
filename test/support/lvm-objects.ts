/** LVM report objects for tests that write their figures by hand: an active public linear LV unless told otherwise. */
import type { LogicalVolume } from "../../src/lvm/report.js";

export function logicalVolume(partial: Partial<LogicalVolume> = {}): LogicalVolume {
  return {
    name: "lv",
    vgName: "vg",
    uuid: "u",
    sizeBytes: 0,
    attr: "-wi-a-----",
    active: true,
    segType: "linear",
    stripes: 1,
    stripeSizeBytes: 0,
    segmentCount: 1,
    poolLv: "",
    origin: "",
    dataPercent: null,
    metadataPercent: null,
    tags: [],
    devicePath: "",
    healthStatus: "",
    copyPercent: null,
    roles: ["public"],
    internal: false,
    pvUuids: [],
    ...partial,
  };
}

/**
 * Device classes: the kinds of LV an operator offers on a node (a volume group, thick or
 * thin, a layout), and the layout one request gets once its StorageClass parameters are
 * checked against the class and against the real number of physical volumes.
 */
import { invalidArgument } from "./errors.js";
import { PARAMETER_KEYS, type VolumeParameters } from "./parameters.js";
import { parseStripeSize } from "./size.js";

export type DeviceClassType = "thick" | "thin";

export interface DeviceClass {
  name: string;
  volumeGroup: string;
  type: DeviceClassType;
  /** Thin classes: the pool in volumeGroup that holds their volumes. */
  thinPool?: string;
  /** Thin classes: Σ virtual sizes may reach pool size × this (1 = no overcommit). */
  overprovisionRatio: number;
  /** Bytes kept free: VG extents for thick classes, pool data for thin ones. */
  spareBytes: number;
  /** Thick classes: defaults a StorageClass may override. */
  stripes: number;
  stripeSizeBytes?: number;
  mirrors: number;
  /** Thin classes: new thin LVs are refused once the pool's data or metadata use reaches these. */
  dataThresholdPercent: number;
  metadataThresholdPercent: number;
  default: boolean;
}

export const DEFAULT_CLASS_NAME = "default";
export const DEFAULT_THRESHOLD_PERCENT = 90;
export const MAX_STRIPES = 128;
export const MAX_MIRRORS = 9;

/** The class `--volume-group VG` stands for: thick, linear, nothing kept spare. */
export function singleThickClass(volumeGroup: string): DeviceClass {
  return {
    name: DEFAULT_CLASS_NAME,
    volumeGroup,
    type: "thick",
    overprovisionRatio: 1,
    spareBytes: 0,
    stripes: 1,
    mirrors: 0,
    dataThresholdPercent: DEFAULT_THRESHOLD_PERCENT,
    metadataThresholdPercent: DEFAULT_THRESHOLD_PERCENT,
    default: true,
  };
}

export type LayoutKind = "linear" | "striped" | "raid1" | "thin";

/** What one volume will be: the class plus the stripes/mirrors the request settled on. */
export interface VolumeLayout {
  deviceClass: DeviceClass;
  kind: LayoutKind;
  stripes: number;
  stripeSizeBytes?: number;
  mirrors: number;
}

export class DeviceClasses {
  readonly all: readonly DeviceClass[];
  readonly defaultClass: DeviceClass;

  constructor(classes: readonly DeviceClass[]) {
    if (classes.length === 0) throw new Error("at least one device class is required");
    this.all = classes;
    const defaults = classes.filter((c) => c.default);
    const chosen = defaults.length === 1 ? defaults[0] : classes.length === 1 ? classes[0] : undefined;
    if (!chosen) throw new Error(`exactly one device class must be the default (found ${defaults.length})`);
    this.defaultClass = chosen;
  }

  /** Every volume group any class uses, each once, in configuration order. */
  get volumeGroups(): string[] {
    return [...new Set(this.all.map((c) => c.volumeGroup))];
  }

  byName(name: string): DeviceClass | undefined {
    return this.all.find((c) => c.name === name);
  }

  /** The class a request's parameters pick; INVALID_ARGUMENT for a name this node does not offer. */
  select(parameters: VolumeParameters): DeviceClass {
    const name = parameters.shaping[PARAMETER_KEYS.deviceClass];
    if (name === undefined) return this.defaultClass;
    const found = this.byName(name);
    if (!found) {
      throw invalidArgument(
        `parameters["${PARAMETER_KEYS.deviceClass}"] "${name}" is not a device class of this node; allowed: ${this.all.map((c) => c.name).join(", ")}`,
      );
    }
    return found;
  }

  /**
   * The layout for a request: the class's defaults overridden by the request's stripes,
   * stripeSize and mirrors, each checked against the class type and `pvCount`, the number of
   * physical volumes in the class's volume group.
   */
  layout(parameters: VolumeParameters, pvCount: number): VolumeLayout {
    const deviceClass = this.select(parameters);
    const given = parameters.shaping;
    const field = (key: string): string => `parameters["${key}"]`;
    const where = `device class "${deviceClass.name}" (volume group ${deviceClass.volumeGroup})`;

    if (deviceClass.type === "thin") {
      for (const key of [PARAMETER_KEYS.stripes, PARAMETER_KEYS.stripeSize, PARAMETER_KEYS.mirrors]) {
        const value = given[key];
        const harmless =
          value !== undefined &&
          ((key === PARAMETER_KEYS.stripes && value === "1") || (key === PARAMETER_KEYS.mirrors && value === "0"));
        if (value !== undefined && !harmless) {
          throw invalidArgument(
            `${field(key)} does not apply to thin ${where}: a thin volume takes its layout from pool ${deviceClass.volumeGroup}/${deviceClass.thinPool ?? "?"}; ` +
              "use a thick device class for striped or raid1 volumes",
          );
        }
      }
      return { deviceClass, kind: "thin", stripes: 1, mirrors: 0 };
    }

    const stripes =
      given[PARAMETER_KEYS.stripes] !== undefined ? Number(given[PARAMETER_KEYS.stripes]) : deviceClass.stripes;
    const mirrors =
      given[PARAMETER_KEYS.mirrors] !== undefined ? Number(given[PARAMETER_KEYS.mirrors]) : deviceClass.mirrors;
    const stripeSizeText = given[PARAMETER_KEYS.stripeSize];
    const stripeSizeBytes =
      stripeSizeText !== undefined ? parseStripeSize(stripeSizeText) : deviceClass.stripeSizeBytes;

    if (stripes > pvCount) {
      throw invalidArgument(
        `${field(PARAMETER_KEYS.stripes)} asks for ${stripes} stripes but ${where} has ${pvCount} physical volume${pvCount === 1 ? "" : "s"}; allowed: 1 to ${pvCount}`,
      );
    }
    if (mirrors + 1 > pvCount) {
      throw invalidArgument(
        `${field(PARAMETER_KEYS.mirrors)} asks for ${mirrors} mirror${mirrors === 1 ? "" : "s"} (${mirrors + 1} copies) but ${where} has ${pvCount} physical volume${pvCount === 1 ? "" : "s"}; ` +
          `allowed: 0 to ${Math.max(0, pvCount - 1)}`,
      );
    }
    if (stripes > 1 && mirrors > 0) {
      throw invalidArgument(
        `${field(PARAMETER_KEYS.stripes)} ${stripes} with ${field(PARAMETER_KEYS.mirrors)} ${mirrors}: loam offers striped or raid1 volumes, not both (raid10); allowed: stripes 1 with mirrors, or mirrors 0 with stripes`,
      );
    }
    if (stripeSizeBytes !== undefined && stripes < 2) {
      if (stripeSizeText !== undefined) {
        throw invalidArgument(
          `${field(PARAMETER_KEYS.stripeSize)} needs at least 2 stripes; ${where} gives this volume ${stripes}`,
        );
      }
      return { deviceClass, kind: mirrors > 0 ? "raid1" : "linear", stripes, mirrors };
    }
    const kind: LayoutKind = mirrors > 0 ? "raid1" : stripes > 1 ? "striped" : "linear";
    const layout: VolumeLayout = { deviceClass, kind, stripes, mirrors };
    if (stripeSizeBytes !== undefined) layout.stripeSizeBytes = stripeSizeBytes;
    return layout;
  }
}

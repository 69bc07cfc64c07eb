/**
 * The metadata a volume carries in its LV tags. LVM is the only source of truth on a
 * node: these tags are written by the same lvcreate that makes the LV, so a volume is
 * either absent or fully described, and a restarted driver needs nothing else.
 */
import { decodeTags, encodeTag } from "../lvm/tags.js";
import type { LogicalVolume } from "../lvm/report.js";
import type { VolumeParameters } from "./parameters.js";
import { fingerprint } from "./parameters.js";

const KEY = {
  name: "name",
  parameters: "params",
  pvcName: "pvc",
  pvcNamespace: "namespace",
  pvName: "pv",
} as const;

export interface VolumeMetadata {
  /** The CSI name the volume was created for. */
  name: string;
  /** fingerprint() of the shaping parameters. */
  parameters: string;
  claim: Record<string, string>;
}

/** The claim a volume serves (PVC name, namespace, PV name), as recorded on the LV. */
export function claimFor(parameters: VolumeParameters): Record<string, string> {
  const claim: Record<string, string> = {};
  const from = parameters.metadata;
  const pairs: Array<[string, string | undefined]> = [
    [KEY.pvcName, from["csi.storage.k8s.io/pvc/name"]],
    [KEY.pvcNamespace, from["csi.storage.k8s.io/pvc/namespace"]],
    [KEY.pvName, from["csi.storage.k8s.io/pv/name"]],
  ];
  for (const [key, value] of pairs) if (value) claim[key] = value;
  return claim;
}

export function tagsFor(name: string, parameters: VolumeParameters): string[] {
  const tags = [encodeTag(KEY.name, name), encodeTag(KEY.parameters, fingerprint(parameters))];
  for (const [key, value] of Object.entries(claimFor(parameters))) tags.push(encodeTag(key, value));
  return tags;
}

/** The metadata of a loam volume, or undefined for an LV loam did not create (never touched). */
export function metadataOf(lv: LogicalVolume): VolumeMetadata | undefined {
  const tags = decodeTags(lv.tags);
  const name = tags.get(KEY.name);
  if (name === undefined) return undefined;
  const claim: Record<string, string> = {};
  for (const key of [KEY.pvcName, KEY.pvcNamespace, KEY.pvName]) {
    const value = tags.get(key);
    if (value !== undefined) claim[key] = value;
  }
  return { name, parameters: tags.get(KEY.parameters) ?? "[]", claim };
}

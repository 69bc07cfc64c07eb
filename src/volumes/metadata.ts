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
  kind: "kind",
  deviceClass: "class",
  source: "source",
  state: "state",
  created: "created",
  formatting: "fmt",
} as const;

/** Where a volume's first blocks came from. */
export interface ContentSource {
  kind: "snapshot" | "volume";
  id: string;
}

export interface VolumeMetadata {
  /** The CSI name the volume (or snapshot) was created for. */
  name: string;
  /** Volumes carry no kind tag (volumes made before snapshots existed have none either). */
  kind: "volume" | "snapshot";
  /** fingerprint() of the shaping parameters. */
  parameters: string;
  claim: Record<string, string>;
  deviceClass?: string;
  /** Volumes: the snapshot or volume they were cloned from. Snapshots: their source volume. */
  source?: ContentSource;
  /** True while a clone's blocks are still being copied in (or a crash interrupted it). */
  populating: boolean;
  /** Snapshots: when they were taken. */
  createdAt?: Date;
  /** True from just before the node formats the volume until that format finished (see FORMATTING_TAG). */
  formatting: boolean;
}

/** The parameter tag of a volume with these shaping parameters (what tagsFor writes at creation). */
export function parametersTagOf(shaping: Readonly<Record<string, string>>): string {
  return encodeTag(KEY.parameters, fingerprint({ shaping: { ...shaping }, metadata: {} }));
}

/** The parameter tag as an LV carries it, from metadata.parameters (the fingerprint text). */
export function parametersTagOfFingerprint(text: string): string {
  return encodeTag(KEY.parameters, text);
}

export const POPULATING_TAG = encodeTag(KEY.state, "populating");

/**
 * The format-in-progress mark: added right before the node writes a new filesystem (or, later,
 * any other format) on a device it found empty, removed once that format finished. Whatever a
 * marked volume holds is loam's own unfinished work, so the next NodeStageVolume may wipe it
 * and format again; a volume without the mark is never formatted over what it holds. A key of
 * its own (not the populating state's), short because every LV's tags share the VG's metadata.
 */
export const FORMATTING_TAG = encodeTag(KEY.formatting, "1");

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

export interface VolumeTagOptions {
  deviceClass?: string;
  source?: ContentSource;
  /** Written by the lvcreate and removed once the clone's content is complete. */
  populating?: boolean;
}

export function tagsFor(name: string, parameters: VolumeParameters, options: VolumeTagOptions = {}): string[] {
  const tags = [encodeTag(KEY.name, name), encodeTag(KEY.parameters, fingerprint(parameters))];
  for (const [key, value] of Object.entries(claimFor(parameters))) tags.push(encodeTag(key, value));
  if (options.deviceClass !== undefined) tags.push(encodeTag(KEY.deviceClass, options.deviceClass));
  if (options.source) tags.push(encodeTag(KEY.source, `${options.source.kind}:${options.source.id}`));
  if (options.populating) tags.push(POPULATING_TAG);
  return tags;
}

export function snapshotTagsFor(
  name: string,
  sourceVolumeId: string,
  createdAt: Date,
  deviceClass: string | undefined,
): string[] {
  const tags = [
    encodeTag(KEY.name, name),
    encodeTag(KEY.kind, "snapshot"),
    encodeTag(KEY.source, `volume:${sourceVolumeId}`),
    encodeTag(KEY.created, createdAt.toISOString()),
  ];
  if (deviceClass !== undefined) tags.push(encodeTag(KEY.deviceClass, deviceClass));
  return tags;
}

/** The metadata of a loam volume, or undefined for an LV loam did not create (never touched). */
export function metadataOf(lv: LogicalVolume): VolumeMetadata | undefined {
  if (decoded.has(lv)) return decoded.get(lv);
  const metadata = decodeMetadata(lv);
  decoded.set(lv, metadata);
  return metadata;
}

/**
 * Decoded tags per LV object. Report objects are never changed in place (the engine's LVM state cache
 * replaces an LV to change it), and a list of a thousand volumes would otherwise decode every
 * tag of every LV on each ListVolumes page.
 */
const decoded = new WeakMap<LogicalVolume, VolumeMetadata | undefined>();

function decodeMetadata(lv: LogicalVolume): VolumeMetadata | undefined {
  const tags = decodeTags(lv.tags);
  const name = tags.get(KEY.name);
  if (name === undefined) return undefined;
  const claim: Record<string, string> = {};
  for (const key of [KEY.pvcName, KEY.pvcNamespace, KEY.pvName]) {
    const value = tags.get(key);
    if (value !== undefined) claim[key] = value;
  }
  const metadata: VolumeMetadata = {
    name,
    kind: tags.get(KEY.kind) === "snapshot" ? "snapshot" : "volume",
    parameters: tags.get(KEY.parameters) ?? "[]",
    claim,
    populating: tags.get(KEY.state) === "populating",
    formatting: tags.has(KEY.formatting),
  };
  const deviceClass = tags.get(KEY.deviceClass);
  if (deviceClass !== undefined) metadata.deviceClass = deviceClass;
  const source = parseSource(tags.get(KEY.source));
  if (source) metadata.source = source;
  const created = tags.get(KEY.created);
  if (created !== undefined && !Number.isNaN(Date.parse(created))) metadata.createdAt = new Date(created);
  return metadata;
}

function parseSource(text: string | undefined): ContentSource | undefined {
  const match = text === undefined ? null : /^(snapshot|volume):(.+)$/.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  return { kind: match[1] as ContentSource["kind"], id: match[2] };
}

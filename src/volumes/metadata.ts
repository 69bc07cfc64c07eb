/**
 * The metadata a volume carries in its LV tags. LVM is the only source of truth on a
 * node: these tags are written by the same lvcreate that makes the LV, so a volume is
 * either absent or fully described, and a restarted driver needs nothing else.
 *
 * Two formats (docs/operations.md, "What loam writes on an LV"). Version 1, written until
 * issue 20, is one tag per key (`loam.csi.dev/<key>=<base64url>`, ~340 bytes of VG metadata
 * per volume). Version 2, written since, is one compact tag (`loam.csi.dev/v2:...`, ~60 bytes):
 * single-letter fields, values written as they are, the CSI name left out when the LV name
 * gives it back exactly, the PV name left out when it is the CSI name, the shaping parameters
 * as short codes. Both are read; an LV keeps the format it was made with (nothing rewrites a
 * volume's identity), and the marks (populating, format in progress) are the same tags in both.
 */
import { decodeFields, decodeTags, encodeFields, encodeTag, hasHead } from "../lvm/tags.js";
import { lvNameFor, snapshotLvNameFor } from "../lvm/names.js";
import type { VolumeParameters } from "./parameters.js";
import { PARAMETER_KEYS, fingerprint } from "./parameters.js";

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
  /** The tag format the LV was made with: 1 (one tag per key) or 2 (the compact tag). */
  format: 1 | 2;
}

/** What the tags are read from: an LV's name and tags (a report's LV, or the LVs of a metadata backup). */
export interface TaggedLv {
  name: string;
  tags: readonly string[];
}

/** Version 2's identity tag and its parameter tag (the shaping after a ControllerModifyVolume). */
const V2 = "v2";
const V2_PARAMETERS = "v2p";

/** Version 2's identity fields. Lowercase; the shaping codes below are uppercase, so they never meet. */
const FIELD = {
  name: "n",
  kind: "k",
  deviceClass: "c",
  pvcName: "p",
  pvcNamespace: "s",
  pvName: "v",
  fromVolume: "fv",
  fromSnapshot: "fs",
  created: "t",
  sequence: "q",
} as const;
const SNAPSHOT_KIND = "snapshot";

/**
 * Version 2's code of each shaping parameter. Fixed for ever: a code is never reused or given
 * to another key (a new key gets a new code; test/unit/volume-tags.test.ts fails on a key without one).
 */
export const SHAPING_CODES: Readonly<Record<string, string>> = {
  [PARAMETER_KEYS.deviceClass]: "D",
  [PARAMETER_KEYS.stripes]: "ST",
  [PARAMETER_KEYS.stripeSize]: "SZ",
  [PARAMETER_KEYS.mirrors]: "M",
  [PARAMETER_KEYS.placement]: "PL",
  [PARAMETER_KEYS.encryption]: "E",
  [PARAMETER_KEYS.encryptionCipher]: "EC",
  [PARAMETER_KEYS.encryptionKeySize]: "EK",
  [PARAMETER_KEYS.encryptionPbkdf]: "EP",
  [PARAMETER_KEYS.encryptionPbkdfMemory]: "EM",
  [PARAMETER_KEYS.encryptionIterTime]: "ET",
  [PARAMETER_KEYS.readIOPS]: "RI",
  [PARAMETER_KEYS.writeIOPS]: "WI",
  [PARAMETER_KEYS.readBytesPerSecond]: "RB",
  [PARAMETER_KEYS.writeBytesPerSecond]: "WB",
  [PARAMETER_KEYS.readIOPSPerGiB]: "RIG",
  [PARAMETER_KEYS.writeIOPSPerGiB]: "WIG",
  [PARAMETER_KEYS.readBytesPerSecondPerGiB]: "RBG",
  [PARAMETER_KEYS.writeBytesPerSecondPerGiB]: "WBG",
  [PARAMETER_KEYS.ioLimitsMissingCgroup]: "IMC",
};
const SHAPING_KEYS = new Map(Object.entries(SHAPING_CODES).map(([key, code]) => [code, key]));

function shapingFields(shaping: Readonly<Record<string, string>>): Array<[string, string]> {
  return Object.keys(shaping)
    .sort()
    .map((key) => {
      const code = SHAPING_CODES[key];
      // parseParameters accepts only declared keys, and the test above gives each a code.
      if (code === undefined) throw new Error(`shaping parameter ${key} has no tag code`);
      return [code, shaping[key] ?? ""];
    });
}

/**
 * The CSI name an LV name gives back exactly: the readable part of lvNameFor (or
 * snapshotLvNameFor), when hashing it again makes the same LV name. Undefined otherwise
 * (a name lvNameFor shortened or rewrote, cluster mode's later incarnations, an LV renamed by hand).
 */
export function nameFromLvName(lvName: string, kind: VolumeMetadata["kind"]): string | undefined {
  const match = (kind === "snapshot" ? /^snap-(.+)-[0-9a-f]{16}$/ : /^(.+)-[0-9a-f]{16}$/).exec(lvName);
  const candidate = match?.[1];
  if (candidate === undefined) return undefined;
  return (kind === "snapshot" ? snapshotLvNameFor(candidate) : lvNameFor(candidate)) === lvName ? candidate : undefined;
}

export const POPULATING_TAG = encodeTag(KEY.state, "populating");

/**
 * The format-in-progress mark: whatever a marked volume holds is loam's own unfinished work (or
 * nothing anyone wrote), so the next NodeStageVolume may wipe it and format again; a volume
 * without the mark is never formatted over what it holds. A new volume without a content source
 * gets it from the lvcreate that makes it (free: the same metadata commit), so its first stage
 * needs one LVM change, the removal once the format finished, not two; a volume made before
 * that, or one whose mark was removed, gets it right before the node formats a device it found
 * empty. A key of its own (not the populating state's), short because every LV's tags share
 * the VG's metadata.
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
  /** A new volume with no content source: it carries the format-in-progress mark from its lvcreate on (FORMATTING_TAG). */
  unformatted?: boolean;
}

/**
 * The tags of a new volume whose LV is named `lvName`: the compact identity tag (the name, the
 * claim, the class, the content source and the shaping parameters), and the populating mark
 * when asked.
 */
export function tagsFor(
  name: string,
  lvName: string,
  parameters: VolumeParameters,
  options: VolumeTagOptions = {},
): string[] {
  const fields: Array<[string, string]> = [];
  if (nameFromLvName(lvName, "volume") !== name) fields.push([FIELD.name, name]);
  if (options.deviceClass !== undefined && options.deviceClass !== parameters.shaping[PARAMETER_KEYS.deviceClass])
    fields.push([FIELD.deviceClass, options.deviceClass]);
  fields.push(...claimFields(claimFor(parameters), name));
  if (options.source)
    fields.push([options.source.kind === "volume" ? FIELD.fromVolume : FIELD.fromSnapshot, options.source.id]);
  fields.push(...shapingFields(parameters.shaping));
  const tags = [encodeFields(V2, fields)];
  if (options.populating) tags.push(POPULATING_TAG);
  if (options.unformatted) tags.push(FORMATTING_TAG);
  return tags;
}

function claimFields(claim: Readonly<Record<string, string>>, name: string): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  const pvc = claim[KEY.pvcName];
  const namespace = claim[KEY.pvcNamespace];
  const pv = claim[KEY.pvName];
  if (pvc !== undefined) fields.push([FIELD.pvcName, pvc]);
  if (namespace !== undefined) fields.push([FIELD.pvcNamespace, namespace]);
  // Kubernetes names the PV after the CSI name; an empty value says "the same" (a PV name is never empty).
  if (pv !== undefined) fields.push([FIELD.pvName, pv === name ? "" : pv]);
  return fields;
}

export function snapshotTagsFor(
  name: string,
  lvName: string,
  sourceVolumeId: string,
  createdAt: Date,
  deviceClass: string | undefined,
): string[] {
  const fields: Array<[string, string]> = [];
  if (nameFromLvName(lvName, "snapshot") !== name) fields.push([FIELD.name, name]);
  fields.push([FIELD.kind, SNAPSHOT_KIND]);
  if (deviceClass !== undefined) fields.push([FIELD.deviceClass, deviceClass]);
  fields.push([FIELD.fromVolume, sourceVolumeId], [FIELD.created, String(createdAt.getTime())]);
  return [encodeFields(V2, fields)];
}

/**
 * The tag changes that record new shaping parameters on a volume, in its own format; undefined
 * when its tags already say so. Version 1: its parameter tag replaced. Version 2: a parameter
 * tag numbered one past any before it (the highest number is read, so a crash between adding
 * the new one and removing the old leaves the new one in force), the old ones removed.
 */
export function shapingChange(
  lv: Pick<TaggedLv, "tags">,
  metadata: VolumeMetadata,
  shaping: Readonly<Record<string, string>>,
): { add: string; remove: string[] } | undefined {
  const wanted = fingerprint({ shaping: { ...shaping }, metadata: {} });
  if (metadata.format === 1) {
    const add = encodeTag(KEY.parameters, wanted);
    const old = encodeTag(KEY.parameters, metadata.parameters);
    return add === old ? undefined : { add, remove: [old] };
  }
  if (wanted === metadata.parameters) return undefined;
  const old = lv.tags.filter((tag) => hasHead(tag, V2_PARAMETERS));
  const sequence = Math.max(0, ...old.map((tag) => Number(decodeFields(tag, V2_PARAMETERS)?.get(FIELD.sequence) ?? 0)));
  const add = encodeFields(V2_PARAMETERS, [[FIELD.sequence, String(sequence + 1)], ...shapingFields(shaping)]);
  return { add, remove: old };
}

/** The metadata of a loam volume, or undefined for an LV loam did not create (never touched). */
export function metadataOf(lv: TaggedLv): VolumeMetadata | undefined {
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
const decoded = new WeakMap<object, VolumeMetadata | undefined>();

function decodeMetadata(lv: TaggedLv): VolumeMetadata | undefined {
  const identity = lv.tags.filter((tag) => hasHead(tag, V2));
  if (identity.length > 0) return identity.length === 1 && identity[0] ? decodeV2(lv, identity[0]) : undefined;
  return decodeV1(lv);
}

/** Version 1: one tag per key. Written until issue 20; read for as long as such volumes exist. */
function decodeV1(lv: Pick<TaggedLv, "tags">): VolumeMetadata | undefined {
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
    format: 1,
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

/**
 * Version 2: the identity tag, the highest-numbered parameter tag if any, and the marks.
 * Anything that does not decode exactly (an unknown field or code, a bad value, two
 * parameter tags of one number) makes the LV unreadable, so loam never acts on a guess: an
 * unreadable LV is treated as one loam did not make and left alone.
 */
function decodeV2(lv: TaggedLv, identityTag: string): VolumeMetadata | undefined {
  const fields = decodeFields(identityTag, V2);
  if (!fields) return undefined;
  const shaping: Record<string, string> = {};
  const identity = new Map<string, string>();
  for (const [key, value] of fields) {
    if (!readShaping(key, value, shaping)) identity.set(key, value);
  }
  const known: readonly string[] = Object.values(FIELD).filter((f) => f !== FIELD.sequence);
  if ([...identity.keys()].some((key) => !known.includes(key))) return undefined;
  const kindText = identity.get(FIELD.kind);
  if (kindText !== undefined && kindText !== SNAPSHOT_KIND) return undefined;
  const kind = kindText === SNAPSHOT_KIND ? "snapshot" : "volume";
  const name = identity.get(FIELD.name) ?? nameFromLvName(lv.name, kind);
  if (name === undefined || name === "") return undefined;

  const override = parametersOverride(lv.tags);
  if (override === null) return undefined;
  const parameters = fingerprint({ shaping: override ?? shaping, metadata: {} });

  const claim: Record<string, string> = {};
  const pvc = identity.get(FIELD.pvcName);
  const namespace = identity.get(FIELD.pvcNamespace);
  const pv = identity.get(FIELD.pvName);
  if (pvc !== undefined) claim[KEY.pvcName] = pvc;
  if (namespace !== undefined) claim[KEY.pvcNamespace] = namespace;
  if (pv !== undefined) claim[KEY.pvName] = pv === "" ? name : pv;

  const marks = decodeTags(lv.tags);
  const metadata: VolumeMetadata = {
    name,
    kind,
    parameters,
    claim,
    populating: marks.get(KEY.state) === "populating",
    formatting: marks.has(KEY.formatting),
    format: 2,
  };
  const deviceClass = identity.get(FIELD.deviceClass) ?? shaping[PARAMETER_KEYS.deviceClass];
  if (deviceClass !== undefined) metadata.deviceClass = deviceClass;
  const fromVolume = identity.get(FIELD.fromVolume);
  const fromSnapshot = identity.get(FIELD.fromSnapshot);
  if (fromVolume !== undefined && fromSnapshot !== undefined) return undefined;
  if (fromVolume) metadata.source = { kind: "volume", id: fromVolume };
  if (fromSnapshot) metadata.source = { kind: "snapshot", id: fromSnapshot };
  const created = identity.get(FIELD.created);
  if (created !== undefined) {
    if (!/^[0-9]{1,15}$/.test(created)) return undefined;
    metadata.createdAt = new Date(Number(created));
  }
  return metadata;
}

/** Sets `shaping[key]` when `code` is a shaping code; false for any other field. */
function readShaping(code: string, value: string, shaping: Record<string, string>): boolean {
  const key = SHAPING_KEYS.get(code);
  if (key === undefined) return false;
  shaping[key] = value;
  return true;
}

/** The shaping of the highest-numbered parameter tag; undefined when there is none, null when they do not decode. */
function parametersOverride(tags: readonly string[]): Record<string, string> | undefined | null {
  let best: { sequence: number; shaping: Record<string, string> } | undefined;
  let tie = false;
  for (const tag of tags) {
    if (!hasHead(tag, V2_PARAMETERS)) continue;
    const fields = decodeFields(tag, V2_PARAMETERS);
    const sequenceText = fields?.get(FIELD.sequence);
    if (!fields || sequenceText === undefined || !/^[1-9][0-9]{0,8}$/.test(sequenceText)) return null;
    const shaping: Record<string, string> = {};
    for (const [key, value] of fields) if (key !== FIELD.sequence && !readShaping(key, value, shaping)) return null;
    const sequence = Number(sequenceText);
    if (best && sequence === best.sequence) tie = true;
    if (!best || sequence > best.sequence) {
      best = { sequence, shaping };
      tie = false;
    }
  }
  return tie ? null : best?.shaping;
}

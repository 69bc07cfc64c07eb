/**
 * `loam csi`: a CSI client for operators and tests. Every RPC loam serves is a subcommand
 * with flags; replies print as aligned text, or as protobuf JSON with `--json` so scripts
 * can read them. A failed call exits 1 with `loam csi <rpc>: <CODE>: <message>`.
 */
import { parseArgs } from "node:util";
import { type DescMessage, type MessageInitShape, type MessageShape, toJson } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { status } from "@grpc/grpc-js";
import {
  Controller,
  ControllerServiceCapability_RPC_Type,
  Identity,
  Node,
  NodeServiceCapability_RPC_Type,
  PluginCapability_Service_Type,
  PluginCapability_VolumeExpansion_Type,
  VolumeCapability_AccessMode_Mode,
  VolumeUsage_Unit,
  type Snapshot,
  type Topology,
  type Volume,
  type VolumeCapabilitySchema,
} from "../gen/csi/v1/csi_pb.js";
import { CsiCallError, CsiClient } from "../csi/client.js";
import { parseQuantity, QuantityError } from "../volumes/quantity.js";
import { humanBytes, keyValues, pairs, sizeWithBytes, table } from "./csi-output.js";

export const DEFAULT_CSI_ENDPOINT = "unix:///run/loam/csi.sock";

/** A flag of one subcommand. */
interface FlagSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  help: string;
}

type Flags = Record<string, string | boolean | string[] | undefined>;

class UsageError extends Error {}

/** What a subcommand produced: the reply (for --json) and its human rendering. */
interface Outcome {
  schema: DescMessage;
  reply: MessageShape<DescMessage>;
  human: string;
}

interface Context {
  client: CsiClient;
  flags: Flags;
  timeoutMs: number;
}

interface Subcommand {
  name: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  run(context: Context): Promise<Outcome>;
}

const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  endpoint: { type: "string", help: `CSI socket (default $CSI_ENDPOINT or ${DEFAULT_CSI_ENDPOINT})` },
  json: { type: "boolean", help: "print the reply as protobuf JSON" },
  timeout: { type: "string", help: "seconds until the call's deadline (default 120)" },
  help: { type: "boolean", help: "show this subcommand's flags" },
};

const CAPABILITY_FLAGS: Record<string, FlagSpec> = {
  "fs-type": { type: "string", help: "filesystem of a mount volume (xfs, ext4; empty: the driver's default)" },
  "mount-flag": { type: "string", multiple: true, help: "mount option, repeatable" },
  block: { type: "boolean", help: "a raw block volume instead of a mounted filesystem" },
  "access-mode": { type: "string", help: `one of ${accessModeNames().join(", ")} (default single-node-writer)` },
};

const PAGING_FLAGS: Record<string, FlagSpec> = {
  "max-entries": { type: "string", help: "entries per page; every page is fetched unless --single-page" },
  "starting-token": { type: "string", help: "start from this page token" },
  "single-page": { type: "boolean", help: "fetch one page and print its next token" },
};

// ---------------------------------------------------------------- flag readers

function text(flags: Flags, name: string): string | undefined {
  const value = flags[name];
  return typeof value === "string" ? value : undefined;
}

function requiredFlag(flags: Flags, name: string): string {
  const value = text(flags, name);
  if (value === undefined || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

function list(flags: Flags, name: string): string[] {
  const value = flags[name];
  return Array.isArray(value) ? value : [];
}

function bool(flags: Flags, name: string): boolean {
  return flags[name] === true;
}

/** Repeated `--flag key=value` into a map; a key given twice is refused. */
function keyValueMap(flags: Flags, name: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const item of list(flags, name)) {
    const at = item.indexOf("=");
    if (at <= 0) throw new UsageError(`--${name} "${item}" must be key=value`);
    const key = item.slice(0, at);
    if (key in map) throw new UsageError(`--${name} gives "${key}" twice`);
    map[key] = item.slice(at + 1);
  }
  return map;
}

/** A size flag in the size grammar of src/volumes/quantity.ts (Kubernetes quantities). */
export function parseSize(value: string, flag = "size"): bigint {
  try {
    return parseQuantity(value);
  } catch (error) {
    if (error instanceof QuantityError) throw new UsageError(`--${flag} ${error.message}`);
    throw error;
  }
}

function optionalSize(flags: Flags, name: string): bigint | undefined {
  const value = text(flags, name);
  return value === undefined ? undefined : parseSize(value, name);
}

function wholeNumber(flags: Flags, name: string, max = 2 ** 31 - 1): number | undefined {
  const value = text(flags, name);
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(value) || Number(value) > max) throw new UsageError(`--${name} "${value}" must be a whole number from 0 to ${max}`);
  return Number(value);
}

function accessModeNames(): string[] {
  return Object.keys(VolumeCapability_AccessMode_Mode)
    .filter((k) => Number.isNaN(Number(k)) && k !== "UNKNOWN")
    .map((k) => k.toLowerCase().replaceAll("_", "-"));
}

function accessMode(flags: Flags): VolumeCapability_AccessMode_Mode {
  const name = text(flags, "access-mode") ?? "single-node-writer";
  const key = name.toUpperCase().replaceAll("-", "_") as keyof typeof VolumeCapability_AccessMode_Mode;
  const mode = VolumeCapability_AccessMode_Mode[key] as VolumeCapability_AccessMode_Mode | undefined;
  if (mode === undefined || key === "UNKNOWN") {
    throw new UsageError(`--access-mode "${name}" is not one of ${accessModeNames().join(", ")}`);
  }
  return mode;
}

function capability(flags: Flags): MessageInitShape<typeof VolumeCapabilitySchema> {
  const fsType = text(flags, "fs-type");
  const mountFlags = list(flags, "mount-flag");
  if (bool(flags, "block") && (fsType !== undefined || mountFlags.length > 0)) {
    throw new UsageError("--block cannot be combined with --fs-type or --mount-flag");
  }
  return {
    accessType: bool(flags, "block")
      ? { case: "block", value: {} }
      : { case: "mount", value: { fsType: fsType ?? "", mountFlags } },
    accessMode: { mode: accessMode(flags) },
  };
}

// ---------------------------------------------------------------- calling

async function invoke<M extends GenServiceMethods, K extends keyof M & string>(
  context: Context,
  service: GenService<M>,
  method: K,
  request: MessageInitShape<M[K]["input"]>,
): Promise<{ schema: DescMessage; reply: MessageShape<M[K]["output"]> }> {
  const reply = await context.client.call(service, method, request, { timeoutMs: context.timeoutMs });
  return { schema: service.method[method].output, reply };
}

function outcome(result: { schema: DescMessage; reply: unknown }, human: string): Outcome {
  return { schema: result.schema, reply: result.reply as MessageShape<DescMessage>, human };
}

// ---------------------------------------------------------------- rendering

function topologies(list: readonly Topology[]): string {
  return list.length === 0 ? "-" : list.map((t) => pairs(t.segments)).join("; ");
}

function volumeBlock(volume: Volume | undefined): string {
  if (!volume) return "(no volume in the reply)";
  const source = volume.contentSource?.type;
  return keyValues([
    ["volume id", volume.volumeId],
    ["capacity", sizeWithBytes(volume.capacityBytes)],
    ["topology", topologies(volume.accessibleTopology)],
    ["context", pairs(volume.volumeContext)],
    ["source", source?.case === "snapshot" ? `snapshot ${source.value.snapshotId}` : source?.case === "volume" ? `volume ${source.value.volumeId}` : undefined],
  ]);
}

function snapshotBlock(snapshot: Snapshot | undefined): string {
  if (!snapshot) return "(no snapshot in the reply)";
  return keyValues([
    ["snapshot id", snapshot.snapshotId],
    ["source volume", snapshot.sourceVolumeId],
    ["size", sizeWithBytes(snapshot.sizeBytes)],
    ["ready to use", String(snapshot.readyToUse)],
    ["created", snapshot.creationTime ? new Date(Number(snapshot.creationTime.seconds) * 1000).toISOString() : undefined],
  ]);
}

function enumName(values: Record<string | number, string | number>, value: number): string {
  const name = values[value];
  return typeof name === "string" ? name : `UNKNOWN(${value})`;
}

// ---------------------------------------------------------------- subcommands

const SUBCOMMANDS: Subcommand[] = [
  {
    name: "info",
    summary: "Identity.GetPluginInfo: driver name and version",
    flags: {},
    async run(context) {
      const r = await invoke(context, Identity, "getPluginInfo", {});
      return outcome(r, keyValues([["name", r.reply.name], ["vendor version", r.reply.vendorVersion], ["manifest", pairs(r.reply.manifest)]]));
    },
  },
  {
    name: "capabilities",
    summary: "Identity.GetPluginCapabilities: the services and features the plugin offers",
    flags: {},
    async run(context) {
      const r = await invoke(context, Identity, "getPluginCapabilities", {});
      const lines = r.reply.capabilities.map((c) =>
        c.type.case === "service"
          ? `service ${enumName(PluginCapability_Service_Type, c.type.value.type)}`
          : c.type.case === "volumeExpansion"
            ? `volume expansion ${enumName(PluginCapability_VolumeExpansion_Type, c.type.value.type)}`
            : "unknown capability",
      );
      return outcome(r, lines.length > 0 ? lines.join("\n") : "(none)");
    },
  },
  {
    name: "probe",
    summary: "Identity.Probe: whether the plugin is ready",
    flags: {},
    async run(context) {
      const r = await invoke(context, Identity, "probe", {});
      return outcome(r, `ready: ${r.reply.ready === undefined ? "true (not reported, which means ready)" : String(r.reply.ready)}`);
    },
  },
  {
    name: "create-volume",
    summary: "Controller.CreateVolume",
    flags: {
      name: { type: "string", help: "the volume's name (required; the same name returns the same volume)" },
      size: { type: "string", help: "required bytes, e.g. 1Gi" },
      limit: { type: "string", help: "limit bytes, e.g. 2Gi" },
      parameter: { type: "string", multiple: true, help: "StorageClass parameter key=value, repeatable" },
      topology: { type: "string", multiple: true, help: "required topology segment key=value, repeatable" },
      "from-snapshot": { type: "string", help: "create from this snapshot id" },
      "from-volume": { type: "string", help: "clone this volume id" },
      ...CAPABILITY_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const fromSnapshot = text(flags, "from-snapshot");
      const fromVolume = text(flags, "from-volume");
      if (fromSnapshot !== undefined && fromVolume !== undefined) throw new UsageError("give --from-snapshot or --from-volume, not both");
      const requiredBytes = optionalSize(flags, "size");
      const limitBytes = optionalSize(flags, "limit");
      const segments = keyValueMap(flags, "topology");
      const r = await invoke(context, Controller, "createVolume", {
        name: requiredFlag(flags, "name"),
        capacityRange: requiredBytes !== undefined || limitBytes !== undefined ? { requiredBytes: requiredBytes ?? 0n, limitBytes: limitBytes ?? 0n } : undefined,
        volumeCapabilities: [capability(flags)],
        parameters: keyValueMap(flags, "parameter"),
        volumeContentSource:
          fromSnapshot !== undefined
            ? { type: { case: "snapshot", value: { snapshotId: fromSnapshot } } }
            : fromVolume !== undefined
              ? { type: { case: "volume", value: { volumeId: fromVolume } } }
              : undefined,
        accessibilityRequirements: Object.keys(segments).length > 0 ? { requisite: [{ segments }], preferred: [{ segments }] } : undefined,
      });
      return outcome(r, volumeBlock(r.reply.volume));
    },
  },
  {
    name: "delete-volume",
    summary: "Controller.DeleteVolume",
    flags: { "volume-id": { type: "string", help: "the volume (required)" } },
    async run(context) {
      const id = requiredFlag(context.flags, "volume-id");
      const r = await invoke(context, Controller, "deleteVolume", { volumeId: id });
      return outcome(r, `deleted volume ${id}`);
    },
  },
  {
    name: "list-volumes",
    summary: "Controller.ListVolumes, following next_token across pages",
    flags: { ...PAGING_FLAGS },
    async run(context) {
      const { flags } = context;
      const maxEntries = wholeNumber(flags, "max-entries") ?? 0;
      let token = text(flags, "starting-token") ?? "";
      const first = await invoke(context, Controller, "listVolumes", { maxEntries, startingToken: token });
      const all = first.reply;
      token = all.nextToken;
      // Pages are gathered into the first reply so --json prints one ListVolumesResponse.
      while (token !== "" && !bool(flags, "single-page")) {
        const page = await invoke(context, Controller, "listVolumes", { maxEntries, startingToken: token });
        all.entries.push(...page.reply.entries);
        token = page.reply.nextToken;
      }
      all.nextToken = token;
      const rows = all.entries.map((e) => [
        e.volume?.volumeId ?? "-",
        e.volume ? humanBytes(e.volume.capacityBytes) : "-",
        topologies(e.volume?.accessibleTopology ?? []),
        e.status?.volumeCondition ? (e.status.volumeCondition.abnormal ? `abnormal: ${e.status.volumeCondition.message}` : "ok") : "-",
      ]);
      let human = rows.length === 0 ? "(no volumes)" : table(["VOLUME ID", "CAPACITY", "TOPOLOGY", "CONDITION"], rows);
      if (token !== "") human += `\nnext token: ${token}`;
      return outcome(first, human);
    },
  },
  {
    name: "get-volume",
    summary: "Controller.ControllerGetVolume",
    flags: { "volume-id": { type: "string", help: "the volume (required)" } },
    async run(context) {
      const r = await invoke(context, Controller, "controllerGetVolume", { volumeId: requiredFlag(context.flags, "volume-id") });
      const condition = r.reply.status?.volumeCondition;
      const extra = keyValues([
        ["published on", r.reply.status ? (r.reply.status.publishedNodeIds.join(", ") || "-") : undefined],
        ["condition", condition ? `${condition.abnormal ? "abnormal" : "ok"}${condition.message ? ` (${condition.message})` : ""}` : undefined],
      ]);
      return outcome(r, [volumeBlock(r.reply.volume), extra].filter(Boolean).join("\n"));
    },
  },
  {
    name: "get-capacity",
    summary: "Controller.GetCapacity",
    flags: {
      parameter: { type: "string", multiple: true, help: "StorageClass parameter key=value, repeatable" },
      topology: { type: "string", multiple: true, help: "topology segment key=value, repeatable" },
      ...CAPABILITY_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const segments = keyValueMap(flags, "topology");
      const withCapability = text(flags, "fs-type") !== undefined || bool(flags, "block") || text(flags, "access-mode") !== undefined;
      const r = await invoke(context, Controller, "getCapacity", {
        parameters: keyValueMap(flags, "parameter"),
        accessibleTopology: Object.keys(segments).length > 0 ? { segments } : undefined,
        volumeCapabilities: withCapability ? [capability(flags)] : [],
      });
      return outcome(
        r,
        keyValues([
          ["available", sizeWithBytes(r.reply.availableCapacity)],
          ["maximum volume size", r.reply.maximumVolumeSize !== undefined ? sizeWithBytes(r.reply.maximumVolumeSize) : undefined],
          ["minimum volume size", r.reply.minimumVolumeSize !== undefined ? sizeWithBytes(r.reply.minimumVolumeSize) : undefined],
        ]),
      );
    },
  },
  {
    name: "validate-capabilities",
    summary: "Controller.ValidateVolumeCapabilities",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      parameter: { type: "string", multiple: true, help: "StorageClass parameter key=value, repeatable" },
      ...CAPABILITY_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const r = await invoke(context, Controller, "validateVolumeCapabilities", {
        volumeId: requiredFlag(flags, "volume-id"),
        volumeCapabilities: [capability(flags)],
        parameters: keyValueMap(flags, "parameter"),
      });
      return outcome(r, r.reply.confirmed ? "confirmed" : `not confirmed: ${r.reply.message || "(no reason given)"}`);
    },
  },
  {
    name: "controller-capabilities",
    summary: "Controller.ControllerGetCapabilities",
    flags: {},
    async run(context) {
      const r = await invoke(context, Controller, "controllerGetCapabilities", {});
      const names = r.reply.capabilities.map((c) => (c.type.case === "rpc" ? enumName(ControllerServiceCapability_RPC_Type, c.type.value.type) : "unknown"));
      return outcome(r, names.length > 0 ? names.join("\n") : "(none)");
    },
  },
  {
    name: "create-snapshot",
    summary: "Controller.CreateSnapshot",
    flags: {
      name: { type: "string", help: "the snapshot's name (required)" },
      "source-volume-id": { type: "string", help: "the volume to snapshot (required)" },
      parameter: { type: "string", multiple: true, help: "VolumeSnapshotClass parameter key=value, repeatable" },
    },
    async run(context) {
      const { flags } = context;
      const r = await invoke(context, Controller, "createSnapshot", {
        name: requiredFlag(flags, "name"),
        sourceVolumeId: requiredFlag(flags, "source-volume-id"),
        parameters: keyValueMap(flags, "parameter"),
      });
      return outcome(r, snapshotBlock(r.reply.snapshot));
    },
  },
  {
    name: "delete-snapshot",
    summary: "Controller.DeleteSnapshot",
    flags: { "snapshot-id": { type: "string", help: "the snapshot (required)" } },
    async run(context) {
      const id = requiredFlag(context.flags, "snapshot-id");
      const r = await invoke(context, Controller, "deleteSnapshot", { snapshotId: id });
      return outcome(r, `deleted snapshot ${id}`);
    },
  },
  {
    name: "list-snapshots",
    summary: "Controller.ListSnapshots, following next_token across pages",
    flags: {
      "snapshot-id": { type: "string", help: "only this snapshot" },
      "source-volume-id": { type: "string", help: "only snapshots of this volume" },
      ...PAGING_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const base = { maxEntries: wholeNumber(flags, "max-entries") ?? 0, snapshotId: text(flags, "snapshot-id") ?? "", sourceVolumeId: text(flags, "source-volume-id") ?? "" };
      let token = text(flags, "starting-token") ?? "";
      const first = await invoke(context, Controller, "listSnapshots", { ...base, startingToken: token });
      const all = first.reply;
      token = all.nextToken;
      while (token !== "" && !bool(flags, "single-page")) {
        const page = await invoke(context, Controller, "listSnapshots", { ...base, startingToken: token });
        all.entries.push(...page.reply.entries);
        token = page.reply.nextToken;
      }
      all.nextToken = token;
      const rows = all.entries.map((e) => [
        e.snapshot?.snapshotId ?? "-",
        e.snapshot?.sourceVolumeId ?? "-",
        e.snapshot ? humanBytes(e.snapshot.sizeBytes) : "-",
        e.snapshot ? String(e.snapshot.readyToUse) : "-",
      ]);
      let human = rows.length === 0 ? "(no snapshots)" : table(["SNAPSHOT ID", "SOURCE VOLUME", "SIZE", "READY"], rows);
      if (token !== "") human += `\nnext token: ${token}`;
      return outcome(first, human);
    },
  },
  {
    name: "stage",
    summary: "Node.NodeStageVolume: format if needed and mount at the staging path",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      "staging-path": { type: "string", help: "staging target path (required)" },
      context: { type: "string", multiple: true, help: "volume context key=value, repeatable" },
      ...CAPABILITY_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const id = requiredFlag(flags, "volume-id");
      const path = requiredFlag(flags, "staging-path");
      const r = await invoke(context, Node, "nodeStageVolume", {
        volumeId: id,
        stagingTargetPath: path,
        volumeCapability: capability(flags),
        volumeContext: keyValueMap(flags, "context"),
      });
      return outcome(r, `staged volume ${id} at ${path}`);
    },
  },
  {
    name: "unstage",
    summary: "Node.NodeUnstageVolume",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      "staging-path": { type: "string", help: "staging target path (required)" },
    },
    async run(context) {
      const { flags } = context;
      const id = requiredFlag(flags, "volume-id");
      const path = requiredFlag(flags, "staging-path");
      const r = await invoke(context, Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: path });
      return outcome(r, `unstaged volume ${id} from ${path}`);
    },
  },
  {
    name: "publish",
    summary: "Node.NodePublishVolume: bind the staged volume to the target path",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      "staging-path": { type: "string", help: "staging target path" },
      "target-path": { type: "string", help: "target path (required)" },
      readonly: { type: "boolean", help: "publish read-only" },
      context: { type: "string", multiple: true, help: "volume context key=value, repeatable" },
      ...CAPABILITY_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const id = requiredFlag(flags, "volume-id");
      const target = requiredFlag(flags, "target-path");
      const r = await invoke(context, Node, "nodePublishVolume", {
        volumeId: id,
        stagingTargetPath: text(flags, "staging-path") ?? "",
        targetPath: target,
        volumeCapability: capability(flags),
        readonly: bool(flags, "readonly"),
        volumeContext: keyValueMap(flags, "context"),
      });
      return outcome(r, `published volume ${id} at ${target}${bool(flags, "readonly") ? " (read-only)" : ""}`);
    },
  },
  {
    name: "unpublish",
    summary: "Node.NodeUnpublishVolume",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      "target-path": { type: "string", help: "target path (required)" },
    },
    async run(context) {
      const { flags } = context;
      const id = requiredFlag(flags, "volume-id");
      const target = requiredFlag(flags, "target-path");
      const r = await invoke(context, Node, "nodeUnpublishVolume", { volumeId: id, targetPath: target });
      return outcome(r, `unpublished volume ${id} from ${target}`);
    },
  },
  {
    name: "expand",
    summary: "Node.NodeExpandVolume: grow the LV and its filesystem",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      "volume-path": { type: "string", help: "where the volume is published or staged (required)" },
      "staging-path": { type: "string", help: "staging target path" },
      size: { type: "string", help: "new required size, e.g. 2Gi (required)" },
      limit: { type: "string", help: "limit bytes" },
      ...CAPABILITY_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const requiredBytes = parseSize(requiredFlag(flags, "size"), "size");
      const withCapability = text(flags, "fs-type") !== undefined || bool(flags, "block") || text(flags, "access-mode") !== undefined;
      const r = await invoke(context, Node, "nodeExpandVolume", {
        volumeId: requiredFlag(flags, "volume-id"),
        volumePath: requiredFlag(flags, "volume-path"),
        stagingTargetPath: text(flags, "staging-path") ?? "",
        capacityRange: { requiredBytes, limitBytes: optionalSize(flags, "limit") ?? 0n },
        volumeCapability: withCapability ? capability(flags) : undefined,
      });
      return outcome(r, `capacity: ${sizeWithBytes(r.reply.capacityBytes)}`);
    },
  },
  {
    name: "stats",
    summary: "Node.NodeGetVolumeStats: bytes and inodes used",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      "volume-path": { type: "string", help: "where the volume is published (required)" },
      "staging-path": { type: "string", help: "staging target path" },
    },
    async run(context) {
      const { flags } = context;
      const r = await invoke(context, Node, "nodeGetVolumeStats", {
        volumeId: requiredFlag(flags, "volume-id"),
        volumePath: requiredFlag(flags, "volume-path"),
        stagingTargetPath: text(flags, "staging-path") ?? "",
      });
      const rows = r.reply.usage.map((u) => {
        const bytes = u.unit === VolumeUsage_Unit.BYTES;
        const show = (n: bigint): string => (bytes ? humanBytes(n) : n.toString());
        return [enumName(VolumeUsage_Unit, u.unit), show(u.total), show(u.used), show(u.available)];
      });
      const condition = r.reply.volumeCondition;
      let human = rows.length === 0 ? "(no usage reported)" : table(["UNIT", "TOTAL", "USED", "AVAILABLE"], rows);
      if (condition) human += `\ncondition: ${condition.abnormal ? "abnormal" : "ok"}${condition.message ? ` (${condition.message})` : ""}`;
      return outcome(r, human);
    },
  },
  {
    name: "node-info",
    summary: "Node.NodeGetInfo: node id, volume limit and topology",
    flags: {},
    async run(context) {
      const r = await invoke(context, Node, "nodeGetInfo", {});
      return outcome(
        r,
        keyValues([
          ["node id", r.reply.nodeId],
          ["max volumes", r.reply.maxVolumesPerNode === 0n ? "no limit" : r.reply.maxVolumesPerNode.toString()],
          ["topology", r.reply.accessibleTopology ? pairs(r.reply.accessibleTopology.segments) : "-"],
        ]),
      );
    },
  },
  {
    name: "node-capabilities",
    summary: "Node.NodeGetCapabilities",
    flags: {},
    async run(context) {
      const r = await invoke(context, Node, "nodeGetCapabilities", {});
      const names = r.reply.capabilities.map((c) => (c.type.case === "rpc" ? enumName(NodeServiceCapability_RPC_Type, c.type.value.type) : "unknown"));
      return outcome(r, names.length > 0 ? names.join("\n") : "(none)");
    },
  },
];

export const CSI_SUBCOMMANDS: readonly string[] = SUBCOMMANDS.map((s) => s.name);

function flagHelp(flags: Record<string, FlagSpec>): string {
  const rows = Object.entries(flags).map(([name, spec]) => [`--${name}${spec.type === "string" ? " VALUE" : ""}`, spec.help]);
  const width = Math.max(...rows.map(([left]) => (left ?? "").length));
  return rows.map(([left, help]) => `  ${(left ?? "").padEnd(width)}  ${help}`).join("\n");
}

export const CSI_USAGE = `Usage: loam csi [--endpoint unix:///PATH] [--json] <rpc> [flags]

Calls one CSI RPC on a running loam (or any CSI driver) and prints the reply.

RPCs:
${SUBCOMMANDS.map((s) => `  ${s.name.padEnd(24)}${s.summary}`).join("\n")}

Flags for every RPC:
${flagHelp(GLOBAL_FLAGS)}

Run "loam csi <rpc> --help" for an RPC's flags. Sizes are Kubernetes quantities: Ki/Mi/Gi/Ti/Pi/Ei (binary) or k/M/G/T/P/E (decimal), e.g. 512Mi.
`;

export interface CsiIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
}

const processIo: CsiIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  env: process.env,
};

/** Runs `loam csi ...`; returns the exit status (0 ok, 1 the call failed, 2 bad usage). */
export async function runCsi(args: string[], io: CsiIo = processIo): Promise<number> {
  args = args.map((a) => (a === "-h" ? "--help" : a));
  const name = rpcName(args);
  const subcommand = SUBCOMMANDS.find((s) => s.name === name);
  if (name === undefined || name === "help") {
    io.stdout(CSI_USAGE);
    return name === undefined && !args.includes("--help") && !args.includes("-h") ? 2 : 0;
  }
  if (!subcommand) {
    io.stderr(`loam csi: unknown RPC "${name}"\n\n${CSI_USAGE}`);
    return 2;
  }
  const label = `loam csi ${subcommand.name}`;
  const specs = { ...GLOBAL_FLAGS, ...subcommand.flags };
  let flags: Flags;
  try {
    const options = Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, { type: s.type, multiple: s.multiple ?? false }]));
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    if (parsed.positionals.length !== 1) throw new UsageError(`unexpected argument "${parsed.positionals.find((p) => p !== name) ?? ""}"`);
    flags = parsed.values as Flags;
  } catch (error) {
    io.stderr(`${label}: ${(error as Error).message}\n\nFlags:\n${flagHelp(specs)}\n`);
    return 2;
  }
  if (bool(flags, "help")) {
    io.stdout(`Usage: loam csi ${subcommand.name} [flags]\n\n${subcommand.summary}\n\nFlags:\n${flagHelp(specs)}\n`);
    return 0;
  }
  const endpoint = text(flags, "endpoint") ?? io.env.CSI_ENDPOINT ?? DEFAULT_CSI_ENDPOINT;
  const client = new CsiClient(endpoint);
  try {
    const timeout = wholeNumber(flags, "timeout", 86_400) ?? 120;
    const result = await subcommand.run({ client, flags, timeoutMs: timeout * 1000 });
    io.stdout(
      bool(flags, "json")
        ? `${JSON.stringify(toJson(result.schema, result.reply, { alwaysEmitImplicit: true }), null, 2)}\n`
        : `${result.human}\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${label}: ${error.message}\n`);
      return 2;
    }
    if (error instanceof CsiCallError) {
      io.stderr(`${label}: ${status[error.code] ?? error.code}: ${error.details}\n`);
      return 1;
    }
    io.stderr(`${label}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    client.close();
  }
}

/** The first word that is neither a flag nor a string flag's value: the RPC to call. */
function rpcName(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const word = args[i] ?? "";
    if (!word.startsWith("-")) return word;
    const flag = word.replace(/^--?/, "");
    if (flag.includes("=")) continue;
    const spec = GLOBAL_FLAGS[flag] ?? SUBCOMMANDS.map((s) => s.flags[flag]).find((f) => f !== undefined);
    if (spec?.type === "string") i++;
  }
  return undefined;
}

/**
 * `loam csi` subcommands for the Node service: stage, unstage, publish, unpublish, expand,
 * stats, node info and the node's capabilities.
 */
import { Node, NodeServiceCapability_RPC_Type, VolumeUsage_Unit } from "../../gen/csi/v1/csi_pb.js";
import { humanBytes, keyValues, pairs, sizeWithBytes, table } from "../csi-output.js";
import {
  bool,
  CAPABILITY_FLAGS,
  capability,
  keyValueMap,
  optionalSize,
  parseSize,
  requiredFlag,
  secretsFile,
  text,
} from "./flags.js";
import { enumName, invoke, outcome, type Subcommand } from "./subcommand.js";

const SECRETS_HELP =
  'JSON file of the request\'s secrets, e.g. {"encryptionPassphrase": "..."} for an encrypted volume (never on the command line)';

export const NODE_SUBCOMMANDS: Subcommand[] = [
  {
    name: "stage",
    summary: "Node.NodeStageVolume: format if needed and mount at the staging path",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      "staging-path": { type: "string", help: "staging target path (required)" },
      context: { type: "string", multiple: true, help: "volume context key=value, repeatable" },
      "secrets-file": { type: "string", help: SECRETS_HELP },
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
        secrets: await secretsFile(flags),
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
      "secrets-file": { type: "string", help: SECRETS_HELP },
      ...CAPABILITY_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const requiredBytes = parseSize(requiredFlag(flags, "size"), "size");
      const withCapability =
        text(flags, "fs-type") !== undefined || bool(flags, "block") || text(flags, "access-mode") !== undefined;
      const r = await invoke(context, Node, "nodeExpandVolume", {
        volumeId: requiredFlag(flags, "volume-id"),
        volumePath: requiredFlag(flags, "volume-path"),
        stagingTargetPath: text(flags, "staging-path") ?? "",
        capacityRange: { requiredBytes, limitBytes: optionalSize(flags, "limit") ?? 0n },
        volumeCapability: withCapability ? capability(flags) : undefined,
        secrets: await secretsFile(flags),
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
      if (condition)
        human += `\ncondition: ${condition.abnormal ? "abnormal" : "ok"}${condition.message ? ` (${condition.message})` : ""}`;
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
      const names = r.reply.capabilities.map((c) =>
        c.type.case === "rpc" ? enumName(NodeServiceCapability_RPC_Type, c.type.value.type) : "unknown",
      );
      return outcome(r, names.length > 0 ? names.join("\n") : "(none)");
    },
  },
];

/**
 * `loam csi` subcommands for the Controller's volumes: create, delete, list, get, capacity,
 * capability validation, and the controller's capabilities.
 */
import { Controller, ControllerServiceCapability_RPC_Type } from "../../gen/csi/v1/csi_pb.js";
import { humanBytes, keyValues, sizeWithBytes, table } from "../csi-output.js";
import {
  bool,
  CAPABILITY_FLAGS,
  capability,
  keyValueMap,
  optionalSize,
  PAGING_FLAGS,
  parseSize,
  requiredFlag,
  text,
  UsageError,
  wholeNumber,
} from "./flags.js";
import { allPages, enumName, invoke, outcome, topologies, volumeBlock, type Subcommand } from "./subcommand.js";

export const VOLUME_SUBCOMMANDS: Subcommand[] = [
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
      if (fromSnapshot !== undefined && fromVolume !== undefined)
        throw new UsageError("give --from-snapshot or --from-volume, not both");
      const requiredBytes = optionalSize(flags, "size");
      const limitBytes = optionalSize(flags, "limit");
      const segments = keyValueMap(flags, "topology");
      const r = await invoke(context, Controller, "createVolume", {
        name: requiredFlag(flags, "name"),
        capacityRange:
          requiredBytes !== undefined || limitBytes !== undefined
            ? { requiredBytes: requiredBytes ?? 0n, limitBytes: limitBytes ?? 0n }
            : undefined,
        volumeCapabilities: [capability(flags)],
        parameters: keyValueMap(flags, "parameter"),
        volumeContentSource:
          fromSnapshot !== undefined
            ? { type: { case: "snapshot", value: { snapshotId: fromSnapshot } } }
            : fromVolume !== undefined
              ? { type: { case: "volume", value: { volumeId: fromVolume } } }
              : undefined,
        accessibilityRequirements:
          Object.keys(segments).length > 0 ? { requisite: [{ segments }], preferred: [{ segments }] } : undefined,
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
    name: "controller-expand",
    summary: "Controller.ControllerExpandVolume: grow the LV on its node (cluster mode)",
    flags: {
      "volume-id": { type: "string", help: "the volume (required)" },
      size: { type: "string", help: "new required size, e.g. 2Gi (required)" },
      limit: { type: "string", help: "limit bytes" },
      ...CAPABILITY_FLAGS,
    },
    async run(context) {
      const { flags } = context;
      const requiredBytes = parseSize(requiredFlag(flags, "size"), "size");
      const withCapability =
        text(flags, "fs-type") !== undefined || bool(flags, "block") || text(flags, "access-mode") !== undefined;
      const r = await invoke(context, Controller, "controllerExpandVolume", {
        volumeId: requiredFlag(flags, "volume-id"),
        capacityRange: { requiredBytes, limitBytes: optionalSize(flags, "limit") ?? 0n },
        volumeCapability: withCapability ? capability(flags) : undefined,
      });
      const node = r.reply.nodeExpansionRequired ? "; the node grows the filesystem (NodeExpandVolume)" : "";
      return outcome(r, `capacity: ${sizeWithBytes(r.reply.capacityBytes)}${node}`);
    },
  },
  {
    name: "list-volumes",
    summary: "Controller.ListVolumes, following next_token across pages",
    flags: { ...PAGING_FLAGS },
    async run(context) {
      const { flags } = context;
      const maxEntries = wholeNumber(flags, "max-entries") ?? 0;
      const first = await allPages(flags, (startingToken) =>
        invoke(context, Controller, "listVolumes", { maxEntries, startingToken }),
      );
      const all = first.reply;
      const token = all.nextToken;
      const rows = all.entries.map((e) => [
        e.volume?.volumeId ?? "-",
        e.volume ? humanBytes(e.volume.capacityBytes) : "-",
        topologies(e.volume?.accessibleTopology ?? []),
        e.status?.volumeCondition
          ? e.status.volumeCondition.abnormal
            ? `abnormal: ${e.status.volumeCondition.message}`
            : "ok"
          : "-",
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
      const r = await invoke(context, Controller, "controllerGetVolume", {
        volumeId: requiredFlag(context.flags, "volume-id"),
      });
      const condition = r.reply.status?.volumeCondition;
      const extra = keyValues([
        ["published on", r.reply.status ? r.reply.status.publishedNodeIds.join(", ") || "-" : undefined],
        [
          "condition",
          condition
            ? `${condition.abnormal ? "abnormal" : "ok"}${condition.message ? ` (${condition.message})` : ""}`
            : undefined,
        ],
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
      const withCapability =
        text(flags, "fs-type") !== undefined || bool(flags, "block") || text(flags, "access-mode") !== undefined;
      const r = await invoke(context, Controller, "getCapacity", {
        parameters: keyValueMap(flags, "parameter"),
        accessibleTopology: Object.keys(segments).length > 0 ? { segments } : undefined,
        volumeCapabilities: withCapability ? [capability(flags)] : [],
      });
      return outcome(
        r,
        keyValues([
          ["available", sizeWithBytes(r.reply.availableCapacity)],
          [
            "maximum volume size",
            r.reply.maximumVolumeSize !== undefined ? sizeWithBytes(r.reply.maximumVolumeSize) : undefined,
          ],
          [
            "minimum volume size",
            r.reply.minimumVolumeSize !== undefined ? sizeWithBytes(r.reply.minimumVolumeSize) : undefined,
          ],
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
      const names = r.reply.capabilities.map((c) =>
        c.type.case === "rpc" ? enumName(ControllerServiceCapability_RPC_Type, c.type.value.type) : "unknown",
      );
      return outcome(r, names.length > 0 ? names.join("\n") : "(none)");
    },
  },
];

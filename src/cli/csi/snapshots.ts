/** `loam csi` subcommands for the Controller's snapshots: create, delete, list. */
import { Controller } from "../../gen/csi/v1/csi_pb.js";
import { humanBytes, table } from "../csi-output.js";
import { keyValueMap, PAGING_FLAGS, requiredFlag, text, wholeNumber } from "./flags.js";
import { allPages, invoke, outcome, snapshotBlock, type Subcommand } from "./subcommand.js";

export const SNAPSHOT_SUBCOMMANDS: Subcommand[] = [
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
      const base = {
        maxEntries: wholeNumber(flags, "max-entries") ?? 0,
        snapshotId: text(flags, "snapshot-id") ?? "",
        sourceVolumeId: text(flags, "source-volume-id") ?? "",
      };
      const first = await allPages(flags, (startingToken) =>
        invoke(context, Controller, "listSnapshots", { ...base, startingToken }),
      );
      const all = first.reply;
      const token = all.nextToken;
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
];

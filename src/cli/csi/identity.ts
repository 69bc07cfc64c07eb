/** `loam csi` subcommands for the Identity service: plugin info, capabilities, probe. */
import {
  Identity,
  PluginCapability_Service_Type,
  PluginCapability_VolumeExpansion_Type,
} from "../../gen/csi/v1/csi_pb.js";
import { keyValues, pairs } from "../csi-output.js";
import { enumName, invoke, outcome, type Subcommand } from "./subcommand.js";

export const IDENTITY_SUBCOMMANDS: Subcommand[] = [
  {
    name: "info",
    summary: "Identity.GetPluginInfo: driver name and version",
    flags: {},
    async run(context) {
      const r = await invoke(context, Identity, "getPluginInfo", {});
      return outcome(
        r,
        keyValues([
          ["name", r.reply.name],
          ["vendor version", r.reply.vendorVersion],
          ["manifest", pairs(r.reply.manifest)],
        ]),
      );
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
      return outcome(
        r,
        `ready: ${r.reply.ready === undefined ? "true (not reported, which means ready)" : String(r.reply.ready)}`,
      );
    },
  },
];

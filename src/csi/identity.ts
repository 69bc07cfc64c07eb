/**
 * CSI Identity: who we are, what we offer, and whether what we serve from can be read (the
 * node's volume groups, or for the cluster controller the etcd registry).
 */
import {
  type Identity,
  PluginCapability_Service_Type as ServiceType,
  PluginCapability_VolumeExpansion_Type as ExpansionType,
} from "../gen/csi/v1/csi_pb.js";
import type { ServiceHandlers } from "./service.js";

type IdentityMethods = (typeof Identity)["method"];

export interface IdentityOptions {
  driverName: string;
  version: string;
  /** Throws (UNAVAILABLE) unless the plugin can serve: its volume groups, or its registry, answer. */
  probe: (signal: AbortSignal) => Promise<void>;
  /**
   * Whether this plugin serves the Controller service. A node agent of cluster mode does not: the
   * central controller does, and a CO must not send it controller calls.
   */
  controller: boolean;
}

export function identityService(options: IdentityOptions): ServiceHandlers<IdentityMethods> {
  return {
    getPluginInfo: () => Promise.resolve({ name: options.driverName, vendorVersion: options.version, manifest: {} }),

    getPluginCapabilities: () =>
      Promise.resolve({
        capabilities: [
          ...(options.controller
            ? [{ type: { case: "service" as const, value: { type: ServiceType.CONTROLLER_SERVICE } } }]
            : []),
          { type: { case: "service", value: { type: ServiceType.VOLUME_ACCESSIBILITY_CONSTRAINTS } } },
          // Online: NodeExpandVolume grows a mounted filesystem without unpublishing it.
          { type: { case: "volumeExpansion", value: { type: ExpansionType.ONLINE } } },
        ],
      }),

    probe: async (_request, context) => {
      // Ready means the volume groups (or the registry) answer; an error here reaches the caller as UNAVAILABLE.
      await options.probe(context.signal);
      return { ready: true };
    },
  };
}

/**
 * CSI Identity: who we are, what we offer, and whether the node's volume group can be read.
 */
import {
  type Identity,
  PluginCapability_Service_Type as ServiceType,
  PluginCapability_VolumeExpansion_Type as ExpansionType,
} from "../gen/csi/v1/csi_pb.js";
import type { VolumeEngine } from "../volumes/engine.js";
import type { ServiceHandlers } from "./service.js";

type IdentityMethods = (typeof Identity)["method"];

export interface IdentityOptions {
  driverName: string;
  version: string;
  engine: VolumeEngine;
}

export function identityService(options: IdentityOptions): ServiceHandlers<IdentityMethods> {
  return {
    getPluginInfo: () => Promise.resolve({ name: options.driverName, vendorVersion: options.version, manifest: {} }),

    getPluginCapabilities: () =>
      Promise.resolve({
        capabilities: [
          { type: { case: "service", value: { type: ServiceType.CONTROLLER_SERVICE } } },
          { type: { case: "service", value: { type: ServiceType.VOLUME_ACCESSIBILITY_CONSTRAINTS } } },
          // Online: NodeExpandVolume grows a mounted filesystem without unpublishing it.
          { type: { case: "volumeExpansion", value: { type: ExpansionType.ONLINE } } },
        ],
      }),

    probe: async (_request, context) => {
      // Ready means the volume group answers; an error here reaches the caller as UNAVAILABLE.
      await options.engine.probe({ signal: context.signal });
      return { ready: true };
    },
  };
}

/**
 * CSI Controller for the node-deployment topology: each node's loam serves the controller
 * calls for the volumes on its own volume group, so every volume is accessible from this
 * node only.
 */
import { type Controller, ControllerServiceCapability_RPC_Type as Rpc } from "../gen/csi/v1/csi_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { VolumeSchema } from "../gen/csi/v1/csi_pb.js";
import type { Snapshot, Volume, VolumeEngine } from "../volumes/engine.js";
import { invalidArgument, notFound, resourceExhausted } from "../volumes/errors.js";
import { checkSnapshotParameters, parseParameters } from "../volumes/parameters.js";
import { checkVolumeName } from "../volumes/names.js";
import {
  PageTokens,
  confirmCapabilities,
  contentSourceOf,
  page,
  toCsiSnapshot,
  toCsiSource,
} from "./controller-messages.js";
import type { ServiceHandlers } from "./service.js";
import {
  type NodeTopology,
  capacityUses,
  describeTopologies,
  isThisNode,
  required,
  topologyOf,
  volumeUses,
} from "./validate.js";

type ControllerMethods = (typeof Controller)["method"];

export interface ControllerOptions {
  engine: VolumeEngine;
  node: NodeTopology;
}

const CAPABILITIES = [
  Rpc.CREATE_DELETE_VOLUME,
  Rpc.LIST_VOLUMES,
  Rpc.GET_CAPACITY,
  Rpc.GET_VOLUME,
  Rpc.CREATE_DELETE_SNAPSHOT,
  Rpc.LIST_SNAPSHOTS,
  Rpc.GET_SNAPSHOT,
  Rpc.CLONE_VOLUME,
  // ListVolumes and ControllerGetVolume both carry the volume's condition. Not
  // LIST_VOLUMES_PUBLISHED_NODES: loam has no controller publish, so no published_node_ids.
  Rpc.VOLUME_CONDITION,
];

export function controllerService(options: ControllerOptions): ServiceHandlers<ControllerMethods> {
  const { engine, node } = options;
  const pages = new PageTokens();
  const snapshotPages = new PageTokens();

  const toCsi = (volume: Volume): MessageInitShape<typeof VolumeSchema> => {
    const csi: MessageInitShape<typeof VolumeSchema> = {
      volumeId: volume.id,
      capacityBytes: BigInt(volume.sizeBytes),
      volumeContext: {},
      accessibleTopology: topologyOf(node),
    };
    // external-provisioner checks that a cloned or restored volume says where it came from.
    if (volume.contentSource) csi.contentSource = toCsiSource(volume.contentSource);
    return csi;
  };

  return {
    controllerGetCapabilities: () =>
      Promise.resolve({ capabilities: CAPABILITIES.map((type) => ({ type: { case: "rpc", value: { type } } })) }),

    createVolume: async (request, context) => {
      const name = checkVolumeName(request.name);
      volumeUses(request.volumeCapabilities);
      const parameters = parseParameters(request.parameters);
      if (Object.keys(request.mutableParameters).length > 0) {
        throw invalidArgument(
          "mutable_parameters are not supported by a node's own controller (it does not offer MODIFY_VOLUME; cluster mode's controller does, docs/iolimits.md)",
        );
      }
      const contentSource = contentSourceOf(request.volumeContentSource);
      const requirements = request.accessibilityRequirements;
      if (requirements) {
        const { requisite, preferred } = requirements;
        const listed = requisite.length > 0 ? requisite : preferred;
        if (listed.length > 0 && !listed.some((t) => isThisNode(t, node))) {
          throw resourceExhausted(
            `this node (${node.key}=${node.nodeId}) is not in the requested topology ${describeTopologies(listed)}; ` +
              "loam creates volumes only on the node that receives the call",
          );
        }
      }
      const range = request.capacityRange
        ? { requiredBytes: request.capacityRange.requiredBytes, limitBytes: request.capacityRange.limitBytes }
        : undefined;
      const volume = await engine.createVolume(
        { name, range, parameters, ...(contentSource ? { contentSource } : {}) },
        { signal: context.signal },
      );
      return { volume: toCsi(volume) };
    },

    deleteVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      await engine.deleteVolume(id, { signal: context.signal });
      return {};
    },

    validateVolumeCapabilities: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      if (request.volumeCapabilities.length === 0) throw invalidArgument("volume_capabilities is required");
      const volume = await engine.getVolume(id, { signal: context.signal });
      if (!volume) throw notFound(`volume ${id} does not exist on this node`);
      return confirmCapabilities(request);
    },

    listVolumes: async (request, context) => {
      const volumes = await engine.listVolumes({ signal: context.signal });
      const { page: entries, nextToken } = page(volumes, request.maxEntries, request.startingToken, pages);
      return {
        // The condition ControllerGetVolume gives, from the same listing.
        entries: entries.map((v) => ({
          volume: toCsi(v),
          status: { publishedNodeIds: [], volumeCondition: v.condition },
        })),
        nextToken,
      };
    },

    controllerGetVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const volume = await engine.getVolume(id, { signal: context.signal });
      if (!volume) throw notFound(`volume ${id} does not exist on this node`);
      return {
        volume: toCsi(volume),
        status: {
          publishedNodeIds: [],
          volumeCondition: volume.condition,
        },
      };
    },

    getCapacity: async (request, context) => {
      // Capacity does not depend on how a volume is used: external-provisioner v5 sends no
      // capability, older ones a mount capability with no access mode. Only a capability
      // loam refuses outright (another node, an unknown filesystem) is an error here.
      capacityUses(request.volumeCapabilities);
      const parameters = parseParameters(request.parameters);
      if (request.accessibleTopology && !isThisNode(request.accessibleTopology, node)) {
        // Another node's segment: this node contributes nothing to it.
        return { availableCapacity: 0n };
      }
      const capacity = await engine.capacity({ signal: context.signal, parameters });
      return {
        availableCapacity: BigInt(capacity.availableBytes),
        maximumVolumeSize: BigInt(capacity.maximumVolumeBytes),
        minimumVolumeSize: BigInt(capacity.minimumVolumeBytes),
      };
    },

    createSnapshot: async (request, context) => {
      const name = checkVolumeName(request.name);
      const sourceVolumeId = required(request.sourceVolumeId, "source_volume_id");
      checkSnapshotParameters(request.parameters);
      const snapshot = await engine.createSnapshot({ name, sourceVolumeId }, { signal: context.signal });
      return { snapshot: toCsiSnapshot(snapshot) };
    },

    deleteSnapshot: async (request, context) => {
      const id = required(request.snapshotId, "snapshot_id");
      await engine.deleteSnapshot(id, { signal: context.signal });
      return {};
    },

    getSnapshot: async (request, context) => {
      const id = required(request.snapshotId, "snapshot_id");
      const snapshot = await engine.getSnapshot(id, { signal: context.signal });
      if (!snapshot) throw notFound(`snapshot ${id} does not exist on this node`);
      return { snapshot: toCsiSnapshot(snapshot) };
    },

    listSnapshots: async (request, context) => {
      let snapshots: Snapshot[];
      if (request.snapshotId) {
        // An unknown id is an empty list, not an error (CSI ListSnapshots).
        const one = await engine.getSnapshot(request.snapshotId, { signal: context.signal });
        snapshots = one ? [one] : [];
      } else {
        snapshots = await engine.listSnapshots({ signal: context.signal });
      }
      if (request.sourceVolumeId) snapshots = snapshots.filter((s) => s.sourceVolumeId === request.sourceVolumeId);
      const { page: entries, nextToken } = page(snapshots, request.maxEntries, request.startingToken, snapshotPages);
      return { entries: entries.map((s) => ({ snapshot: toCsiSnapshot(s) })), nextToken };
    },
  };
}

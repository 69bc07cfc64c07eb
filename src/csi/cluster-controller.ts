/**
 * CSI Controller of cluster mode: the same requests as a node's controller (controller.ts),
 * validated the same way, answered from the etcd registry by ClusterController (src/cluster).
 * Volumes live on any registered node; each says which in its accessible_topology.
 * ControllerExpandVolume grows the LV on the owning node; the filesystem grows in that node's
 * NodeExpandVolume.
 */
import { modifiedShaping } from "../volumes/modify.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type Controller,
  ControllerServiceCapability_RPC_Type as Rpc,
  type VolumeSchema,
} from "../gen/csi/v1/csi_pb.js";
import type { ClusterController, ClusterVolume } from "../cluster/controller.js";
import { invalidArgument, notFound } from "../volumes/errors.js";
import { checkVolumeName } from "../volumes/names.js";
import { checkSnapshotParameters, parseParameters } from "../volumes/parameters.js";
import {
  PageTokens,
  confirmCapabilities,
  contentSourceOf,
  page,
  toCsiSnapshot,
  toCsiSource,
} from "./controller-messages.js";
import type { ServiceHandlers } from "./service.js";
import { capacityUses, required, volumeUse, volumeUses } from "./validate.js";

type ControllerMethods = (typeof Controller)["method"];

const CAPABILITIES = [
  Rpc.CREATE_DELETE_VOLUME,
  Rpc.LIST_VOLUMES,
  Rpc.GET_CAPACITY,
  Rpc.GET_VOLUME,
  Rpc.CREATE_DELETE_SNAPSHOT,
  Rpc.LIST_SNAPSHOTS,
  Rpc.GET_SNAPSHOT,
  Rpc.CLONE_VOLUME,
  Rpc.EXPAND_VOLUME,
  Rpc.VOLUME_CONDITION,
  Rpc.MODIFY_VOLUME,
];

/** Topology segments as CSI sends them: keys and values checked before they reach placement. */
function segmentsOf(
  topologies: readonly { segments: Record<string, string> }[],
  field: string,
): Record<string, string>[] {
  return topologies.map((t, i) => {
    const entries = Object.entries(t.segments);
    if (entries.length === 0) throw invalidArgument(`${field}[${i}] has no segments`);
    for (const [key, value] of entries) {
      if (key.length === 0 || key.length > 316 || value.length > 63) {
        throw invalidArgument(`${field}[${i}] has a segment key or value longer than CSI allows (128+/63 characters)`);
      }
    }
    return { ...t.segments };
  });
}

/** What refuses metadata-changing calls while the registry cannot take writes (src/cluster/quorum.ts). */
export interface WriteGuard {
  guard<T>(doing: string, fn: () => Promise<T>): Promise<T>;
}

export function clusterControllerService(options: {
  controller: ClusterController;
  /** Absent: every call goes to etcd and fails there (after etcd's deadline) when it cannot be served. */
  writes?: WriteGuard;
}): ServiceHandlers<ControllerMethods> {
  const { controller } = options;
  // Checked after the request's own validation, so a malformed request is INVALID_ARGUMENT either way.
  const writing = <T>(doing: string, fn: () => Promise<T>): Promise<T> =>
    options.writes ? options.writes.guard(doing, fn) : fn();
  const pages = new PageTokens();
  const snapshotPages = new PageTokens();

  const toCsi = (volume: ClusterVolume): MessageInitShape<typeof VolumeSchema> => ({
    volumeId: volume.id,
    capacityBytes: BigInt(volume.sizeBytes),
    volumeContext: {},
    accessibleTopology: [{ segments: { ...volume.segments } }],
    ...(volume.contentSource ? { contentSource: toCsiSource(volume.contentSource) } : {}),
  });

  return {
    controllerGetCapabilities: () =>
      Promise.resolve({ capabilities: CAPABILITIES.map((type) => ({ type: { case: "rpc", value: { type } } })) }),

    createVolume: async (request, context) => {
      const name = checkVolumeName(request.name);
      volumeUses(request.volumeCapabilities);
      const parameters = parseParameters(request.parameters);
      // A claim with a VolumeAttributesClass: its IO limits are the volume's from the start.
      if (Object.keys(request.mutableParameters).length > 0) {
        parameters.shaping = modifiedShaping(parameters.shaping, request.mutableParameters);
      }
      const contentSource = contentSourceOf(request.volumeContentSource);
      const requirements = request.accessibilityRequirements;
      const volume = await writing(`create volume "${name}"`, () =>
        controller.createVolume(
          {
            name,
            range: request.capacityRange
              ? { requiredBytes: request.capacityRange.requiredBytes, limitBytes: request.capacityRange.limitBytes }
              : undefined,
            parameters,
            ...(contentSource ? { contentSource } : {}),
            requisite: segmentsOf(requirements?.requisite ?? [], "accessibility_requirements.requisite"),
            preferred: segmentsOf(requirements?.preferred ?? [], "accessibility_requirements.preferred"),
          },
          { signal: context.signal },
        ),
      );
      return { volume: toCsi(volume) };
    },

    deleteVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      await writing(`delete volume ${id}`, () => controller.deleteVolume(id, { signal: context.signal }));
      return {};
    },

    controllerExpandVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const range = required(request.capacityRange, "capacity_range");
      if (range.requiredBytes <= 0n && range.limitBytes <= 0n) {
        throw invalidArgument("capacity_range needs required_bytes or limit_bytes");
      }
      // A mount volume's filesystem grows in NodeExpandVolume; a block volume has none, but an
      // encrypted one's LUKS mapping must be resized on its node (cryptsetup resize) all the same.
      const block = request.volumeCapability
        ? volumeUse(request.volumeCapability, "volume_capability").access.kind === "block"
        : false;
      const grown = await writing(`expand volume ${id}`, () =>
        controller.expandVolume(
          id,
          {
            requiredBytes: range.requiredBytes > 0n ? range.requiredBytes : range.limitBytes,
            limitBytes: range.limitBytes,
          },
          { signal: context.signal },
        ),
      );
      return { capacityBytes: BigInt(grown.sizeBytes), nodeExpansionRequired: !block || grown.volume.encrypted };
    },

    controllerModifyVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      await writing(`modify volume ${id}`, () =>
        controller.modifyVolume(id, request.mutableParameters, { signal: context.signal }),
      );
      return {};
    },

    validateVolumeCapabilities: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      if (request.volumeCapabilities.length === 0) throw invalidArgument("volume_capabilities is required");
      const volume = await controller.getVolume(id, { signal: context.signal });
      if (!volume) throw notFound(`volume ${id} does not exist in the cluster`);
      return confirmCapabilities(request);
    },

    listVolumes: async (request, context) => {
      const volumes = await controller.listVolumes({ signal: context.signal });
      const { page: entries, nextToken } = page(volumes, request.maxEntries, request.startingToken, pages);
      return {
        entries: entries.map((v) => ({
          volume: toCsi(v),
          status: { publishedNodeIds: [], volumeCondition: v.condition },
        })),
        nextToken,
      };
    },

    controllerGetVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const volume = await controller.getVolume(id, { signal: context.signal });
      if (!volume) throw notFound(`volume ${id} does not exist in the cluster`);
      return { volume: toCsi(volume), status: { publishedNodeIds: [], volumeCondition: volume.condition } };
    },

    getCapacity: async (request) => {
      capacityUses(request.volumeCapabilities);
      const parameters = parseParameters(request.parameters);
      const topology = request.accessibleTopology ? { ...request.accessibleTopology.segments } : undefined;
      const capacity = await controller.capacity(parameters, topology);
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
      const snapshot = await writing(`create snapshot "${name}"`, () =>
        controller.createSnapshot({ name, sourceVolumeId }, { signal: context.signal }),
      );
      return { snapshot: toCsiSnapshot(snapshot) };
    },

    deleteSnapshot: async (request, context) => {
      const id = required(request.snapshotId, "snapshot_id");
      await writing(`delete snapshot ${id}`, () => controller.deleteSnapshot(id, { signal: context.signal }));
      return {};
    },

    getSnapshot: async (request, context) => {
      const id = required(request.snapshotId, "snapshot_id");
      const snapshot = await controller.getSnapshot(id, { signal: context.signal });
      if (!snapshot) throw notFound(`snapshot ${id} does not exist in the cluster`);
      return { snapshot: toCsiSnapshot(snapshot) };
    },

    listSnapshots: async (request, context) => {
      let snapshots = request.snapshotId
        ? [await controller.getSnapshot(request.snapshotId, { signal: context.signal })].flatMap((s) => (s ? [s] : []))
        : await controller.listSnapshots({ signal: context.signal });
      if (request.sourceVolumeId) snapshots = snapshots.filter((s) => s.sourceVolumeId === request.sourceVolumeId);
      const { page: entries, nextToken } = page(snapshots, request.maxEntries, request.startingToken, snapshotPages);
      return { entries: entries.map((s) => ({ snapshot: toCsiSnapshot(s) })), nextToken };
    },
  };
}

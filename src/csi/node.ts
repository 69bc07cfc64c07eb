/**
 * CSI Node, the transport: checks each request (required fields, the capability, paths
 * resolved and confined under kubelet's directory before anything touches them), takes the
 * volume's lock (the engine's, which the Controller's calls on the volume take too), and hands the work to the domain (src/volumes/staging.ts for stage,
 * unstage, expand and stats; src/volumes/publishing.ts for publish and unpublish), which
 * does it on this machine through a NodeHost. Domain errors become gRPC codes in status.ts.
 */
import {
  type Node,
  NodeServiceCapability_RPC_Type as Rpc,
  type VolumeCapability,
  VolumeUsage_Unit as Unit,
} from "../gen/csi/v1/csi_pb.js";
import type { CommandRunner } from "../exec/index.js";
import { invalidArgument } from "../volumes/errors.js";
import { type VolumeUse, printable } from "../volumes/capabilities.js";
import { type NodeEngine, type NodeHost, deviceNumber } from "../volumes/node-host.js";
import { VolumeStaging } from "../volumes/staging.js";
import { VolumePublishing, publishReadonly } from "../volumes/publishing.js";
import { UnsafePathError } from "../host/errors.js";
import { HostOperations } from "../host/operations.js";
import { resolveUnder } from "../host/paths.js";
import { isPodUid } from "../host/cgroup.js";
import type { VolumeIoLimiter } from "../volumes/io-limiting.js";
import type { ServiceHandlers } from "./service.js";
import { type NodeTopology, required, topologyOf, volumeUse } from "./validate.js";

type NodeMethods = (typeof Node)["method"];

export interface NodeOptions {
  node: NodeTopology;
  maxVolumesPerNode: number;
  engine: NodeEngine;
  /** kubelet's directory: every staging and target path must resolve to a path below it. */
  kubeletDir: string;
  /** Runs mount, mkfs, blkid and the grow tools in our own mount namespace (when `host` is not given). */
  hostRunner: CommandRunner;
  /** This machine's devices, filesystems and mounts; HostOperations over hostRunner when not given. */
  host?: NodeHost;
  /** IO limits through cgroups (docs/iolimits.md); none are applied when not given. */
  ioLimiter?: VolumeIoLimiter;
}

/** The publish context key kubelet fills with the pod's UID when the CSIDriver has podInfoOnMount: true. */
const POD_UID_KEY = "csi.storage.k8s.io/pod.uid";

const CAPABILITIES = [
  Rpc.STAGE_UNSTAGE_VOLUME,
  Rpc.EXPAND_VOLUME,
  Rpc.GET_VOLUME_STATS,
  Rpc.VOLUME_CONDITION,
  Rpc.SINGLE_NODE_MULTI_WRITER,
];

export function nodeService(options: NodeOptions): ServiceHandlers<NodeMethods> {
  const { engine, kubeletDir } = options;
  const staging = new VolumeStaging(engine, options.host ?? new HostOperations(options.hostRunner));
  const publishing = new VolumePublishing(staging);
  const limiter = options.ioLimiter;
  // The engine's lock for the volume: the Controller's calls on it (DeleteVolume above all) wait for these.
  const withVolume = <T>(id: string, fn: () => Promise<T>): Promise<T> => engine.withVolumeLock(id, fn);

  const checkedPath = async (path: string, field: string): Promise<string> => {
    try {
      return await resolveUnder(kubeletDir, path);
    } catch (error) {
      if (error instanceof UnsafePathError) {
        throw invalidArgument(
          `${field} "${printable(path, 200)}" is refused: ${error.message}; it must lie under ${kubeletDir}`,
        );
      }
      throw error;
    }
  };

  return {
    nodeGetInfo: () =>
      Promise.resolve({
        nodeId: options.node.nodeId,
        maxVolumesPerNode: BigInt(options.maxVolumesPerNode),
        accessibleTopology: topologyOf(options.node)[0],
      }),

    nodeGetCapabilities: () =>
      Promise.resolve({ capabilities: CAPABILITIES.map((type) => ({ type: { case: "rpc", value: { type } } })) }),

    nodeStageVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.stagingTargetPath, "staging_target_path");
      const capability = required(request.volumeCapability, "volume_capability");
      const use = nodeUse(capability, "volume_capability");
      const stagingPath = await checkedPath(path, "staging_target_path");
      const askedFsType = explicitFsType(capability);
      await withVolume(id, () =>
        staging.stage(
          { id, staging: stagingPath, use, askedFsType, secrets: request.secrets },
          { signal: context.signal },
        ),
      );
      return {};
    },

    nodeUnstageVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.stagingTargetPath, "staging_target_path");
      const stagingPath = await checkedPath(path, "staging_target_path");
      await withVolume(id, () => staging.unstage(id, stagingPath, { signal: context.signal }));
      return {};
    },

    nodePublishVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const stagingPath = required(request.stagingTargetPath, "staging_target_path");
      const targetPath = required(request.targetPath, "target_path");
      const capability = required(request.volumeCapability, "volume_capability");
      const use = nodeUse(capability, "volume_capability");
      const [staged, target] = await bothChecked(
        checkedPath(stagingPath, "staging_target_path"),
        checkedPath(targetPath, "target_path"),
      );
      const readonly = publishReadonly(use, request.readonly);
      const podUid = request.volumeContext[POD_UID_KEY];
      if (podUid !== undefined && !isPodUid(podUid)) {
        throw invalidArgument(`volume_context["${POD_UID_KEY}"] "${printable(podUid)}" is not a pod UID`);
      }
      await withVolume(id, async () => {
        // The limits first: a publish whose limits cannot be applied (policy fail) mounts nothing.
        if (limiter) {
          // Its IO limits and size: no pool condition, and no wait for the stage's mark removal
          // (publish waits for that once bound); the device is checked against the kernel.
          const volume = await staging.knownVolume(id, { signal: context.signal }, { current: false, need: "named" });
          const device = await deviceNumber(staging.host, await staging.stagedDevice(id, { signal: context.signal }));
          await limiter.apply(volume, device, target, podUid);
        }
        try {
          await publishing.publish({ id, staging: staged, target, use, readonly }, { signal: context.signal });
        } catch (error) {
          await limiter?.remove(target).catch(() => undefined);
          throw error;
        }
      });
      return {};
    },

    nodeUnpublishVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.targetPath, "target_path");
      const target = await checkedPath(path, "target_path");
      await withVolume(id, async () => {
        await publishing.unpublish(id, target, { signal: context.signal });
        await limiter?.remove(target);
      });
      return {};
    },

    nodeExpandVolume: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.volumePath, "volume_path");
      const use = request.volumeCapability ? nodeUse(request.volumeCapability, "volume_capability") : undefined;
      // The volume first: an unknown volume_id is NOT_FOUND whatever its path; the path is
      // still confined before anything touches it.
      await staging.knownVolume(id, { signal: context.signal });
      const volumePath = await checkedPath(path, "volume_path");
      const range = request.capacityRange;
      const sizeBytes = await withVolume(id, () =>
        staging.expand(
          id,
          volumePath,
          use,
          range && { requiredBytes: range.requiredBytes, limitBytes: range.limitBytes },
          { signal: context.signal },
          request.secrets,
        ),
      );
      // Per-GiB limits follow the new size, for every pod the volume is published to.
      if (limiter) await limiter.reconcile(engine, staging.host, id);
      return { capacityBytes: BigInt(sizeBytes) };
    },

    nodeGetVolumeStats: async (request, context) => {
      const id = required(request.volumeId, "volume_id");
      const path = required(request.volumePath, "volume_path");
      // As in expand: the volume is looked up before its path is judged.
      const volume = await staging.knownVolume(id, { signal: context.signal });
      const volumePath = await checkedPath(path, "volume_path");
      const stats = await staging.stats(volume, volumePath);
      const usage: Array<{ unit: Unit; total: bigint; used: bigint; available: bigint }> = [];
      if (stats.bytes) usage.push({ unit: Unit.BYTES, ...stats.bytes });
      if (stats.inodes) usage.push({ unit: Unit.INODES, ...stats.inodes });
      return { usage, volumeCondition: stats.condition };
    },
  };
}

/** Converts the capability; VOLUME_MOUNT_GROUP is not offered, so a group id cannot be honoured. */
function nodeUse(capability: VolumeCapability, field: string): VolumeUse {
  const use = volumeUse(capability, field);
  if (use.access.kind === "mount" && use.access.mountGroup !== "") {
    throw invalidArgument(`${field}.mount.volume_mount_group is not supported: loam does not offer VOLUME_MOUNT_GROUP`);
  }
  return use;
}

/** The fs_type the request named, or undefined when it left the choice to us. */
function explicitFsType(capability: VolumeCapability): string | undefined {
  return capability.accessType.case === "mount" && capability.accessType.value.fsType !== ""
    ? capability.accessType.value.fsType
    : undefined;
}

/** Both paths checked at once; when both are refused, the first one's error is the one reported. */
async function bothChecked(first: Promise<string>, second: Promise<string>): Promise<[string, string]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return [a.value, b.value];
}

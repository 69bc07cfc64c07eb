/**
 * CSI Controller for the node-deployment topology: each node's loam serves the controller
 * calls for the volumes on its own volume group, so every volume is accessible from this
 * node only.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import {
  type Controller,
  ControllerServiceCapability_RPC_Type as Rpc,
} from "../gen/csi/v1/csi_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { VolumeSchema } from "../gen/csi/v1/csi_pb.js";
import type { Volume, VolumeEngine } from "../volumes/engine.js";
import { aborted, invalidArgument, notFound, resourceExhausted } from "../volumes/errors.js";
import { parseParameters } from "../volumes/parameters.js";
import { checkVolumeName } from "../volumes/names.js";
import type { ServiceHandlers } from "./service.js";
import {
  type NodeTopology,
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

const CAPABILITIES = [Rpc.CREATE_DELETE_VOLUME, Rpc.LIST_VOLUMES, Rpc.GET_CAPACITY, Rpc.GET_VOLUME];

export function controllerService(options: ControllerOptions): ServiceHandlers<ControllerMethods> {
  const { engine, node } = options;
  const pages = new PageTokens();

  const toCsi = (volume: Volume): MessageInitShape<typeof VolumeSchema> => ({
    volumeId: volume.id,
    capacityBytes: BigInt(volume.sizeBytes),
    volumeContext: {},
    accessibleTopology: topologyOf(node),
  });

  return {
    controllerGetCapabilities: () =>
      Promise.resolve({ capabilities: CAPABILITIES.map((type) => ({ type: { case: "rpc", value: { type } } })) }),

    createVolume: async (request, context) => {
      const name = checkVolumeName(request.name);
      volumeUses(request.volumeCapabilities);
      const parameters = parseParameters(request.parameters);
      if (Object.keys(request.mutableParameters).length > 0) {
        throw invalidArgument("mutable_parameters are not supported by loam (it does not offer MODIFY_VOLUME)");
      }
      if (request.volumeContentSource?.type.case !== undefined) {
        throw invalidArgument(
          "volume_content_source is not supported yet: loam cannot create a volume from a snapshot or another volume",
        );
      }
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
      const volume = await engine.createVolume({ name, range, parameters }, { signal: context.signal });
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
      try {
        volumeUses(request.volumeCapabilities);
        parseParameters(request.parameters);
      } catch (error) {
        // An unsupported capability is an answer here, not an error: the caller asked whether it is supported.
        return { message: error instanceof Error ? error.message : String(error) };
      }
      return {
        confirmed: {
          volumeContext: request.volumeContext,
          volumeCapabilities: request.volumeCapabilities,
          parameters: request.parameters,
          mutableParameters: {},
        },
        message: "",
      };
    },

    listVolumes: async (request, context) => {
      if (request.maxEntries < 0) throw invalidArgument(`max_entries must not be negative (got ${request.maxEntries})`);
      const after = request.startingToken ? pages.open(request.startingToken) : undefined;
      const volumes = await engine.listVolumes({ signal: context.signal });
      const start = after === undefined ? 0 : volumes.findIndex((v) => v.id > after);
      const rest = start < 0 ? [] : volumes.slice(start);
      const page = request.maxEntries > 0 ? rest.slice(0, request.maxEntries) : rest;
      const last = page.at(-1);
      const nextToken = last && page.length < rest.length ? pages.issue(last.id) : "";
      return {
        entries: page.map((v) => ({ volume: toCsi(v) })),
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
          volumeCondition: volume.active
            ? { abnormal: false, message: "logical volume is active" }
            : { abnormal: true, message: `logical volume ${volume.volumeGroup}/${volume.id} is not active` },
        },
      };
    },

    getCapacity: async (request, context) => {
      volumeUsesIfAny(request.volumeCapabilities);
      parseParameters(request.parameters);
      if (request.accessibleTopology && !isThisNode(request.accessibleTopology, node)) {
        // Another node's segment: this node contributes nothing to it.
        return { availableCapacity: 0n };
      }
      const capacity = await engine.capacity({ signal: context.signal });
      return {
        availableCapacity: BigInt(capacity.availableBytes),
        maximumVolumeSize: BigInt(capacity.maximumVolumeBytes),
        minimumVolumeSize: BigInt(capacity.minimumVolumeBytes),
      };
    },
  };
}

function volumeUsesIfAny(capabilities: Parameters<typeof volumeUses>[0]): void {
  if (capabilities.length > 0) volumeUses(capabilities);
}

/**
 * ListVolumes tokens: the id after which the next page starts, signed with a key of this
 * process. A token we did not issue (or one from before a restart) is ABORTED, which
 * tells the caller to start the listing again.
 */
class PageTokens {
  private readonly key = randomBytes(32);

  issue(afterId: string): string {
    const body = Buffer.from(afterId).toString("base64url");
    return `${body}.${this.sign(body)}`;
  }

  open(token: string): string {
    const [body, signature, extra] = token.split(".");
    if (body && signature && extra === undefined && token.length < 1024) {
      const expected = Buffer.from(this.sign(body));
      const given = Buffer.from(signature);
      if (expected.length === given.length && timingSafeEqual(expected, given)) {
        return Buffer.from(body, "base64url").toString();
      }
    }
    throw aborted("starting_token was not issued by this driver (or it restarted since); start the listing again");
  }

  private sign(body: string): string {
    return createHmac("sha256", this.key).update(body).digest("base64url").slice(0, 22);
  }
}

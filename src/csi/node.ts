/**
 * CSI Node: this node's identity and topology. Stage, publish and expansion come with the
 * node lifecycle work; until then those RPCs answer UNIMPLEMENTED.
 */
import type { Node } from "../gen/csi/v1/csi_pb.js";
import type { ServiceHandlers } from "./service.js";
import { type NodeTopology, topologyOf } from "./validate.js";

type NodeMethods = (typeof Node)["method"];

export interface NodeOptions {
  node: NodeTopology;
  maxVolumesPerNode: number;
}

export function nodeService(options: NodeOptions): ServiceHandlers<NodeMethods> {
  return {
    nodeGetInfo: () =>
      Promise.resolve({
        nodeId: options.node.nodeId,
        maxVolumesPerNode: BigInt(options.maxVolumesPerNode),
        accessibleTopology: topologyOf(options.node)[0],
      }),

    nodeGetCapabilities: () => Promise.resolve({ capabilities: [] }),
  };
}

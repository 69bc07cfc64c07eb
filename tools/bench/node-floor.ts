/**
 * The Node.js floor of the native section (issue 20): the smallest CSI server loam's own stack
 * makes (Node, @grpc/grpc-js, the protobuf-es CSI messages), answering the capability RPCs
 * with loam's replies and nothing else: the same method definitions as loam's (unaryDefinition),
 * none of its service wrapper, logging, metrics or engine. Run
 * with loam's V8 flags, it shows what of loam's figures any CSI driver on this stack pays,
 * where csi-floor (test/go/csi-floor) shows what grpc-go pays.
 *
 * Usage: node [flags] dist/tools/bench/node-floor.js unix:///path/csi.sock
 * Serves until SIGTERM or SIGINT.
 */
import { type DescMessage, type MessageInitShape, create } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  Identity,
  Node,
  NodeServiceCapability_RPC_Type as NodeRpc,
  PluginCapability_Service_Type as ServiceType,
  PluginCapability_VolumeExpansion_Type as ExpansionType,
} from "../../src/gen/csi/v1/csi_pb.js";
import { unaryDefinition } from "../../src/csi/service.js";

type Replies<M extends GenServiceMethods> = { [K in keyof M]?: MessageInitShape<M[K]["output"]> };

/** Registers a service whose listed methods answer their constant reply. */
function serveConstant<M extends GenServiceMethods>(server: Server, service: GenService<M>, replies: Replies<M>): void {
  const definition: Record<string, ServiceDefinition[string]> = {};
  const implementation: UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const reply = (replies as Record<string, MessageInitShape<DescMessage> | undefined>)[method.localName];
    if (!reply) continue;
    definition[method.name] = unaryDefinition(service, method);
    implementation[method.name] = (_call: unknown, callback: (error: null, reply: unknown) => void) =>
      callback(null, create(method.output, reply));
  }
  server.addService(definition as ServiceDefinition, implementation);
}

const endpoint = process.argv[2] ?? "";
if (!endpoint.startsWith("unix:///")) {
  process.stderr.write(`node-floor: ${JSON.stringify(endpoint)} is not unix:///absolute/path\n`);
  process.exit(2);
}
const server = new Server();
serveConstant(server, Identity, {
  getPluginInfo: { name: "floor.csi.dev", vendorVersion: "0.0.0" },
  getPluginCapabilities: {
    capabilities: [
      { type: { case: "service", value: { type: ServiceType.VOLUME_ACCESSIBILITY_CONSTRAINTS } } },
      { type: { case: "volumeExpansion", value: { type: ExpansionType.ONLINE } } },
    ],
  },
  probe: { ready: true },
});
serveConstant(server, Node, {
  nodeGetCapabilities: {
    capabilities: [
      NodeRpc.STAGE_UNSTAGE_VOLUME,
      NodeRpc.EXPAND_VOLUME,
      NodeRpc.GET_VOLUME_STATS,
      NodeRpc.VOLUME_CONDITION,
      NodeRpc.SINGLE_NODE_MULTI_WRITER,
    ].map((type) => ({ type: { case: "rpc" as const, value: { type } } })),
  },
  nodeGetInfo: { nodeId: "floor-node" },
});
server.bindAsync(endpoint, ServerCredentials.createInsecure(), (error) => {
  if (error) {
    process.stderr.write(`node-floor: ${error.message}\n`);
    process.exit(1);
  }
});
for (const signal of ["SIGTERM", "SIGINT"] as const)
  process.once(signal, () => server.tryShutdown(() => process.exit(0)));

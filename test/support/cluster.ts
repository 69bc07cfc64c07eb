/**
 * A cluster for host tests: real etcd (test/support/etcd.ts), one ClusterController, and node
 * agents over InMemoryEngineStandIn engines, each test under a registry root of its own so
 * tests can share one etcd.
 */
import { Etcd3 } from "etcd3";
import { NodeAgent } from "../../src/cluster/agent.js";
import { ClusterController, type ClusterControllerOptions } from "../../src/cluster/controller.js";
import { Keys } from "../../src/cluster/keys.js";
import { Registry } from "../../src/cluster/registry.js";
import { GiB } from "../../src/volumes/size.js";
import { InMemoryEngineStandIn, type StandInClass } from "./engine-stand-in.js";

export const TOPOLOGY_KEY = "topology.loam.csi.dev/node";

export interface TestNode {
  id: string;
  engine: InMemoryEngineStandIn;
  agent: NodeAgent;
}

let roots = 0;

export class TestCluster {
  readonly nodes: TestNode[] = [];
  readonly controller: ClusterController;

  private constructor(
    readonly client: Etcd3,
    readonly registry: Registry,
    controllerOptions: Partial<ClusterControllerOptions>,
  ) {
    this.controller = new ClusterController({ registry, nodeTimeoutMs: 10_000, ...controllerOptions });
  }

  static create(endpoints: string[], controllerOptions: Partial<ClusterControllerOptions> = {}): TestCluster {
    const client = new Etcd3({ hosts: endpoints });
    const registry = new Registry(client, new Keys(`/loam-test/${process.pid}-${++roots}`));
    return new TestCluster(client, registry, controllerOptions);
  }

  /** Starts an agent on a new stand-in node. */
  async addNode(
    id: string,
    classes: StandInClass[] = [{ name: "default", type: "thick", default: true, totalBytes: 10 * GiB }],
    options: {
      delayMs?: number;
      segments?: Record<string, string>;
      engine?: InMemoryEngineStandIn;
      leaseSeconds?: number;
    } = {},
  ): Promise<TestNode> {
    const engine = options.engine ?? new InMemoryEngineStandIn(classes, options.delayMs ?? 0);
    const agent = new NodeAgent({
      registry: this.registry,
      nodeId: id,
      segments: options.segments ?? { [TOPOLOGY_KEY]: id },
      engine,
      version: "test",
      leaseSeconds: options.leaseSeconds ?? 5,
    });
    await agent.start();
    const node = { id, engine, agent };
    this.nodes.push(node);
    return node;
  }

  node(id: string): TestNode {
    const found = this.nodes.find((n) => n.id === id);
    if (!found) throw new Error(`no test node ${id}`);
    return found;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.agent.stop()));
    await this.client
      .delete()
      .prefix(this.registry.keys.root + "/")
      .exec()
      .catch(() => undefined);
    this.client.close();
  }
}

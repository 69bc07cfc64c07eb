/**
 * A controller replica's background work in a process of its own, for a test that kills it
 * while it holds the election: `node election-holder.js <endpoints> <root> <identity>`. Prints
 * "leader" once elected.
 */
import { Etcd3 } from "etcd3";
import { BackgroundWork } from "../../src/cluster/background.js";
import { Keys } from "../../src/cluster/keys.js";
import { Registry } from "../../src/cluster/registry.js";

const [endpoints = "", root = "", identity = "holder"] = process.argv.slice(2);
const work = new BackgroundWork({
  registry: new Registry(new Etcd3({ hosts: endpoints.split(",") }), new Keys(root)),
  identity,
  leaseSeconds: 2,
  onLeadership: (leader) => {
    if (leader) process.stdout.write("leader\n");
  },
});
work.start();

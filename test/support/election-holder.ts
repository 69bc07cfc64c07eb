/**
 * A controller replica's background work in a process of its own, for tests that kill it
 * while it holds the election or stop it after etcd came and went:
 * `node election-holder.js <endpoints> <root> <identity>`. Prints "leader" once elected and
 * "lost" when leadership ends; on SIGTERM it stops as `loam controller` does (the background
 * work, then the etcd client) and must then exit by itself: nothing else keeps it alive.
 */
import { connectRegistry } from "../../src/cli/registry.js";
import { BackgroundWork } from "../../src/cluster/background.js";
import { Keys } from "../../src/cluster/keys.js";
import { createLogger } from "../../src/log.js";

const [endpoints = "", root = "", identity = "holder"] = process.argv.slice(2);
// The etcd client exactly as `loam controller` makes it (call deadlines included).
const registry = connectRegistry({ endpoints: endpoints.split(",") }, new Keys(root));
const work = new BackgroundWork({
  registry,
  identity,
  leaseSeconds: 2,
  // On stderr, which the tests pass through: what the election did, when a test fails.
  logger: createLogger("info", (line) => process.stderr.write(`${line}\n`)),
  onLeadership: (leader) => process.stdout.write(leader ? "leader\n" : "lost\n"),
});
work.start();
// What the gRPC server is to `loam controller`: a handle that keeps the process up until SIGTERM
// (the background work's own timers are unref'd).
const serving = setInterval(() => undefined, 60_000);
process.once("SIGTERM", () => {
  clearInterval(serving);
  void work.stop().then(() => {
    registry.client.close();
    process.stdout.write("stopped\n");
  });
});

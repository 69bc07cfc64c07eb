/**
 * Every way loam node is deployed runs it with the V8 flags measured for a node plugin
 * (src/deploy/node-runtime.ts, issue 20): the generated DaemonSet of both topologies, the
 * systemd unit and the Nomad node job, which are written by hand.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { LOAM_NODE_V8_FLAGS } from "../../src/deploy/node-runtime.js";
import { renderTopology } from "../../src/deploy/manifests.js";
import { parseValues } from "../../src/deploy/values.js";
import { VALUES_FILE } from "../../src/deploy/generate.js";

const ROOT = process.cwd();
const NODE_OPTIONS = LOAM_NODE_V8_FLAGS.join(" ");

test("the node flags keep V8's young generation at 1 MiB semi-spaces", () => {
  assert.ok(LOAM_NODE_V8_FLAGS.includes("--max-semi-space-size=1"));
});

test("the DaemonSet's loam container gets NODE_OPTIONS with the node flags, in both topologies", async () => {
  const values = parseValues(JSON.parse(await readFile(join(ROOT, VALUES_FILE), "utf8")) as unknown);
  for (const topology of ["distributed", "cluster"] as const) {
    const objects = renderTopology(values, topology).flatMap((m) => m.objects);
    const daemonSet = objects.find((o): o is DaemonSet => o instanceof DaemonSet);
    const loam = daemonSet?.spec?.template.spec?.containers.find((c) => c.name === "loam");
    assert.ok(loam, `${topology}: no loam container in the DaemonSet`);
    const env = (loam.env ?? []).find((e) => e.name === "NODE_OPTIONS");
    assert.equal(env?.value, NODE_OPTIONS, `${topology}: NODE_OPTIONS of the loam container`);
  }
});

test("the systemd unit and the Nomad node job set the same NODE_OPTIONS", async () => {
  const unit = await readFile(join(ROOT, "deploy", "systemd", "loam-node.service"), "utf8");
  assert.match(unit, new RegExp(`^Environment=NODE_OPTIONS=${NODE_OPTIONS}$`, "m"));
  const job = await readFile(join(ROOT, "deploy", "nomad", "loam-node.nomad.hcl"), "utf8");
  assert.match(job, new RegExp(`^\\s*NODE_OPTIONS = "${NODE_OPTIONS}"$`, "m"));
});

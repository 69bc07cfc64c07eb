/**
 * The etcd3 client works inside loam's esbuild bundles. etcd3 reads its .proto files from
 * `${__dirname}/../proto` when imported, which a bundle does not have; scripts/bundle-options.mjs
 * inlines them at bundle time. A probe bundled with those same options, written to a folder
 * with no node_modules and no .proto files, talks to a real etcd (test/support/etcd.ts): KV,
 * Lease and Watch. Bundled without the plugin, the same probe cannot even load.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type BuildOptions, build } from "esbuild";
import { EtcdCluster } from "../support/etcd.js";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../../../", import.meta.url));

/** What the probe does with the client, through the three services loam needs. */
const PROBE = `
import { Etcd3 } from "etcd3";
const client = new Etcd3({ hosts: process.argv[2] });
try {
  await client.put("loam/probe").value("bundled");
  const value = await client.get("loam/probe").string();
  const lease = client.lease(30);
  await lease.put("loam/leased").value("yes");
  const leased = await client.get("loam/leased").string();
  await lease.revoke();
  const afterRevoke = await client.get("loam/leased").string();
  const watcher = await client.watch().key("loam/watched").create();
  const seen = new Promise((resolve) => watcher.on("put", (kv) => resolve(kv.value.toString())));
  await client.put("loam/watched").value("event");
  const watched = await seen;
  await watcher.cancel();
  console.log(JSON.stringify({ value, leased, afterRevoke, watched }));
} finally {
  client.close();
}
`;

let etcd: EtcdCluster;
let out: string;

before(async () => {
  etcd = await EtcdCluster.start(1);
  out = await mkdtemp(join(tmpdir(), "loam-bundle-etcd3-"));
});
after(async () => {
  await etcd?.stop();
  if (out) await rm(out, { recursive: true, force: true });
});

async function bundleProbe(name: string, withPlugin: boolean): Promise<string> {
  const url = new URL("../../../scripts/bundle-options.mjs", import.meta.url).href;
  const { bundleOptions } = (await import(url)) as { bundleOptions: BuildOptions };
  const outfile = join(out, `${name}.mjs`);
  await build({
    ...bundleOptions,
    plugins: withPlugin ? bundleOptions.plugins : [],
    stdin: { contents: PROBE, resolveDir: repo, sourcefile: "etcd3-probe.mjs", loader: "js" },
    outfile,
  });
  return outfile;
}

test("a bundle built with scripts/bundle.mjs's options uses etcd3 against a real etcd (KV, Lease, Watch)", async () => {
  const probe = await bundleProbe("with-plugin", true);
  const { stdout } = await run(process.execPath, [probe, etcd.endpoints[0]], { cwd: out, timeout: 30_000 });
  assert.deepEqual(JSON.parse(stdout), { value: "bundled", leased: "yes", afterRevoke: null, watched: "event" });
});

test("without the protos plugin the same bundle fails as etcd3 is imported", async () => {
  const probe = await bundleProbe("without-plugin", false);
  await assert.rejects(
    run(process.execPath, [probe, etcd.endpoints[0]], { cwd: out, timeout: 30_000 }),
    (error: Error & { stderr?: string }) => /__dirname|rpc\.proto/.test(error.stderr ?? ""),
  );
});

test("no bundle of scripts/bundle.mjs reads etcd3's .proto files at run time", async () => {
  for (const bundle of ["loam.mjs", "test/vm/suite.mjs", "demo.mjs", "bench.mjs"]) {
    const text = await readFile(join(repo, "dist", bundle), "utf8");
    assert.ok(!text.includes("/../proto/rpc.proto"), `dist/${bundle} still loads etcd3's rpc.proto from a file`);
  }
});

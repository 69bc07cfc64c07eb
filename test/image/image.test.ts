/**
 * The OCI image `npm run image` built (issue 19), run for real with runc, rootful: its
 * entrypoint prints the commit it was built from; `loam doctor` inside it, with the host's /dev,
 * /sys and /run mounted as the DaemonSet mounts them, finds what it finds outside (this host has
 * no device-mapper); the tools loam and `loam disks` run are there; the oci-archive is one skopeo
 * reads; the SBOM lists what the image holds.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { imageInfo, type ImageInfo, RuncBundle } from "./runc.js";

const run = promisify(execFile);
const repo = new URL("../../../", import.meta.url).pathname;

let info: ImageInfo;
let bundle: RuncBundle;

before(async () => {
  info = await imageInfo();
  bundle = await RuncBundle.unpack(info);
});
after(async () => {
  await bundle?.remove();
});

test("loam --version in the image prints the commit the image was built from", async () => {
  const head = (await run("git", ["rev-parse", "HEAD"], { cwd: repo })).stdout.trim();
  assert.match(info.commit, new RegExp(`^${head}(-dirty)?$`), "image.json names this checkout's commit");
  const { code, stdout } = await bundle.run(["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout, `loam 0.1.0 (commit ${info.commit})\n`);
});

interface Finding {
  check: string;
  status: string;
  detail: string;
}

test("loam doctor in the image, with the host's /dev, /sys and /run, finds the missing device-mapper as outside", async () => {
  const outside = await run(process.execPath, [`${repo}dist/loam.mjs`, "doctor", "--json"]).catch(
    (e: { stdout: string }) => e,
  );
  const inside = await bundle.run(["doctor", "--json"], { hostMounts: true });
  const findings = (text: string): Finding[] => (JSON.parse(text) as { findings: Finding[] }).findings;
  const kernel = (list: Finding[]): Finding[] =>
    list.filter((f) => f.check === "device-mapper" || f.check.startsWith("dm target"));
  const out = kernel(findings(outside.stdout));
  const ins = kernel(findings(inside.stdout));
  assert.ok(out.length >= 2, "outside, doctor reports device-mapper and its targets");
  assert.deepEqual(ins, out, "the kernel findings inside the container are the ones outside");
  const dm = ins.find((f) => f.check === "device-mapper");
  assert.equal(dm?.status, "fail", "this host has no device-mapper, and doctor in the image says so");
  assert.equal(inside.code, 1, "doctor exits 1 on a failed check, in the image as outside");
  // Every tool doctor looks for is in the image.
  const tools = "lvm2 thin-provisioning-tools mkfs.xfs xfs_growfs mkfs.ext4 resize2fs blkid wipefs cryptsetup".split(
    " ",
  );
  for (const tool of tools) {
    const finding = findings(inside.stdout).find((f) => f.check === tool);
    assert.equal(finding?.status, "ok", `${tool} in the image: ${JSON.stringify(finding)}`);
  }
});

test("the image carries util-linux (lsblk, blkid, nsenter), kmod, cryptsetup, thin-provisioning-tools and lvm2", async () => {
  const script = `
    const { execFileSync } = require("node:child_process");
    for (const argv of [["lsblk", "--version"], ["blkid", "--version"], ["nsenter", "--version"], ["kmod", "--version"],
                        ["cryptsetup", "--version"], ["thin_check", "--version"], ["lvm", "version"]]) {
      process.stdout.write(argv[0] + ": " + execFileSync(argv[0], argv.slice(1), { encoding: "utf8" }).split("\\n")[0] + "\\n");
    }`;
  const { code, stdout, stderr } = await bundle.run(["/usr/local/bin/node", "-e", script]);
  assert.equal(code, 0, stderr);
  for (const tool of ["lsblk", "blkid", "nsenter", "kmod", "cryptsetup", "thin_check", "lvm"]) {
    assert.match(stdout, new RegExp(`^${tool}: +\\S`, "m"));
  }
});

test("every program and library left in the image finds the libraries it links (the purge list removed none in use)", async () => {
  const script = `
    const { spawnSync } = require("node:child_process");
    const { readdirSync, readSync, openSync, closeSync, lstatSync } = require("node:fs");
    const isElf = (path) => { const fd = openSync(path, "r"); const b = Buffer.alloc(4); readSync(fd, b, 0, 4, 0); closeSync(fd); return b.toString("latin1") === "\\x7fELF"; };
    let checked = 0; const missing = [];
    for (const dir of ["/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/local/bin"]) {
      for (const name of readdirSync(dir)) {
        const path = dir + "/" + name; const st = lstatSync(path);
        if (!st.isFile() || st.size < 4 || !isElf(path)) continue;
        checked++;
        const r = spawnSync("/lib64/ld-linux-x86-64.so.2", ["--list", path], { encoding: "utf8" });
        if (r.status !== 0 && !/not a dynamic executable|statically linked/.test(r.stdout + r.stderr)) missing.push(path + ": " + r.stderr.trim());
        for (const line of r.stdout.split("\\n")) if (line.includes("not found")) missing.push(path + ": " + line.trim());
      }
    }
    process.stdout.write(JSON.stringify({ checked, missing }));`;
  const { code, stdout, stderr } = await bundle.run(["/usr/local/bin/node", "-e", script]);
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout) as { checked: number; missing: string[] };
  assert.ok(result.checked > 100, `checked ${result.checked} ELF files`);
  assert.deepEqual(result.missing, []);
});

test("the oci-archive is one skopeo reads, with the labels, entrypoint and digest image.json names", async () => {
  const { stdout } = await run("skopeo", ["inspect", "--raw", `oci-archive:${info.archive}`], { cwd: repo });
  const manifest = JSON.parse(stdout) as { config: { digest: string }; layers: { digest: string }[] };
  assert.equal(manifest.config.digest, info.config);
  assert.deepEqual(
    manifest.layers.map((l) => l.digest),
    info.layers.map((l) => l.digest),
  );
  const config = JSON.parse(
    (await run("skopeo", ["inspect", "--config", `oci-archive:${info.archive}`], { cwd: repo })).stdout,
  ) as { config: { Entrypoint: string[]; Labels: Record<string, string> } };
  assert.deepEqual(config.config.Entrypoint, ["/usr/local/bin/loam"]);
  const labels = config.config.Labels;
  assert.equal(labels["org.opencontainers.image.version"], "0.1.0");
  assert.equal(labels["org.opencontainers.image.revision"], info.commit);
  assert.equal(labels["org.opencontainers.image.licenses"], "Apache-2.0");
  assert.ok(labels["org.opencontainers.image.source"]);
  // docker load reads manifest.json; every path it names is in the archive.
  const entries = (await run("tar", ["-tf", info.archive], { cwd: repo, maxBuffer: 1 << 20 })).stdout.split("\n");
  const docker = JSON.parse((await run("tar", ["-xOf", info.archive, "./manifest.json"], { cwd: repo })).stdout) as {
    Config: string;
    RepoTags: string[];
    Layers: string[];
  }[];
  assert.deepEqual(docker[0]?.RepoTags, [info.tag]);
  for (const path of [docker[0].Config, ...docker[0].Layers]) assert.ok(entries.includes(`./${path}`), path);
  process.stdout.write(
    `image: ${(info.uncompressedBytes / 1e6).toFixed(1)} MB uncompressed, ${(info.compressedBytes / 1e6).toFixed(1)} MB compressed\n`,
  );
  assert.ok(
    info.uncompressedBytes < 175e6,
    `the image grew to ${info.uncompressedBytes} bytes (docs/install.md says 164 MB)`,
  );
});

test("the SBOM (SPDX 2.3 JSON) lists the image's Debian packages, Node.js and every bundled npm package", async () => {
  const sbom = JSON.parse(await readFile(`${repo}${info.sbom}`, "utf8")) as {
    spdxVersion: string;
    packages: { name: string; versionInfo: string; SPDXID: string }[];
    relationships: { relatedSpdxElement: string }[];
  };
  assert.equal(sbom.spdxVersion, "SPDX-2.3");
  const version = (name: string): string | undefined => sbom.packages.find((p) => p.name === name)?.versionInfo;
  // The Debian packages are the ones in the image's dpkg database.
  const dpkg = await bundle.run(["/usr/bin/dpkg-query", "-W", "-f", "${Package} ${Version}\\n"]);
  assert.equal(dpkg.code, 0, dpkg.stderr);
  const installed = dpkg.stdout.trim().split("\n");
  assert.ok(installed.length > 50);
  for (const line of installed) {
    const [name, v] = line.split(" ");
    assert.equal(version(name), v, `${name} in the SBOM`);
  }
  for (const gone of ["python3", "perl", "libicu72", "perl-base", "bash", "debconf", "tar"])
    assert.equal(version(gone), undefined, `${gone} was removed`);
  assert.equal(version("node"), info.node.replace(/^v/, ""));
  const lock = JSON.parse(await readFile(`${repo}package-lock.json`, "utf8")) as {
    packages: Record<string, { version: string }>;
  };
  for (const dep of ["@grpc/grpc-js", "etcd3", "pino", "prom-client", "zod", "cockatiel", "@bufbuild/protobuf"]) {
    assert.equal(version(dep), lock.packages[`node_modules/${dep}`]?.version, `${dep} in the SBOM`);
  }
  const related = new Set(sbom.relationships.map((r) => r.relatedSpdxElement));
  for (const p of sbom.packages) assert.ok(related.has(p.SPDXID), `${p.SPDXID} is related to the image`);
});

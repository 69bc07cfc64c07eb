// The last step of scripts/image, after umoci wrote the OCI layout: names the image in
// index.json for `ctr import` and `docker load` (io.containerd.image.name), adds a docker-archive
// manifest.json beside it (older `docker load` reads only that), packs the layout into the
// oci-archive tar (sorted, fixed owners and mtimes), and writes the SBOM and image.json.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bundledNpmPackages, dpkgPackages, spdxDocument } from "./sbom.mjs";

const { values: a } = parseArgs({
  options: Object.fromEntries(
    ["out", "layout", "repository", "version", "commit", "created", "epoch", "base", "node"].map((k) => [
      k,
      { type: "string" },
    ]),
  ),
});
const json = (file) => JSON.parse(readFileSync(file, "utf8"));
const blob = (digest) => join(a.layout, "blobs", ...digest.split(":"));
const write = (file, value) => writeFileSync(file, JSON.stringify(value, null, 2) + "\n");

const tag = `${a.repository}:${a.version}`;
const index = json(join(a.layout, "index.json"));
if (index.manifests.length !== 1)
  throw new Error(`expected one manifest in ${a.layout}/index.json, found ${index.manifests.length}`);
const descriptor = index.manifests[0];
descriptor.annotations = { ...descriptor.annotations, "io.containerd.image.name": tag };
write(join(a.layout, "index.json"), index);

const manifest = json(blob(descriptor.digest));
const config = json(blob(manifest.config.digest));
const path = (digest) => `blobs/${digest.replace(":", "/")}`;
write(join(a.layout, "manifest.json"), [
  { Config: path(manifest.config.digest), RepoTags: [tag], Layers: manifest.layers.map((l) => path(l.digest)) },
]);

const archive = join(a.out, `loam-${a.version}.oci.tar`);
execFileSync("tar", [
  "--sort=name",
  "--format=pax",
  "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
  `--mtime=@${a.epoch}`,
  "--owner=0",
  "--group=0",
  "--numeric-owner",
  "-C",
  a.layout,
  "-cf",
  archive,
  ".",
]);

const diffIds = config.rootfs.diff_ids;
const layers = manifest.layers.map((l, i) => ({
  digest: l.digest,
  diffId: diffIds[i],
  compressedBytes: l.size,
  uncompressedBytes: uncompressedSize(blob(l.digest)),
}));
const image = {
  reference: `${tag}@${descriptor.digest}`,
  tag,
  digest: descriptor.digest,
  config: manifest.config.digest,
  commit: a.commit,
  created: a.created,
  node: execFileSync(a.node, ["--version"], { encoding: "utf8" }).trim(),
  layers,
  uncompressedBytes: layers.reduce((sum, l) => sum + l.uncompressedBytes, 0),
  compressedBytes: layers.reduce((sum, l) => sum + l.compressedBytes, 0),
  archive,
  sbom: join(a.out, `loam-${a.version}.spdx.json`),
};

const status = execFileSync("tar", ["-xOf", a.base, "./var/lib/dpkg/status"], {
  encoding: "utf8",
  maxBuffer: 64 << 20,
});
const sbom = spdxDocument({
  version: a.version,
  commit: a.commit,
  created: a.created,
  digest: descriptor.digest,
  reference: image.reference,
  debian: dpkgPackages(status),
  node: { version: image.node, path: a.node },
  npm: [
    { name: "loam", version: a.version, license: "Apache-2.0" },
    ...bundledNpmPackages(json("dist/loam.meta.json"), "."),
  ],
});
write(image.sbom, sbom);
write(join(a.out, "image.json"), image);

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
process.stdout.write(
  `image: ${image.reference}\n` +
    `image: ${mb(image.uncompressedBytes)} uncompressed (${layers.map((l) => mb(l.uncompressedBytes)).join(" + ")}), ` +
    `${mb(image.compressedBytes)} compressed; ${archive}, SBOM ${image.sbom} (${sbom.packages.length - 1} packages)\n`,
);

/** Bytes of a gzip layer once decompressed (the layer tar, what the image takes on disk). */
function uncompressedSize(file) {
  return execFileSync("gzip", ["-dc", file], { maxBuffer: 1 << 30 }).length;
}

// The image's SBOM as SPDX 2.3 JSON (scripts/image): every Debian package in the dpkg database
// of layer 1, the Node.js runtime of layer 2, and loam with every npm package its bundle holds
// (from esbuild's metafile, dist/loam.meta.json), each with its version and licence where the
// package declares one. Deterministic: the same inputs give the same bytes.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Packages of a dpkg status file that are installed: name, version, architecture, source. */
export function dpkgPackages(status) {
  const packages = [];
  for (const stanza of status.split(/\n\n+/)) {
    const field = (name) => stanza.match(new RegExp(`^${name}: (.*)$`, "m"))?.[1];
    if (!/install ok installed/.test(field("Status") ?? "")) continue;
    packages.push({
      name: field("Package"),
      version: field("Version"),
      arch: field("Architecture"),
      source: (field("Source") ?? field("Package")).split(" ")[0],
    });
  }
  return packages.sort((a, b) => a.name.localeCompare(b.name));
}

/** npm packages whose files are in the bundle: the innermost node_modules/<name> of each input. */
export function bundledNpmPackages(metafile, root) {
  const dirs = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const matches = [...input.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)];
    if (matches.length === 0) continue;
    const last = matches[matches.length - 1];
    dirs.add(input.slice(0, last.index + last[0].length));
  }
  return [...dirs]
    .map((dir) => {
      const manifest = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
      return { name: manifest.name, version: manifest.version, license: manifest.license };
    })
    .sort((a, b) => `${a.name}@${a.version}`.localeCompare(`${b.name}@${b.version}`));
}

const spdxId = (s) => `SPDXRef-${s.replace(/[^A-Za-z0-9.-]/g, "-")}`;
const licence = (l) =>
  typeof l === "string" && /^[A-Za-z0-9.+-]+( (OR|AND) [A-Za-z0-9.+-]+)*$/.test(l) ? l : "NOASSERTION";

/** One SPDX package, with a purl; filesAnalyzed false, concluded licence and copyright not asserted. */
function spdxPackage({ id, name, version, license = "NOASSERTION", supplier, comment, purl }) {
  return {
    SPDXID: id,
    name,
    versionInfo: version,
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    licenseConcluded: "NOASSERTION",
    licenseDeclared: license,
    copyrightText: "NOASSERTION",
    ...(supplier ? { supplier } : {}),
    comment,
    externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: purl }],
  };
}

export function spdxDocument({ version, commit, created, digest, reference, debian, node, npm }) {
  const image = {
    ...spdxPackage({
      id: "SPDXRef-Image",
      name: "loam",
      version,
      license: "Apache-2.0",
      supplier: "Organization: loam",
      comment: `${reference}; built from commit ${commit}`,
      purl: `pkg:oci/loam@${encodeURIComponent(digest)}`,
    }),
    licenseConcluded: "Apache-2.0",
    primaryPackagePurpose: "CONTAINER",
    checksums: [{ algorithm: "SHA256", checksumValue: digest.replace(/^sha256:/, "") }],
  };
  const packages = [image];
  const relationships = [
    { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: "SPDXRef-Image" },
  ];
  const add = (pkg) => {
    packages.push(pkg);
    relationships.push({
      spdxElementId: "SPDXRef-Image",
      relationshipType: "CONTAINS",
      relatedSpdxElement: pkg.SPDXID,
    });
  };
  for (const p of debian) {
    const upstream = p.source !== p.name ? `&upstream=${p.source}` : "";
    add(
      spdxPackage({
        id: spdxId(`deb-${p.name}-${p.arch}`),
        name: p.name,
        version: p.version,
        supplier: "Organization: Debian",
        comment: `licence in /usr/share/doc/${p.name}/copyright`,
        purl: `pkg:deb/debian/${p.name}@${encodeURIComponent(p.version)}?arch=${p.arch}&distro=debian-12${upstream}`,
      }),
    );
  }
  const nodeVersion = node.version.replace(/^v/, "");
  add(
    spdxPackage({
      id: "SPDXRef-nodejs",
      name: "node",
      version: nodeVersion,
      license: "MIT",
      comment: `/usr/local/bin/node: ${node.path} of the build machine, stripped`,
      purl: `pkg:generic/node@${nodeVersion}`,
    }),
  );
  for (const p of npm) {
    add(
      spdxPackage({
        id: spdxId(`npm-${p.name}-${p.version}`),
        name: p.name,
        version: p.version,
        license: licence(p.license),
        comment: "bundled into /usr/local/lib/loam/loam.mjs",
        purl: `pkg:npm/${p.name.replace(/^@/, "%40")}@${p.version}`,
      }),
    );
  }
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: `loam-${version}`,
    documentNamespace: `https://loam.csi.dev/spdx/loam-${version}-${digest.replace(/^sha256:/, "")}`,
    creationInfo: { created, creators: ["Tool: loam-scripts-image"] },
    packages,
    relationships,
  };
}

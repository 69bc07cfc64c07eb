/**
 * VG metadata per loam volume, measured natively on real LVM (issue 20 item 3), no VM and no
 * device-mapper: a fresh VG on a loop device, `count` volumes added in one metadata commit the
 * way populate.ts does (vg-metadata.ts, vgcfgrestore), and the drop of `vg_mda_free` divided by
 * `count`: the bytes each volume takes in the PV metadata area. For each shape, three rows: the
 * first tag format (what loam wrote before issue 20), the compact one (what it writes now),
 * and no tags at all (LVM's own share: the LV's section, its name, id and segment).
 *
 *   node dist/tools/bench/metadata-bytes.js [count]     (as root; default 1000)
 *
 * Prints a table and the JSON of the rows; a benchmark, it never judges the figures.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeTag } from "../../src/lvm/tags.js";
import { lvNameFor } from "../../src/lvm/names.js";
import { claimFor, tagsFor } from "../../src/volumes/metadata.js";
import { fingerprint, parseParameters, type VolumeParameters } from "../../src/volumes/parameters.js";
import { createParameters } from "./requests.js";
import { addLogicalVolumes, pvKeys } from "./vg-metadata.js";

type Format = "first (v1)" | "compact (v2)" | "no tags";

interface Shape {
  shape: string;
  name: (i: number) => string;
  parameters: (name: string, i: number) => Record<string, string>;
}

export interface MetadataBytesRow {
  shape: string;
  format: Format;
  volumes: number;
  /** Drop of vg_mda_free per volume. */
  metadataAreaBytesPerVolume: number;
  /** The tags' share of the VG text (`tags = [...]` as LVM writes it), from the first volume. */
  tagBytes: number;
}

/** What loam wrote before issue 20: one tag per key (kept here to measure it; metadata.ts still reads it). */
export function firstFormatTags(name: string, parameters: VolumeParameters, deviceClass: string): string[] {
  const tags = [encodeTag("name", name), encodeTag("params", fingerprint(parameters))];
  for (const [key, value] of Object.entries(claimFor(parameters))) tags.push(encodeTag(key, value));
  tags.push(encodeTag("class", deviceClass));
  return tags;
}

const SHAPES: Shape[] = [
  {
    shape: "Kubernetes volume (pvc-<uuid>, PVC, namespace, PV named after the volume)",
    name: (i) => `pvc-2b6f2c1e-8f7a-4c4e-9d3a-${i.toString(16).padStart(12, "0")}`,
    parameters: (name, i) => ({
      "loam.csi.dev/deviceClass": "thick",
      "csi.storage.k8s.io/pvc/name": `data-postgres-${i}`,
      "csi.storage.k8s.io/pvc/namespace": "databases",
      "csi.storage.k8s.io/pv/name": name,
    }),
  },
  {
    shape: "the scale bench's volumes (tools/bench/populate.ts)",
    name: (i) => `bench-existing-${String(i).padStart(5, "0")}`,
    parameters: (name) => createParameters("thick", name),
  },
];

const env = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: "1", LC_ALL: "C" };
const run = (argv: string[]): string =>
  execFileSync(argv[0] ?? "", argv.slice(1), { encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"] });

const tagsLine = (tags: readonly string[]): number =>
  tags.length === 0 ? 0 : Buffer.byteLength(`tags = [${tags.map((t) => `"${t}"`).join(", ")}]\n`);

function measure(shape: Shape, format: Format, count: number): MetadataBytesRow {
  const dir = mkdtempSync(join(tmpdir(), "loam-mda-"));
  const image = join(dir, "pv.img");
  writeFileSync(image, "");
  truncateSync(image, (count * 4 + 64) * 1024 * 1024);
  const device = run(["losetup", "--find", "--show", image]).trim();
  const vg = `loammda${process.pid}`;
  try {
    run(["pvcreate", "-q", "--metadatasize", "16m", device]);
    run(["vgcreate", "-q", "-s", "4m", vg, device]);
    const free = (): number =>
      Number(run(["vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_mda_free", vg]).trim());
    const before = free();
    const backup = join(dir, "vg.txt");
    run(["vgcfgbackup", "-q", "-f", backup, vg]);
    const text = readFileSync(backup, "utf8");
    const pv = pvKeys(text).get(device) ?? "pv0";
    const lvs = Array.from({ length: count }, (_, i) => {
      const name = shape.name(i);
      const lvName = lvNameFor(name);
      const parameters = parseParameters(shape.parameters(name, i));
      const tags =
        format === "no tags"
          ? []
          : format === "first (v1)"
            ? firstFormatTags(name, parameters, "thick")
            : tagsFor(name, lvName, parameters, { deviceClass: "thick" });
      return { name: lvName, tags, pv, startExtent: i };
    });
    writeFileSync(
      backup,
      addLogicalVolumes(text, lvs, { creationTime: Math.floor(Date.now() / 1000), host: "node-1" }),
    );
    run(["vgcfgrestore", "-q", "-f", backup, vg]);
    return {
      shape: shape.shape,
      format,
      volumes: count,
      metadataAreaBytesPerVolume: (before - free()) / count,
      tagBytes: tagsLine(lvs[0]?.tags ?? []),
    };
  } finally {
    try {
      run(["vgremove", "-ff", "-y", vg]);
      run(["pvremove", "-ff", "-y", device]);
    } catch {
      // Never made.
    }
    run(["losetup", "-d", device]);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function metadataBytes(count: number): MetadataBytesRow[] {
  const rows: MetadataBytesRow[] = [];
  for (const shape of SHAPES)
    for (const format of ["first (v1)", "compact (v2)", "no tags"] as const) rows.push(measure(shape, format, count));
  return rows;
}

if (process.argv[1]?.endsWith("metadata-bytes.js")) {
  const count = Number(process.argv[2] ?? 1000);
  const rows = metadataBytes(count);
  for (const row of rows)
    console.log(
      `${row.shape.padEnd(78)} ${row.format.padEnd(13)} ${row.metadataAreaBytesPerVolume.toFixed(0).padStart(5)} B/volume in the metadata area, tags ${row.tagBytes} B`,
    );
  console.log(JSON.stringify(rows));
}

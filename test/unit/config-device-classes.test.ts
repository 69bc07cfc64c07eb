import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, resolveConfig } from "../../src/cli/config.js";
import { loadNodeConfig } from "../../src/cli/node.js";

const node = { nodeId: "node-1" };
const thick = { name: "fast", volumeGroup: "vg0", default: true };
const thin = { name: "thin", volumeGroup: "vg0", type: "thin", thinPool: "pool", overprovisionRatio: 5 };

test("--volume-group alone is one default thick class named default", () => {
  const config = resolveConfig(node, { volumeGroup: "vg0" });
  assert.equal(config.deviceClasses.length, 1);
  assert.deepEqual(
    [
      config.deviceClasses[0].name,
      config.deviceClasses[0].type,
      config.deviceClasses[0].default,
      config.deviceClasses[0].volumeGroup,
    ],
    ["default", "thick", true, "vg0"],
  );
});

test("device classes resolve with defaults, and volumeGroup becomes the default class's VG", () => {
  const config = resolveConfig(node, {
    deviceClasses: [thin, { ...thick, volumeGroup: "vg9", stripes: 2, stripeSize: "128Ki" }],
  } as never);
  assert.equal(config.volumeGroup, "vg9");
  const [t, f] = config.deviceClasses;
  assert.deepEqual(
    [t.overprovisionRatio, t.dataThresholdPercent, t.metadataThresholdPercent, t.default],
    [5, 90, 90, false],
  );
  assert.deepEqual([f.stripes, f.stripeSizeBytes, f.mirrors], [2, 131072, 0]);
});

test("every bad device class field is refused with its full path", () => {
  const cases: Array<[unknown[], string, RegExp]> = [
    [
      [{ ...thin, overprovisionRatio: 0.5 }],
      "deviceClasses[0].overprovisionRatio",
      /0.5 is out of range; allowed: from 1 to 100/,
    ],
    [[thick, { ...thin, overprovisionRatio: 0.5 }], "deviceClasses[1].overprovisionRatio", /allowed/],
    [[{ ...thin, thinPool: undefined }], "deviceClasses[0].thinPool", /required for thin classes/],
    [[{ ...thin, mirrors: 1 }], "deviceClasses[0].mirrors", /thick classes only/],
    [[{ ...thick, thinPool: "p" }], "deviceClasses[0].thinPool", /thin classes only/],
    [[{ ...thick, type: "fat" }], "deviceClasses[0].type", /allowed: thick, thin/],
    [[{ ...thick, name: "Fast!" }], "deviceClasses[0].name", /lowercase/],
    [[{ ...thick, volumeGroup: "vg 0" }], "deviceClasses[0].volumeGroup", /volume group name/],
    [[{ ...thick, stripes: 2, mirrors: 1 }], "deviceClasses[0].mirrors", /striped or raid1, not both/],
    [[{ ...thick, stripeSize: "3k" }], "deviceClasses[0].stripeSize", /power of two/],
    [[{ ...thick, spareBytes: -1 }], "deviceClasses[0].spareBytes", /out of range/],
    [[{ ...thick, color: "red" }], "deviceClasses[0].color", /unknown device class setting/],
    [[{ ...thin, dataThresholdPercent: 101 }], "deviceClasses[0].dataThresholdPercent", /from 1 to 100/],
    [[thick, { ...thick }], "deviceClasses[1].name", /must be unique/],
    [
      [thick, { ...thin, default: true }],
      "deviceClasses",
      /exactly one class must have "default": true \(found 2: fast, thin\)/,
    ],
    [[{ ...thick, default: false }, thin], "deviceClasses", /found 0: none/],
    [["fast"], "deviceClasses[0]", /must be an object/],
  ];
  for (const [deviceClasses, field, pattern] of cases) {
    assert.throws(
      () => resolveConfig(node, { deviceClasses } as never),
      (error: unknown) => error instanceof ConfigError && error.field === field && pattern.test(error.message),
      `${JSON.stringify(deviceClasses)} should fail on ${field} matching ${String(pattern)}`,
    );
  }
});

test("volumeGroup and deviceClasses together are refused; a config file's classes load", async () => {
  assert.throws(
    () => resolveConfig(node, { volumeGroup: "vg0", deviceClasses: [thick] } as never),
    /volumeGroup: "vg0" is set together with deviceClasses/,
  );
  const dir = await mkdtemp(join(tmpdir(), "loam-classes-"));
  const file = join(dir, "config.json");
  await writeFile(file, JSON.stringify({ nodeId: "n1", deviceClasses: [thick, thin] }));
  const config = await loadNodeConfig(["--config", file]);
  assert.deepEqual(
    config.deviceClasses.map((c) => c.name),
    ["fast", "thin"],
  );
  await writeFile(file, JSON.stringify({ nodeId: "n1", deviceClasses: { fast: thick } }));
  await assert.rejects(loadNodeConfig(["--config", file]), /deviceClasses: must be a list of device class objects/);
});

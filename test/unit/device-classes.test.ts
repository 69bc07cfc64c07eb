import { test } from "node:test";
import assert from "node:assert/strict";
import { DeviceClasses, type DeviceClass, singleThickClass } from "../../src/volumes/device-classes.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { VolumeError } from "../../src/volumes/errors.js";

const thick: DeviceClass = { ...singleThickClass("vg0"), name: "fast" };
const raid: DeviceClass = { ...singleThickClass("vg0"), name: "safe", default: false, mirrors: 1 };
const thin: DeviceClass = {
  ...singleThickClass("vg0"),
  name: "thin",
  default: false,
  type: "thin",
  thinPool: "pool",
  overprovisionRatio: 5,
};
const classes = new DeviceClasses([thick, raid, thin]);
const params = (p: Record<string, string>) => parseParameters(p);

function refused(fn: () => unknown, pattern: RegExp): void {
  assert.throws(
    fn,
    (error: unknown) =>
      error instanceof VolumeError && error.kind === "invalid-argument" && pattern.test(error.message),
  );
}

test("no deviceClass parameter picks the default class with its own layout", () => {
  const layout = classes.layout(params({}), 2);
  assert.equal(layout.deviceClass.name, "fast");
  assert.equal(layout.kind, "linear");
});

test("a raid1 class gives raid1 layouts, and parameters override stripes and mirrors", () => {
  assert.equal(classes.layout(params({ "loam.csi.dev/deviceClass": "safe" }), 2).kind, "raid1");
  const striped = classes.layout(params({ "loam.csi.dev/stripes": "2", "loam.csi.dev/stripeSize": "64Ki" }), 2);
  assert.deepEqual([striped.kind, striped.stripes, striped.stripeSizeBytes], ["striped", 2, 65536]);
});

test("an unknown class is refused naming the parameter and the classes allowed", () => {
  refused(
    () => classes.layout(params({ "loam.csi.dev/deviceClass": "gold" }), 2),
    /deviceClass"\] "gold" is not a device class of this node; allowed: fast, safe, thin/,
  );
});

test("more stripes than physical volumes is refused with both numbers", () => {
  refused(
    () => classes.layout(params({ "loam.csi.dev/stripes": "3" }), 2),
    /asks for 3 stripes but device class "fast" \(volume group vg0\) has 2 physical volumes; allowed: 1 to 2/,
  );
});

test("more copies than physical volumes is refused", () => {
  refused(
    () => classes.layout(params({ "loam.csi.dev/mirrors": "2" }), 2),
    /3 copies\) but .* has 2 physical volumes; allowed: 0 to 1/,
  );
});

test("mirrors or stripes on a thin class are refused, naming the pool", () => {
  refused(
    () => classes.layout(params({ "loam.csi.dev/deviceClass": "thin", "loam.csi.dev/mirrors": "1" }), 2),
    /mirrors"\] does not apply to thin device class "thin".*pool vg0\/pool/,
  );
  refused(
    () => classes.layout(params({ "loam.csi.dev/deviceClass": "thin", "loam.csi.dev/stripes": "2" }), 2),
    /stripes"\] does not apply to thin/,
  );
  assert.equal(
    classes.layout(params({ "loam.csi.dev/deviceClass": "thin", "loam.csi.dev/mirrors": "0" }), 2).kind,
    "thin",
  );
});

test("stripes with mirrors, and a stripe size without stripes, are refused", () => {
  refused(
    () => classes.layout(params({ "loam.csi.dev/deviceClass": "safe", "loam.csi.dev/stripes": "2" }), 3),
    /striped or raid1 volumes, not both/,
  );
  refused(
    () => classes.layout(params({ "loam.csi.dev/stripeSize": "64Ki" }), 2),
    /stripeSize"\] needs at least 2 stripes/,
  );
});

test("parameter values outside their allow-list are refused by parseParameters", () => {
  refused(() => params({ "loam.csi.dev/stripes": "0" }), /stripes"\] "0" is not allowed; allowed: 1 to 128/);
  refused(() => params({ "loam.csi.dev/stripeSize": "3000" }), /power of two/);
  refused(() => params({ "loam.csi.dev/deviceClass": "Bad Class" }), /deviceClass"\] "Bad Class" is not allowed/);
  refused(() => params({ stripes: "2" }), /unknown key "stripes" \(did you mean "loam.csi.dev\/stripes"\?\)/);
});

test("two defaults, or none among several, cannot make a DeviceClasses", () => {
  assert.throws(() => new DeviceClasses([thick, { ...raid, default: true }]), /exactly one/);
  assert.throws(() => new DeviceClasses([{ ...thick, default: false }, raid]), /exactly one/);
});

/**
 * The registry's pure parts: its key layout, the codec of its values (validated on read and
 * on write), and placement's rules on hand-made candidates.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Keys } from "../../src/cluster/keys.js";
import { type Candidate, freeBytes, place } from "../../src/cluster/placement.js";
import { type Ledger, LedgerSchema, VolumeSpecSchema, decode, encode } from "../../src/cluster/records.js";
import { GiB, MiB } from "../../src/volumes/size.js";

const KEY = "topology.loam.csi.dev/node";

test("node keys split back into node, kind and id; other keys do not", () => {
  const keys = new Keys("/r");
  assert.deepEqual(keys.parseNodeKey(keys.volume("n1", "pvc-x")), { node: "n1", kind: "volumes", id: "pvc-x" });
  assert.deepEqual(keys.parseNodeKey(keys.snapshotStatus("n.2", "s")), {
    node: "n.2",
    kind: "snapshot-status",
    id: "s",
  });
  assert.equal(keys.parseNodeKey(keys.info("n1")), undefined, "members are outside nodes/");
  assert.equal(keys.parseNodeKey("/r/nodes/n1/volumes/a/b"), undefined);
  assert.equal(keys.parseNodeKey("/r/nodes/n1/other/a"), undefined);
  assert.equal(keys.parseNodeKey("/r/nodes/n1/volumes/"), undefined);
});

test("a value that is not JSON, has the wrong schema version, a negative size or an unknown field is a problem, not a value", () => {
  const spec = {
    schema: 1 as const,
    id: "v",
    name: "v",
    node: "n",
    deviceClass: "default",
    shaping: {},
    metadata: {},
    requiredBytes: GiB,
    limitBytes: 0,
    sizeBytes: GiB,
    generation: 1,
    deleting: false,
    createdAt: "2026-11-30T00:00:00.000Z",
  };
  const ok = decode(VolumeSpecSchema, "k", encode(VolumeSpecSchema, spec));
  assert.equal(ok.ok, true);
  const cases: [string, RegExp][] = [
    ["{", /not JSON/],
    [JSON.stringify({ ...spec, schema: 2 }), /^schema:/],
    [JSON.stringify({ ...spec, sizeBytes: -1 }), /^sizeBytes:/],
    [JSON.stringify({ ...spec, extra: true }), /Unrecognized key/i],
    [JSON.stringify({ ...spec, generation: 0 }), /^generation:/],
  ];
  for (const [text, problem] of cases) {
    const read = decode(VolumeSpecSchema, "k", text);
    assert.equal(read.ok, false, text);
    if (!read.ok) {
      assert.equal(read.problem.key, "k");
      assert.match(read.problem.problem, problem);
    }
  }
  assert.throws(() => encode(VolumeSpecSchema, { ...spec, sizeBytes: -5 }), "writing an invalid value throws");
});

function node(
  id: string,
  free: number,
  options: { classes?: string[]; reserved?: number; segments?: Record<string, string> } = {},
): Candidate {
  const classes = options.classes ?? ["default"];
  const ledger: Ledger = {
    schema: 1,
    classes: Object.fromEntries(
      classes.map((c) => [
        c,
        { availableBytes: free, maximumVolumeBytes: free, minimumVolumeBytes: 4 * MiB, extentBytes: 4 * MiB },
      ]),
    ),
    reportedAt: "t",
    reservations: options.reserved ? { "volume:x": { deviceClass: classes[0], bytes: options.reserved, at: "t" } } : {},
  };
  assert.equal(LedgerSchema.safeParse(ledger).success, true);
  return {
    info: {
      schema: 1,
      nodeId: id,
      segments: options.segments ?? { [KEY]: id },
      classes: classes.map((name, i) => ({ name, type: "thick" as const, default: i === 0 })),
      agentVersion: "t",
      startedAt: "t",
    },
    ledger,
    ledgerRevision: "1",
  };
}

const request = (over: Partial<Parameters<typeof place>[1]> = {}): Parameters<typeof place>[1] => ({
  deviceClass: undefined,
  sizeOn: () => GiB,
  requisite: [],
  preferred: [],
  policy: "spread",
  ...over,
});

test("placement: reservations count against free; spread and binpack order; preferred topology first; pinned source node", () => {
  const nodes = [node("a", 4 * GiB), node("b", 8 * GiB, { reserved: 6 * GiB }), node("c", 3 * GiB)];
  assert.equal(freeBytes(nodes[1].ledger, "default"), 2 * GiB);
  const spread = place(nodes, request());
  assert.ok(spread.ok);
  if (spread.ok)
    assert.deepEqual(
      spread.choices.map((c) => c.candidate.info.nodeId),
      ["a", "c", "b"],
    );
  const binpack = place(nodes, request({ policy: "binpack" }));
  if (binpack.ok)
    assert.deepEqual(
      binpack.choices.map((c) => c.candidate.info.nodeId),
      ["b", "c", "a"],
    );
  const preferred = place(nodes, request({ preferred: [{ [KEY]: "c" }] }));
  if (preferred.ok) assert.equal(preferred.choices[0]?.candidate.info.nodeId, "c");
  const pinned = place(nodes, request({ pinnedNode: "b", sizeOn: () => 3 * GiB }));
  assert.equal(pinned.ok, false, "the pinned node has only 2 GiB free");
  if (!pinned.ok) assert.deepEqual(pinned.best, { node: "b", deviceClass: "default", freeBytes: 2 * GiB });
  const tooBig = place(nodes, request({ sizeOn: () => 5 * GiB }));
  if (!tooBig.ok) assert.deepEqual(tooBig.best, { node: "a", deviceClass: "default", freeBytes: 4 * GiB });
  const noClass = place(nodes, request({ deviceClass: "nvme" }));
  if (!noClass.ok) assert.match(noClass.reason, /device class "nvme"/);
  const ledgerless = place([{ ...nodes[0], ledger: undefined }], request());
  assert.equal(ledgerless.ok, false, "a node that has not reported its room gets nothing");
});

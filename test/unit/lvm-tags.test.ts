import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import {
  decodeTags,
  encodeTag,
  InvalidTagError,
  isValidTag,
  MAX_TAG_LENGTH,
  tagsWithKey,
} from "../../src/lvm/index.js";

const LVM_TAG = /^[A-Za-z0-9_+.\-/=!:&#]+$/;

function randomUnicode(maxCodePoints: number): string {
  const out: string[] = [];
  const n = randomInt(0, maxCodePoints + 1);
  for (let i = 0; i < n; i++) {
    let cp = randomInt(0, 0x110000);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x1f600; // surrogate halves are not code points of their own
    out.push(String.fromCodePoint(cp));
  }
  return out.join("");
}

test("encodeTag gives our prefix, the key and base64url of the UTF-8 value", () => {
  assert.equal(encodeTag("name", "pvc-1"), `loam.csi.dev/name=${Buffer.from("pvc-1").toString("base64url")}`);
  assert.equal(encodeTag("name", ""), "loam.csi.dev/name=");
});

test("any Unicode string round-trips through a tag that LVM accepts", () => {
  const samples = [
    "",
    "plain",
    "ünïcödé",
    "日本語のボリューム",
    "emoji 😀👍🏽",
    "a=b,c d",
    "\u0000\n\t",
    "$(rm -rf /)",
    "x".repeat(700),
  ];
  for (let i = 0; i < 500; i++) samples.push(randomUnicode(150));
  for (const value of samples) {
    const tag = encodeTag("name", value);
    assert.ok(LVM_TAG.test(tag), tag);
    assert.ok(isValidTag(tag));
    assert.equal(decodeTags([tag]).get("name"), value);
  }
});

test("a 10 KiB value is rejected because the tag would pass 1024 characters", () => {
  assert.throws(() => encodeTag("name", "v".repeat(10 * 1024)), InvalidTagError);
});

test("the longest value that fits gives a tag of at most 1024 characters; one byte more is rejected", () => {
  // 1024 - "loam.csi.dev/k=".length leaves 1009 base64url characters: 756 bytes need 1008, 757 need 1010.
  assert.equal(encodeTag("k", "a".repeat(756)).length, 1023);
  assert.ok(encodeTag("k", "a".repeat(756)).length <= MAX_TAG_LENGTH);
  assert.throws(() => encodeTag("k", "a".repeat(757)), InvalidTagError);
});

test("keys must be simple lowercase words", () => {
  for (const key of ["", "Name", "a=b", "a b", "-a", "a-", "ü", "a,b", "x".repeat(2000)]) {
    assert.throws(() => encodeTag(key, "v"), InvalidTagError, key);
  }
  for (const key of ["name", "pvc", "csi.storage.k8s.io/pvc-name", "a1"])
    assert.doesNotThrow(() => encodeTag(key, "v"));
});

test("a value with a lone surrogate is rejected: it would not come back unchanged", () => {
  assert.throws(() => encodeTag("name", "a\uD800b"), InvalidTagError);
});

test("decodeTags ignores tags that are not ours or do not decode", () => {
  const ours = encodeTag("name", "vol-1");
  const decoded = decodeTags([
    ours,
    "someone.else/name=dm9sLTE",
    "loam.csi.dev/noequals",
    "loam.csi.dev/Bad=dm9s",
    "loam.csi.dev/x=not*base64",
    "loam.csi.dev/y=A",
    "loam.csi.dev/z=_w", // bytes 0xff: not UTF-8
    "plain",
  ]);
  assert.deepEqual([...decoded], [["name", "vol-1"]]);
});

test("tagsWithKey finds the raw tags of one key", () => {
  const tags = [encodeTag("name", "a"), encodeTag("size", "1"), encodeTag("name", "b"), "other"];
  assert.deepEqual(tagsWithKey(tags, "name"), [tags[0], tags[2]]);
});

test("random bytes as values: encoding is injective across many values", () => {
  const seen = new Map<string, string>();
  for (let i = 0; i < 2000; i++) {
    const value = randomBytes(randomInt(0, 40)).toString("latin1");
    const tag = encodeTag("k", value);
    const earlier = seen.get(tag);
    assert.ok(earlier === undefined || earlier === value);
    seen.set(tag, value);
  }
});

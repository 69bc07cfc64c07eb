import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { isValidLvName, isValidVgName, lvNameFor } from "../../src/lvm/index.js";

// LVM's own rules, written out independently of names.ts: charset, no leading '-', no "."/"..",
// at most 127 characters, no reserved prefixes or internal-LV infixes.
function lvmAccepts(name: string): boolean {
  return (
    /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/.test(name) &&
    name !== "." &&
    name !== ".." &&
    !/^(snapshot|pvmove)/.test(name) &&
    !/_(cdata|cmeta|corig|cpool|cvol|imeta|iorig|mimage|mlog|pmspare|rimage|rmeta|tdata|tmeta|vdata|vorigin|wcorig)/.test(
      name,
    )
  );
}

function randomName(): string {
  const alphabets = [
    "abcdefghijklmnopqrstuvwxyz0123456789-",
    "ABCxyz09._-+/$;&|`'\"\\ *?~<>(){}[]!#%^=\n\t",
    "üéßÆ日本語😀\u0000\u200b",
  ];
  const length = randomInt(0, 300);
  let s = "";
  for (let i = 0; i < length; i++) {
    const alphabet = [...alphabets[randomInt(0, alphabets.length)]];
    s += alphabet[randomInt(0, alphabet.length)];
  }
  return s;
}

test("lvNameFor: Kubernetes-style name keeps a readable prefix and 16 hex of sha256", () => {
  const csi = "pvc-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901";
  const hex = createHash("sha256").update(csi).digest("hex").slice(0, 16);
  assert.equal(lvNameFor(csi), `pvc-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901-${hex}`);
});

test("lvNameFor is deterministic", () => {
  for (let i = 0; i < 200; i++) {
    const name = randomName();
    assert.equal(lvNameFor(name), lvNameFor(name));
  }
});

test("lvNameFor always gives a valid LV name of at most 57 lowercase characters (random, metacharacters, unicode, 10 KiB)", () => {
  const names = [
    "",
    "-",
    "---",
    "snapshot",
    "snapshot-1",
    "pvmove0",
    "SNAPSHOT",
    "a_mlog",
    "x_tdata",
    ".",
    "..",
    "$(reboot)",
    "; rm -rf /",
    "日本語",
    "😀",
    "Ünïcödé Vølume",
    "x".repeat(10 * 1024),
    "-leading",
    "trailing-",
    "a/b",
    "a\nb",
  ];
  for (let i = 0; i < 3000; i++) names.push(randomName());
  for (const csi of names) {
    const lv = lvNameFor(csi);
    assert.ok(isValidLvName(lv), `${JSON.stringify(csi)} -> ${lv}`);
    assert.ok(lvmAccepts(lv), `${JSON.stringify(csi)} -> ${lv}`);
    assert.match(lv, /^[a-z0-9][a-z0-9-]*-[0-9a-f]{16}$/);
    assert.ok(lv.length <= 57, lv);
  }
});

test("lvNameFor is injective in practice: distinct names, including same-prefix ones, get distinct LV names", () => {
  const seen = new Map<string, string>();
  const names = ["Vol", "vol", "vol ", "vol-", "vol_", "a".repeat(100), "a".repeat(101)];
  for (let i = 0; i < 5000; i++) names.push(randomBytes(12).toString("base64"));
  for (const csi of names) {
    const lv = lvNameFor(csi);
    const earlier = seen.get(lv);
    assert.ok(earlier === undefined || earlier === csi, `${earlier} and ${csi} both map to ${lv}`);
    seen.set(lv, csi);
  }
});

test("lvNameFor never starts with a reserved prefix", () => {
  for (const csi of ["snapshot", "snapshot-x", "pvmove", "PVMOVE-1", "Snapshot_2"]) {
    assert.doesNotMatch(lvNameFor(csi), /^(snapshot|pvmove)/);
  }
});

test("isValidLvName agrees with LVM's rules on random strings", () => {
  for (let i = 0; i < 3000; i++) {
    const s = randomName();
    assert.equal(isValidLvName(s), lvmAccepts(s), JSON.stringify(s));
  }
});

test("isValidLvName rejects what LVM rejected in the fixtures and accepts ordinary names", () => {
  for (const bad of [
    "bad$name",
    "snapshot1",
    "n".repeat(128),
    "",
    "-x",
    ".",
    "..",
    "a b",
    "a/b",
    "vol_tmeta",
    "x_rimage_0",
    "ü",
  ]) {
    assert.equal(isValidLvName(bad), false, bad);
  }
  for (const good of ["blocker", "pvc-0a1b2c3d-5f3e1c2a9b7d4e60", "a+b", "_x", ".hidden", "n".repeat(127), "lvol0"]) {
    assert.equal(isValidLvName(good), true, good);
  }
});

test("isValidVgName allows LVM's charset and rejects paths, options and metacharacters", () => {
  for (const good of ["vg0", "loam_fast", "VG.data+1", "snapshot"]) assert.equal(isValidVgName(good), true, good);
  for (const bad of ["", "-vg", "--config", "/dev/vg0", "vg 0", "vg;rm", "..", "v".repeat(128), "vgü"]) {
    assert.equal(isValidVgName(bad), false, bad);
  }
});

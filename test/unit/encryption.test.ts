/**
 * Encrypted volumes on the host (issue 18): the StorageClass parameters and their allow-lists,
 * the spec read back from an LV's parameter tag, the passphrase taken from the secrets (and
 * never put in argv or a message), cryptsetup's argv and status output, and the node's rules for
 * a LUKS volume over a recording host: a wrong passphrase formats nothing, an LV holding data
 * is never formatted, a marked one (a crash between luksFormat and mkfs) is formatted again.
 * Real dm-crypt is test/vm/encryption.vm.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandRunner, type RunOptions } from "../../src/exec/index.js";
import { HostCommandError } from "../../src/host/errors.js";
import {
  isLuks,
  luksClose,
  luksFormat,
  luksFormatArgv,
  luksOpen,
  luksResize,
  parseMappingStatus,
} from "../../src/host/crypt.js";
import { VolumeError } from "../../src/volumes/errors.js";
import { fingerprint, parseParameters } from "../../src/volumes/parameters.js";
import {
  PASSPHRASE_KEY,
  encryptionOf,
  encryptionOfFingerprint,
  mappingPath,
  passphraseFrom,
} from "../../src/volumes/encryption.js";
import { closeEncrypted, mappingProblem, openEncrypted } from "../../src/volumes/encrypted.js";
import type { FormatMark, NodeHost } from "../../src/volumes/node-host.js";

const SECRET = "correct horse battery staple";

const kindOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof VolumeError, String(error));
    return `${error.kind}: ${error.message}`;
  }
  return "no error";
};

test("encryption parameters: luks2 with allow-listed cipher, key size, PBKDF, memory and iteration time are accepted", () => {
  const parsed = parseParameters({
    "loam.csi.dev/encryption": "luks2",
    "loam.csi.dev/encryptionCipher": "serpent-xts-plain64",
    "loam.csi.dev/encryptionKeySize": "256",
    "loam.csi.dev/encryptionPbkdf": "argon2i",
    "loam.csi.dev/encryptionPbkdfMemory": "65536",
    "loam.csi.dev/encryptionIterTime": "500",
  });
  assert.deepEqual(encryptionOf(parsed.shaping), {
    type: "luks2",
    cipher: "serpent-xts-plain64",
    keySizeBits: 256,
    pbkdf: "argon2i",
    pbkdfMemoryKiB: 65536,
    iterTimeMs: 500,
  });
  // The defaults are cryptsetup's strong ones: no memory or time override.
  assert.deepEqual(encryptionOf(parseParameters({ "loam.csi.dev/encryption": "luks2" }).shaping), {
    type: "luks2",
    cipher: "aes-xts-plain64",
    keySizeBits: 512,
    pbkdf: "argon2id",
  });
  assert.equal(encryptionOf(parseParameters({}).shaping), undefined);
});

test("encryption parameters: each value outside its allow-list is INVALID_ARGUMENT naming the key and what is allowed", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["loam.csi.dev/encryption", "luks1", /encryption"\] "luks1" is not allowed; allowed: luks2/],
    ["loam.csi.dev/encryption", "plain", /allowed: luks2/],
    ["loam.csi.dev/encryptionCipher", "aes-cbc-plain", /allowed: aes-xts-plain64 or serpent-xts-plain64/],
    ["loam.csi.dev/encryptionCipher", "aes-xts-plain64 --help", /is not allowed/],
    ["loam.csi.dev/encryptionKeySize", "128", /allowed: 256 or 512/],
    ["loam.csi.dev/encryptionPbkdf", "scrypt", /allowed: argon2id, argon2i, pbkdf2/],
    ["loam.csi.dev/encryptionPbkdfMemory", "16", /allowed: 32 to 4194304/],
    ["loam.csi.dev/encryptionPbkdfMemory", "4194305", /allowed: 32 to 4194304/],
    ["loam.csi.dev/encryptionIterTime", "0", /allowed: 1 to 60000/],
    ["loam.csi.dev/encryptionIterTime", "-5", /allowed: 1 to 60000/],
  ];
  for (const [key, value, pattern] of cases) {
    const parameters = { "loam.csi.dev/encryption": "luks2", [key]: value };
    const said = kindOf(() => parseParameters(parameters));
    assert.match(said, /^invalid-argument: /, `${key}=${value}`);
    assert.match(said, pattern, `${key}=${value}`);
  }
});

test("encryption parameters: options without encryption, and argon2 memory with pbkdf2, are INVALID_ARGUMENT", () => {
  assert.match(
    kindOf(() => parseParameters({ "loam.csi.dev/encryptionCipher": "aes-xts-plain64" })),
    /^invalid-argument: .*encryptionCipher"\] needs parameters\["loam.csi.dev\/encryption"\]: "luks2"/,
  );
  assert.match(
    kindOf(() =>
      parseParameters({
        "loam.csi.dev/encryption": "luks2",
        "loam.csi.dev/encryptionPbkdf": "pbkdf2",
        "loam.csi.dev/encryptionPbkdfMemory": "1024",
      }),
    ),
    /^invalid-argument: .*applies to argon2i and argon2id only/,
  );
});

test("encryption spec: read back from the LV's parameter tag; a plain or unreadable tag is a plain volume", () => {
  const parsed = parseParameters({ "loam.csi.dev/encryption": "luks2", "loam.csi.dev/encryptionIterTime": "10" });
  assert.deepEqual(encryptionOfFingerprint(fingerprint(parsed)), encryptionOf(parsed.shaping));
  assert.equal(encryptionOfFingerprint(fingerprint(parseParameters({}))), undefined);
  assert.equal(encryptionOfFingerprint("not json"), undefined);
  assert.equal(mappingPath("pvc-1"), "/dev/mapper/loam-pvc-1");
});

test("passphrase: taken from the secrets' encryptionPassphrase key; missing or empty is INVALID_ARGUMENT naming the key, never a value", () => {
  assert.deepEqual(passphraseFrom({ [PASSPHRASE_KEY]: SECRET }, "v", "x"), Buffer.from(SECRET));
  const missing = kindOf(() => passphraseFrom({ other: SECRET }, "v1", "csi.storage.k8s.io/node-stage-secret"));
  assert.match(missing, /^invalid-argument: volume v1 is encrypted .* no non-empty "encryptionPassphrase" key/);
  assert.match(missing, /node-stage-secret-name/);
  assert.ok(!missing.includes(SECRET));
  assert.match(
    kindOf(() => passphraseFrom({ [PASSPHRASE_KEY]: "" }, "v1", "x")),
    /^invalid-argument: /,
  );
});

/** A runner that records each command and answers from a table. */
function recordingRunner(answer: (argv: readonly string[]) => { exitCode: number; stdout?: string; stderr?: string }) {
  const calls: Array<{ argv: readonly string[]; options: RunOptions }> = [];
  const runner = {
    run(argv: readonly string[], options: RunOptions = {}) {
      calls.push({ argv, options });
      const a = answer(argv);
      return Promise.resolve({ stdout: a.stdout ?? "", stderr: a.stderr ?? "", exitCode: a.exitCode });
    },
  } as unknown as CommandRunner;
  return { runner, calls };
}

test("cryptsetup argv: the passphrase goes to standard input only; argv and errors never hold it", async () => {
  const secret = Buffer.from(SECRET);
  const { runner, calls } = recordingRunner((argv) =>
    argv[1] === "open" ? { exitCode: 2, stderr: "No key available with this passphrase.\n" } : { exitCode: 0 },
  );
  await luksFormat(runner, "/dev/vg/lv", secret, { cipher: "aes-xts-plain64", keySizeBits: 512, pbkdf: "argon2id" });
  const error = await luksOpen(runner, "/dev/vg/lv", "loam-lv", secret).catch((e: unknown) => e);
  await luksResize(runner, "loam-lv", secret);
  assert.ok(error instanceof HostCommandError);
  assert.equal(error.exitCode, 2);
  assert.ok(!error.message.includes(SECRET));
  assert.deepEqual(
    calls.map((c) => c.argv),
    [
      luksFormatArgv("/dev/vg/lv", { cipher: "aes-xts-plain64", keySizeBits: 512, pbkdf: "argon2id" }),
      ["cryptsetup", "open", "--type", "luks", "--key-file", "-", "/dev/vg/lv", "loam-lv"],
      ["cryptsetup", "resize", "--key-file", "-", "loam-lv"],
    ],
  );
  for (const call of calls) {
    assert.ok(!call.argv.join(" ").includes(SECRET));
    assert.deepEqual(call.options.input, secret);
  }
  assert.deepEqual(
    luksFormatArgv("/dev/x", { cipher: "aes-xts-plain64", keySizeBits: 256, pbkdf: "pbkdf2", iterTimeMs: 5 }).slice(2),
    [
      "--batch-mode",
      "--type",
      "luks2",
      "--cipher",
      "aes-xts-plain64",
      "--key-size",
      "256",
      "--pbkdf",
      "pbkdf2",
      "--iter-time",
      "5",
      "--key-file",
      "-",
      "/dev/x",
    ],
  );
});

test("cryptsetup: isLuks and close read their exit codes; status output is parsed", async () => {
  const { runner } = recordingRunner((argv) => ({ exitCode: argv[1] === "isLuks" ? 1 : 4 }));
  assert.equal(await isLuks(runner, "/dev/x"), false);
  assert.equal(await luksClose(runner, "loam-x"), false);
  const status = parseMappingStatus(
    [
      "/dev/mapper/loam-x is active and is in use.",
      "  type:    LUKS2",
      "  cipher:  aes-xts-plain64",
      "  keysize: 512 bits",
      "  key location: keyring",
      "  device:  /dev/mapper/vg-x",
      "  sector size:  512",
      "  offset:  32768 sectors",
      "  size:    2064384 sectors",
      "  mode:    read/write",
    ].join("\n"),
  );
  assert.deepEqual(status, {
    active: true,
    inUse: true,
    summary: "/dev/mapper/loam-x is active and is in use.",
    device: "/dev/mapper/vg-x",
    offsetSectors: 32768,
    sizeSectors: 2064384,
  });
});

test("runner: input reaches the command's standard input exactly", async () => {
  const result = await new CommandRunner().run(["cat"], { input: Buffer.from(`${SECRET}\n`) });
  assert.equal(result.stdout, `${SECRET}\n`);
});

/** A host that records what the encrypted rules ask of it; the LV's state is set per test. */
function fakeHost(lv: {
  luks: boolean;
  content: "empty" | "data";
  mapped?: boolean;
  openFails?: number;
  closeFails?: number;
}) {
  const calls: string[] = [];
  const host = {
    stat: (path: string) => {
      calls.push(`stat ${path}`);
      return lv.mapped && path.startsWith("/dev/mapper/")
        ? Promise.resolve({ type: "block-device", device: "253:9" })
        : Promise.reject(new Error("ENOENT"));
    },
    isLuks: () => (calls.push("isLuks"), Promise.resolve(lv.luks)),
    firstLook: () => (calls.push("firstLook"), Promise.resolve(lv.content === "empty" ? "empty" : "data")),
    probe: () => (
      calls.push("probe"),
      Promise.resolve(lv.content === "empty" ? { kind: "empty" } : { kind: "filesystem", fsType: "ext4" })
    ),
    wipeSignatures: () => (calls.push("wipe"), Promise.resolve()),
    luksFormat: () => (calls.push("luksFormat"), (lv.luks = true), Promise.resolve()),
    luksOpen: (_d: string, _n: string, key: Uint8Array) => {
      calls.push("luksOpen");
      if (lv.openFails)
        return Promise.reject(new HostCommandError(["cryptsetup", "open"], lv.openFails, "No key available"));
      assert.equal(Buffer.from(key).toString(), SECRET);
      lv.mapped = true;
      return Promise.resolve();
    },
    luksClose: () => {
      calls.push("luksClose");
      if (lv.closeFails) return Promise.reject(new HostCommandError(["cryptsetup", "close"], lv.closeFails, "busy"));
      lv.mapped = false;
      return Promise.resolve(true);
    },
  } as unknown as NodeHost;
  return { host, calls };
}

const volume = {
  id: "pv1",
  devicePath: "/dev/vg/pv1",
  encryption: { type: "luks2" as const, cipher: "aes-xts-plain64", keySizeBits: 512, pbkdf: "argon2id" },
};

function markOf(marked: boolean) {
  const events: string[] = [];
  const mark: FormatMark = {
    marked,
    add: () => (events.push("add"), Promise.resolve()),
    clear: () => (events.push("clear"), Promise.resolve()),
  };
  return { mark, events };
}

test("encrypted stage: an empty LV is marked, then luksFormat, then opened; the mark stays on for mkfs", async () => {
  const { host, calls } = fakeHost({ luks: false, content: "empty" });
  const { mark, events } = markOf(false);
  const opened = await openEncrypted(host, volume, Buffer.from(SECRET), mark, {});
  assert.deepEqual(opened, { devicePath: "/dev/mapper/loam-pv1", fresh: true });
  assert.deepEqual(events, ["add"]);
  assert.deepEqual(calls.slice(-3), ["probe", "luksFormat", "luksOpen"]);
});

test("encrypted stage: an LV holding data is never formatted (FAILED_PRECONDITION); a LUKS one is only opened", async () => {
  const data = fakeHost({ luks: false, content: "data" });
  const refused = await openEncrypted(data.host, volume, Buffer.from(SECRET), markOf(false).mark, {}).catch(
    (e: unknown) => e,
  );
  assert.ok(refused instanceof VolumeError && refused.kind === "failed-precondition", String(refused));
  assert.match(refused.message, /holds a ext4 filesystem, not a LUKS header; loam never formats over existing data/);
  assert.ok(!data.calls.includes("luksFormat") && !data.calls.includes("wipe"));

  const luks = fakeHost({ luks: true, content: "data" });
  const { mark, events } = markOf(false);
  assert.deepEqual(await openEncrypted(luks.host, volume, Buffer.from(SECRET), mark, {}), {
    devicePath: "/dev/mapper/loam-pv1",
    fresh: false,
  });
  assert.deepEqual(events, []);
  assert.ok(!luks.calls.includes("luksFormat") && !luks.calls.includes("probe"));
});

test("encrypted stage: a wrong passphrase is INVALID_ARGUMENT, says nothing was changed, and formats nothing", async () => {
  const { host, calls } = fakeHost({ luks: true, content: "data", openFails: 2 });
  const error = await openEncrypted(host, volume, Buffer.from("wrong"), markOf(false).mark, {}).catch(
    (e: unknown) => e,
  );
  assert.ok(error instanceof VolumeError && error.kind === "invalid-argument", String(error));
  assert.match(error.message, /does not open volume pv1's LUKS2 header .*nothing on the volume was changed/);
  assert.deepEqual(
    calls.filter((c) => !c.startsWith("stat")),
    ["isLuks", "luksOpen"],
  );
});

test("encrypted stage: a marked volume (crash between luksFormat and mkfs) is closed, wiped and formatted again", async () => {
  const { host, calls } = fakeHost({ luks: true, content: "data", mapped: true });
  const { mark, events } = markOf(true);
  const opened = await openEncrypted(host, volume, Buffer.from(SECRET), mark, {});
  assert.equal(opened.fresh, true);
  assert.deepEqual(events, []);
  assert.deepEqual(calls, ["luksClose", "firstLook", "wipe", "luksFormat", "luksOpen"]);
});

test("encrypted unstage: an open mapping is closed; a busy one is FAILED_PRECONDITION and stays open; none: nothing run", async () => {
  const open = fakeHost({ luks: true, content: "data", mapped: true });
  await closeEncrypted(open.host, "pv1", {});
  assert.ok(open.calls.includes("luksClose"));
  const busy = fakeHost({ luks: true, content: "data", mapped: true, closeFails: 5 });
  const error = await closeEncrypted(busy.host, "pv1", {}).catch((e: unknown) => e);
  assert.ok(error instanceof VolumeError && error.kind === "failed-precondition", String(error));
  assert.match(error.message, /loam-pv1 of volume pv1 is still in use .*stays open/);
  const none = fakeHost({ luks: false, content: "empty" });
  await closeEncrypted(none.host, "pv1", {});
  assert.deepEqual(none.calls, ["stat /dev/mapper/loam-pv1"]);
});

test("encrypted condition: a closed mapping, or one cryptsetup does not call active, is a problem; an open one is not", async () => {
  const closed = fakeHost({ luks: true, content: "data", mapped: false });
  assert.match((await mappingProblem(closed.host, "pv1")) ?? "", /loam-pv1 of volume pv1 is not open/);
  const status = (active: boolean) =>
    Object.assign(fakeHost({ luks: true, content: "data", mapped: true }).host, {
      mappingStatus: () =>
        Promise.resolve({ active, inUse: false, summary: active ? "is active." : "/dev/mapper/loam-pv1 is inactive." }),
    });
  assert.equal(await mappingProblem(status(true), "pv1"), undefined);
  assert.match((await mappingProblem(status(false), "pv1")) ?? "", /is not active: .*inactive/);
});

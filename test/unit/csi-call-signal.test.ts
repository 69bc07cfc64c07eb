/**
 * The AbortSignal each handler gets (src/csi/service.ts) aborts when the client cancels a call
 * in flight, and never after the call was answered: grpc-js reports "cancelled" once every
 * answered call's stream closes, and a handler's background work tied to the signal must not
 * be cut short by that (it also cost an Error, with its stack trace, on every call; issue 20).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { Node } from "../../src/gen/csi/v1/csi_pb.js";
import { addService } from "../../src/csi/service.js";
import { CsiClient } from "../../src/csi/client.js";
import { createLogger } from "../../src/log.js";

let dir: string;
let endpoint: string;
const server = new Server();
const signals: AbortSignal[] = [];
let release: () => void = () => undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "loam-call-signal-"));
  endpoint = `unix://${join(dir, "csi.sock")}`;
  addService(
    server,
    Node,
    {
      nodeGetCapabilities: (_request, context) => {
        signals.push(context.signal);
        return Promise.resolve({ capabilities: [] });
      },
      nodeGetVolumeStats: async (_request, context) => {
        // Looks at its signal only after the client has given up: the signal is made lazily
        // (issue 20), and one made after the cancellation must already be aborted.
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        await sleep(50);
        signals.push(context.signal);
        return {};
      },
      nodeGetInfo: async (_request, context) => {
        signals.push(context.signal);
        // Answers only when the test says so (or when the call is cancelled).
        await new Promise<void>((resolve) => {
          release = resolve;
          context.signal.addEventListener("abort", () => resolve());
        });
        return { nodeId: "n1" };
      },
    },
    { logger: createLogger("error", () => undefined) },
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(endpoint, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
  );
});

after(async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

test("an answered call's signal stays unaborted after its stream closes", async () => {
  const client = new CsiClient(endpoint);
  try {
    for (let i = 0; i < 3; i++) await client.call(Node, "nodeGetCapabilities", {});
    // grpc-js reports the close on the next ticks; give it time to.
    await sleep(50);
    assert.equal(signals.length, 3);
    assert.deepEqual(
      signals.map((s) => s.aborted),
      [false, false, false],
    );
  } finally {
    client.close();
  }
});

test("a call the client gives up on sees its signal aborted", async () => {
  signals.length = 0;
  const client = new CsiClient(endpoint);
  try {
    await assert.rejects(client.call(Node, "nodeGetInfo", {}, { timeoutMs: 200 }));
    await sleep(50);
    assert.equal(signals.length, 1);
    assert.equal(signals[0]?.aborted, true, "the deadline passed: the handler's signal is aborted");
  } finally {
    release();
    client.close();
  }
});

test("a handler that first looks at its signal after the client gave up finds it aborted", async () => {
  signals.length = 0;
  const client = new CsiClient(endpoint);
  try {
    await assert.rejects(client.call(Node, "nodeGetVolumeStats", {}, { timeoutMs: 200 }));
    release();
    await sleep(150);
    assert.equal(signals.length, 1);
    assert.equal(signals[0]?.aborted, true, "made after the cancellation, the signal must say so");
  } finally {
    client.close();
  }
});

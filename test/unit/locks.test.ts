import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { KeyedLocks } from "../../src/volumes/locks.js";

test("calls for the same key run one after another and the second waits instead of failing", async () => {
  const locks = new KeyedLocks();
  const events: string[] = [];
  const run = (label: string, ms: number) =>
    locks.withKeys(["name:a"], async () => {
      events.push(`${label} start`);
      await sleep(ms);
      events.push(`${label} end`);
      return label;
    });
  const results = await Promise.all([run("first", 30), run("second", 1)]);
  assert.deepEqual(results, ["first", "second"]);
  assert.deepEqual(events, ["first start", "first end", "second start", "second end"]);
  assert.equal(locks.size, 0);
});

test("calls for different keys run at the same time", async () => {
  const locks = new KeyedLocks();
  let inside = 0;
  let most = 0;
  const run = (key: string) =>
    locks.withKeys([key], async () => {
      inside++;
      most = Math.max(most, inside);
      await sleep(20);
      inside--;
    });
  await Promise.all([run("a"), run("b"), run("c")]);
  assert.equal(most, 3);
});

test("overlapping key sets taken in opposite orders do not deadlock", async () => {
  const locks = new KeyedLocks();
  const order: string[] = [];
  await Promise.all([
    locks.withKeys(["x", "y"], async () => {
      await sleep(10);
      order.push("xy");
    }),
    locks.withKeys(["y", "x"], async () => {
      await sleep(10);
      order.push("yx");
    }),
  ]);
  assert.deepEqual(order, ["xy", "yx"]);
});

test("a failing holder releases the key for the next caller", async () => {
  const locks = new KeyedLocks();
  await assert.rejects(
    locks.withKeys(["k"], () => Promise.reject(new Error("boom"))),
    /boom/,
  );
  assert.equal(await locks.withKeys(["k"], () => Promise.resolve("after")), "after");
  assert.equal(locks.size, 0);
});

test("a call made while its caller holds the key does not wait for itself; other callers still wait", async () => {
  const locks = new KeyedLocks();
  const events: string[] = [];
  const outer = locks.withKeys(["id:v"], async () => {
    events.push("outer start");
    await sleep(10);
    // The node's expansion holds the volume's lock and grows the LV through the engine, which takes it too.
    const inner = await locks.withKeys(["id:v", "id:w"], () => {
      events.push("inner");
      return Promise.resolve("inner done");
    });
    events.push("outer end");
    return inner;
  });
  const other = locks.withKeys(["id:v"], () => {
    events.push("other");
    return Promise.resolve();
  });
  assert.equal(await outer, "inner done");
  await other;
  assert.deepEqual(events, ["outer start", "inner", "outer end", "other"]);
  assert.equal(locks.size, 0);
});

test("work a holder left running does not hold the key once the holder has released it", async () => {
  const locks = new KeyedLocks();
  let leftRunning: Promise<void> | undefined;
  const events: string[] = [];
  await locks.withKeys(["k"], () => {
    leftRunning = (async () => {
      await sleep(20);
      await locks.withKeys(["k"], async () => {
        events.push("leftover");
        await sleep(20);
        events.push("leftover end");
      });
    })();
    return Promise.resolve();
  });
  await sleep(30);
  await locks.withKeys(["k"], () => {
    events.push("next");
    return Promise.resolve();
  });
  await leftRunning;
  assert.deepEqual(events, ["leftover", "leftover end", "next"]);
});

/**
 * A resumable watch of one prefix of the registry: every change under the prefix reaches the
 * consumer once, in revision order, across lost connections and compactions.
 *
 * It lists the prefix (each key a put), then watches from the listing's revision + 1. It keeps
 * the last revision it delivered and the mod revision of every key it has delivered. After a
 * lost connection it watches again from that revision + 1 itself: etcd3's own resumption
 * starts after the last response header, which can be past changes not yet sent (the created
 * response of a watch that is catching up, or a partial batch). When etcd answers that the
 * revision was compacted, it lists again and delivers the difference from what the consumer
 * has seen: a put for each key whose mod revision differs, a delete for each key gone; then
 * watches from that listing. A key put and deleted within a compacted gap is never delivered.
 *
 * Never cancel() an etcd3 watcher after its 'error': etcd has already dropped it, and etcd's
 * answer to a second cancel makes etcd3 throw outside any caller (the process dies).
 */
import type { Etcd3, IKeyValue } from "etcd3";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../log.js";

export interface PrefixChange {
  type: "put" | "delete";
  key: string;
  /** The value put; undefined for a delete. */
  value: Buffer | undefined;
  /** The key-value as etcd gave it (create revision, version, lease); undefined for a delete. */
  kv: IKeyValue | undefined;
  /**
   * The revision of the change (decimal string, as etcd gives it). For a delete found by a
   * listing after a compaction, the listing's revision: the key was gone by then.
   */
  modRevision: string;
}

export interface PrefixWatchOptions {
  client: Etcd3;
  prefix: string;
  /** Receives each change once, in order; runs synchronously (queue the work, do not await it here). */
  onChange: (change: PrefixChange) => void;
  logger?: Logger;
  /** Test hook: runs between a listing and the watch from its revision (a test compacts there). */
  beforeWatch?: () => Promise<void>;
}

/** Waits between attempts while etcd cannot be reached: doubled up to the maximum. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5_000;

/** etcd's reason when the revision a watch starts at was compacted. */
const COMPACTED = /required revision has been compacted/;

/** How one watch ended: a lost connection is resumed; etcd ending the watch calls for a listing. */
type Ending = "disconnected" | "relist" | "failed" | "stopped";

export class PrefixWatch {
  /** Key → mod revision of every key the consumer has been given and not since been told is deleted. */
  private readonly seen = new Map<string, bigint>();
  /** The revision the consumer is up to date with: every change up to it was delivered. */
  private revision = 0n;
  private wake: ((ending: Ending) => void) | undefined;
  private running: Promise<void> | undefined;
  private cancelling: Promise<void> | undefined;
  private stopped = false;
  private readonly stopping = new AbortController();
  /** What has happened so far (for tests and logs). */
  readonly stats = { listings: 0, watches: 0, delivered: 0 };

  private constructor(private readonly options: PrefixWatchOptions) {}

  /** Lists the prefix (delivering each key as a put) and starts watching; rejects if the first listing fails. */
  static async start(options: PrefixWatchOptions): Promise<PrefixWatch> {
    const watch = new PrefixWatch(options);
    await watch.list();
    watch.running = watch.run();
    return watch;
  }

  /** The revision through which every change was delivered (decimal string). */
  get upTo(): string {
    return this.revision.toString();
  }

  /** Ends the watch; no change is delivered after it resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.wake?.("stopped");
    await this.running;
    await this.cancelling;
  }

  private async run(): Promise<void> {
    // start() listed already.
    let needList = false;
    let listed = true;
    let retryMs = RETRY_FIRST_MS;
    while (!this.stopped) {
      let ending: Ending;
      try {
        if (needList) {
          await this.list();
          needList = false;
          listed = true;
        }
        if (this.stopped) return;
        if (listed) await this.options.beforeWatch?.();
        listed = false;
        ending = await this.watchOnce(() => (retryMs = RETRY_FIRST_MS));
      } catch (error) {
        this.options.logger?.warn("registry watch could not list or watch; trying again", {
          prefix: this.options.prefix,
          retryMs,
          error: String(error),
        });
        ending = "failed";
      }
      if (ending === "stopped") return;
      if (ending === "relist") {
        needList = true;
        continue;
      }
      // A lost connection (or a failed listing): wait, then watch again from the last revision delivered.
      await sleep(retryMs, undefined, { signal: this.stopping.signal }).catch(() => undefined);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
  }

  /** Lists the prefix and delivers what differs from what the consumer has seen. */
  private async list(): Promise<void> {
    const response = await this.options.client.getAll().prefix(this.options.prefix).exec();
    if (this.stopped) return;
    this.stats.listings++;
    const at = BigInt(response.header.revision);
    const present = new Set<string>();
    const kvs = [...response.kvs].sort((a, b) => compare(BigInt(a.mod_revision), BigInt(b.mod_revision)));
    for (const kv of kvs) {
      const key = kv.key.toString();
      present.add(key);
      if (this.seen.get(key) !== BigInt(kv.mod_revision)) {
        this.deliver({ type: "put", key, value: kv.value, kv, modRevision: kv.mod_revision });
      }
    }
    for (const key of [...this.seen.keys()]) {
      if (!present.has(key))
        this.deliver({ type: "delete", key, value: undefined, kv: undefined, modRevision: at.toString() });
    }
    if (at > this.revision) this.revision = at;
  }

  /**
   * Watches from the revision after the last one delivered, until the connection is lost, etcd
   * ends the watch, or stop(). `connected` runs once etcd has accepted the watch.
   */
  private watchOnce(connected: () => void): Promise<Ending> {
    if (this.stopped) return Promise.resolve("stopped");
    this.stats.watches++;
    // Every event of this watch is at or after its start: an earlier one would be a repeat.
    const from = this.revision + 1n;
    const watcher = this.options.client.watch().prefix(this.options.prefix).startRevision(from.toString()).watcher();
    return new Promise<Ending>((resolve) => {
      let ended = false;
      const end = (ending: Ending, cancel: boolean): void => {
        if (ended) return;
        ended = true;
        this.wake = undefined;
        // Only a watcher etcd still holds is cancelled (see the comment at the top).
        if (cancel) this.cancelling = bounded(watcher.cancel());
        resolve(ending);
      };
      watcher.on("connected", connected);
      watcher.on("put", (kv) => {
        if (ended || BigInt(kv.mod_revision) < from) return;
        this.deliver({ type: "put", key: kv.key.toString(), value: kv.value, kv, modRevision: kv.mod_revision });
      });
      watcher.on("delete", (kv) => {
        if (ended || BigInt(kv.mod_revision) < from) return;
        this.deliver({
          type: "delete",
          key: kv.key.toString(),
          value: undefined,
          kv: undefined,
          modRevision: kv.mod_revision,
        });
      });
      // The stream is down; etcd3 would resume this watcher after its last response header,
      // so it is dropped (safe: not connected, no request is sent) and a new one made.
      watcher.on("disconnected", () => end("disconnected", true));
      watcher.on("error", (error) => {
        const fields = { prefix: this.options.prefix, revision: this.upTo, error: String(error) };
        if (COMPACTED.test(String(error)))
          this.options.logger?.info("registry watch start was compacted; listing again", fields);
        else this.options.logger?.warn("registry watch ended by etcd; listing again", fields);
        // Whatever etcd's reason, a listing finds what the consumer has not seen.
        end("relist", false);
      });
      this.wake = (ending) => end(ending, true);
      if (this.stopped) end("stopped", true);
    });
  }

  private deliver(change: PrefixChange): void {
    const modRevision = BigInt(change.modRevision);
    if (change.type === "put") this.seen.set(change.key, modRevision);
    else this.seen.delete(change.key);
    if (modRevision > this.revision) this.revision = modRevision;
    this.stats.delivered++;
    try {
      this.options.onChange(change);
    } catch (error) {
      this.options.logger?.error("registry watch consumer failed on a change", {
        key: change.key,
        error: String(error),
      });
    }
  }
}

const compare = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** A cancel etcd never answers (a stream that hangs) must not hold stop() forever. */
async function bounded(cancel: Promise<void>): Promise<void> {
  await Promise.race([cancel.catch(() => undefined), sleep(2_000)]);
}

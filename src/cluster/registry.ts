/**
 * The registry in etcd as the controller and the agents use it: typed reads (every value
 * validated by its schema in records.ts), the members and ledgers placement needs, waiting for
 * a key to reach a state (a read, then a watch from the revision after it, so no change between
 * the two is missed; watch.ts resumes it after a lost connection or a compaction), and the one translation of etcd's failures into domain errors.
 */
import type { Etcd3, IKeyValue, IRangeResponse } from "etcd3";
import type { z } from "zod";
import { VolumeError, deadlineExceeded, unavailable } from "../volumes/errors.js";
import { Keys } from "./keys.js";
import type { Candidate } from "./placement.js";
import { type MemberReads, NOSPACE_REMEDY, type RangeRequest } from "./quorum.js";
import { type Decoded, LedgerSchema, NodeInfoSchema, type RecordProblem, decode, encode } from "./records.js";
import { PrefixWatch } from "./watch.js";

export interface Stored<T> {
  /** The value, when it passed validation. */
  value?: T;
  problem?: RecordProblem;
  /** Revisions as etcd gives them (decimal strings); "0" when the key does not exist. */
  modRevision: string;
  createRevision: string;
}

export const absent = <T>(): Stored<T> => ({ modRevision: "0", createRevision: "0" });

/** One etcd request as Registry.call saw it: the operation (the first word of what it did), time, outcome. */
export interface EtcdRequestObservation {
  operation: string;
  seconds: number;
  failed: boolean;
}

const OPERATION = /^[a-z]{1,24}$/;

export class Registry {
  /** Where reads go while etcd has no quorum (the cluster controller sets it; agents do not). */
  fallback: MemberReads | undefined;
  /** Told of every request Registry.call runs (the latency histogram). */
  observe: ((observation: EtcdRequestObservation) => void) | undefined;

  constructor(
    readonly client: Etcd3,
    readonly keys: Keys = new Keys(),
  ) {}

  async read<T>(schema: z.ZodType<T>, key: string): Promise<Stored<T>> {
    const response = await this.rangeRead(`reading ${key}`, (client) => client.get(key));
    const kv = response.kvs[0];
    return kv ? stored(schema, kv) : absent();
  }

  /** Every key under a prefix, decoded by the schema the key's kind calls for. */
  async range(prefix: string): Promise<{ kvs: IKeyValue[]; revision: string }> {
    const response = await this.rangeRead(`listing ${prefix}`, (client) => client.getAll().prefix(prefix));
    return { kvs: response.kvs, revision: response.header.revision };
  }

  /**
   * A linearizable read; with a fallback, a serializable one from any surviving member when etcd
   * has no quorum (known from the quorum watch, or from this read failing UNAVAILABLE).
   */
  private async rangeRead(doing: string, request: RangeRequest): Promise<IRangeResponse> {
    const fallback = this.fallback;
    if (fallback?.noQuorum) return this.call(doing, () => fallback.read(doing, request));
    try {
      const response = await this.call(doing, () => request(this.client).exec());
      fallback?.linearizable();
      return response;
    } catch (error) {
      if (!fallback || !(error instanceof VolumeError) || error.kind !== "unavailable") throw error;
      return this.call(doing, () => fallback.read(doing, request));
    }
  }

  /** The live nodes (those whose info key, held by their lease, exists) with their ledgers. */
  async candidates(): Promise<{ candidates: Candidate[]; problems: RecordProblem[] }> {
    const [members, ledgers] = await Promise.all([this.range(this.keys.members), this.range(this.keys.ledgers)]);
    const problems: RecordProblem[] = [];
    const ledgerOf = new Map<string, Stored<z.infer<typeof LedgerSchema>>>();
    for (const kv of ledgers.kvs) {
      const node = kv.key.toString().slice(this.keys.ledgers.length);
      const read = stored(LedgerSchema, kv);
      if (read.problem) problems.push(read.problem);
      ledgerOf.set(node, read);
    }
    const candidates: Candidate[] = [];
    for (const kv of members.kvs) {
      const info = stored(NodeInfoSchema, kv);
      if (!info.value) {
        if (info.problem) problems.push(info.problem);
        continue;
      }
      // A ledger that failed validation offers nothing: the node gets no new volume until its agent rewrites it.
      const ledger = ledgerOf.get(info.value.nodeId);
      candidates.push({
        info: info.value,
        ledger: ledger?.value,
        ledgerRevision: ledger?.problem ? "-1" : (ledger?.modRevision ?? "0"),
      });
    }
    return { candidates, problems };
  }

  /**
   * Waits until `done` answers something for the key's value: reads it, then watches it from the
   * next revision (watch.ts: the wait outlives a lost connection or a compaction, so no change
   * is missed). Ends with DEADLINE_EXCEEDED when `signal` fires first (the caller's deadline or
   * the node timeout), saying what it waited for.
   */
  async waitFor<T, R>(
    schema: z.ZodType<T>,
    key: string,
    done: (value: Stored<T>) => R | undefined,
    signal: AbortSignal,
    waitingFor: string,
  ): Promise<R> {
    let settle: { answer: R } | { error: Error } | undefined;
    let wake = (): void => undefined;
    let found = false;
    const check = (value: Stored<T>): void => {
      if (settle) return;
      try {
        const answer = done(value);
        if (answer !== undefined) settle = { answer };
      } catch (error) {
        settle = { error: error instanceof Error ? error : new Error(String(error)) };
      }
      if (settle) wake();
    };
    // The watch is of a prefix: keys that merely start with this one are not its changes.
    const watch = await this.call(`watching ${key}`, () =>
      PrefixWatch.start({
        client: this.client,
        prefix: key,
        onChange: (change) => {
          if (change.key !== key) return;
          found = true;
          check(change.kv ? stored(schema, change.kv) : absent());
        },
      }),
    );
    try {
      if (!found) check(absent());
      if (!settle) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (signal.aborted) resolve();
          else signal.addEventListener("abort", () => resolve(), { once: true });
        });
      }
      if (!settle) throw deadlineExceeded(`timed out waiting for ${waitingFor}; retry finds the same request`);
      if ("error" in settle) throw settle.error;
      return settle.answer;
    } finally {
      // Not awaited: the answer does not wait for etcd to confirm the cancel.
      void watch.stop();
    }
  }

  encode<T>(schema: z.ZodType<T>, value: T): string {
    return encode(schema, value);
  }

  /** Runs one etcd request; its failures become UNAVAILABLE (the registry cannot be reached or refused). */
  async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let failed = false;
    try {
      return await fn();
    } catch (error) {
      failed = true;
      throw etcdFailure(error, doing);
    } finally {
      if (this.observe) {
        const word = doing.split(" ", 1)[0] ?? "";
        const operation = OPERATION.test(word) ? word : "other";
        this.observe({ operation, seconds: (performance.now() - started) / 1000, failed });
      }
    }
  }
}

export function stored<T>(schema: z.ZodType<T>, kv: IKeyValue): Stored<T> {
  const decoded: Decoded<T> = decode(schema, kv.key.toString(), kv.value.toString());
  return {
    ...(decoded.ok ? { value: decoded.value } : { problem: decoded.problem }),
    modRevision: kv.mod_revision,
    createRevision: kv.create_revision,
  };
}

export function etcdFailure(error: unknown, doing: string): VolumeError {
  if (error instanceof VolumeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes("database space exceeded")) {
    return unavailable(`etcd is out of space (NOSPACE alarm) while ${doing}: ${message}; ${NOSPACE_REMEDY}`, error);
  }
  return unavailable(`the etcd registry did not answer while ${doing}: ${message}`, error);
}

/**
 * The etcd connection both cluster-mode commands make (`loam controller`, and `loam node` as
 * an agent): endpoints checked, TLS files read once at start, one Etcd3 client, one Registry.
 */
import { readFileSync } from "node:fs";
import { noop } from "cockatiel";
import { Etcd3, type IOptions } from "etcd3";
import type { Logger } from "../log.js";
import { MemberReads, type Member, QuorumWatch } from "../cluster/quorum.js";
import type { Keys } from "../cluster/keys.js";
import { Registry } from "../cluster/registry.js";
import { ConfigError } from "./config.js";
import { ETCD_ENDPOINT } from "./config-schema.js";

export interface EtcdFlags {
  endpoints: readonly string[];
  ca?: string;
  cert?: string;
  key?: string;
}

/** Checks an endpoint list ("URL,URL"): each http(s)://host:port. */
export function parseEtcdEndpoints(text: string, field: string): string[] {
  const endpoints = text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (endpoints.length === 0)
    throw new ConfigError(field, "needs at least one etcd endpoint, e.g. https://10.0.0.1:2379");
  for (const endpoint of endpoints) {
    if (!ETCD_ENDPOINT.test(endpoint)) {
      throw new ConfigError(
        field,
        `"${endpoint}" is not an etcd endpoint; allowed: http(s)://host:port, comma-separated`,
      );
    }
  }
  return endpoints;
}

const ETCD_CALL_DEADLINE_MS = 10_000;

export function connectRegistry(flags: EtcdFlags, keys?: Keys): Registry {
  const client = new Etcd3({
    hosts: [...flags.endpoints],
    // A unary request etcd cannot answer (no quorum, no route) fails after 10 s as UNAVAILABLE
    // instead of waiting for ever; watches and lease keepalives are streams and keep no deadline.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + ETCD_CALL_DEADLINE_MS }),
    ...credentialsOf(flags),
  });
  return new Registry(client, keys);
}

/**
 * One client per member for the quorum watch and the reads without quorum: each asks exactly its
 * member, once (no retry on another member, no circuit breaker that would keep a recovered member
 * shut for seconds); the callers set each request's deadline.
 */
export function connectMembers(flags: EtcdFlags): Member[] {
  const credentials = credentialsOf(flags);
  return flags.endpoints.map((endpoint) => ({
    endpoint,
    client: new Etcd3({ hosts: [endpoint], faultHandling: { host: () => noop, global: noop }, ...credentials }),
  }));
}

/**
 * The quorum watch over the members of `flags`, started (its first state known), feeding
 * `onChange` (the gauge); with `reads`, the registry's reads fall back to serializable reads
 * from a surviving member while etcd has no quorum.
 */
export async function watchQuorum(
  flags: EtcdFlags,
  registry: Registry,
  logger: Logger,
  onChange: (writable: boolean) => void,
  options: { reads: boolean; boundMs?: number },
): Promise<QuorumWatch> {
  const members = connectMembers(flags);
  const watch = new QuorumWatch({
    members,
    key: registry.keys.root,
    logger,
    onChange,
    ...(options.boundMs !== undefined ? { boundMs: options.boundMs } : {}),
  });
  if (options.reads) registry.fallback = new MemberReads(members, watch, logger);
  await watch.start();
  return watch;
}

function credentialsOf(flags: EtcdFlags): Pick<IOptions, "credentials"> {
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new ConfigError("etcd-cert", "--etcd-cert and --etcd-key go together (a client certificate and its key)");
  }
  const read = (path: string, field: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(field, `cannot read ${path}: ${(error as Error).message}`);
    }
  };
  if (flags.cert !== undefined && flags.ca === undefined) {
    throw new ConfigError(
      "etcd-ca",
      "is required with a client certificate: the CA that signed etcd's server certificate",
    );
  }
  if (flags.ca === undefined) return {};
  return {
    credentials: {
      rootCertificate: read(flags.ca, "etcd-ca"),
      ...(flags.cert !== undefined && flags.key !== undefined
        ? { certChain: read(flags.cert, "etcd-cert"), privateKey: read(flags.key, "etcd-key") }
        : {}),
    },
  };
}

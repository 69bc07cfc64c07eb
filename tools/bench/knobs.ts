/**
 * The benchmark's knobs, all from LOAM_BENCH_* environment variables (scripts/vm passes them
 * with --env), read in one place so the results file can record exactly what ran.
 */
import { dirname, join } from "node:path";

// Run in this order whatever order they are named in: scale leaves 1,000 volumes in the VG, so it is last.
export const SECTIONS = ["mounted", "storm", "churn", "rpc", "native", "throughput", "cluster-burst", "scale"] as const;
export type Section = (typeof SECTIONS)[number];
/**
 * Sections that need no LVM (real etcd and stand-in engines; loam's capability RPCs against the
 * grpc-go floor): scripts/bench runs them on the host when only they are chosen.
 */
export const HOST_SECTIONS: readonly Section[] = ["native", "cluster-burst"];

export const needsLvm = (sections: readonly Section[]): boolean => sections.some((s) => !HOST_SECTIONS.includes(s));

/** The cluster-burst scenario (tools/bench/cluster-burst.ts). */
export interface ClusterKnobs {
  /** Simulated nodes: node agents over in-memory stand-in engines. */
  nodes: number;
  creates: number;
  /** Concurrent clients, each sending its next CreateVolume when the last one is answered. */
  clients: number;
  /** ClusterController replicas in the bench process, each with its own etcd client; clients take turns. */
  replicas: number;
  /** etcd members: 1 or 3. */
  etcdMembers: number;
  /** Milliseconds each stand-in engine operation takes (standing for lvcreate). */
  delayMs: number;
  /** The nodes' total capacity as a percentage of the bytes the burst asks for. */
  capacityPercent: number;
  placement: "spread" | "binpack";
}

export interface Knobs {
  sections: Section[];
  /** The loam bundle under test. */
  loam: string;
  /** Where the results JSON goes; the SVG plot goes beside it. */
  out: string;
  /** Time to mounted: repetitions of each kind, loam and bare alternating. */
  repeats: number;
  /** Storm: volumes created, staged and published at once. */
  stormVolumes: number;
  /** Churn: create + delete cycles per run. */
  churnCycles: number;
  churnConcurrency: number[];
  /** Scale: how many loam volumes exist while sampling. */
  scales: number[];
  /** Scale: samples per RPC at each scale. */
  scaleSamples: number;
  /** Scale: full ListVolumes walks at each scale (each is one LVM report per page). */
  listSamples: number;
  /** Scale: max_entries of each ListVolumes page. */
  listPageSize: number;
  rpcConcurrency: number;
  rpcSeconds: number;
  /** Native: loads of each capability RPC per server (memory is read after each), and seconds per load. */
  nativeRounds: number;
  nativeSeconds: number;
  /** Native: the V8 flags loam runs with; undefined means the deployed ones (src/deploy/node-runtime.ts). */
  nativeV8Flags?: string[];
  cluster: ClusterKnobs;
  /** When set, loam runs at debug level and its whole log is appended to this file. */
  logFile?: string;
  /** When set, loam writes a V8 CPU profile (.cpuprofile) into this directory when it stops. */
  profileDir?: string;
  /** Commit of the build under test, when the caller knows it (the guest has no git). */
  gitCommit?: string;
}

export class KnobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KnobError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function positiveInteger(env: Env, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new KnobError(`${name}="${text}" is not a positive integer`);
  return value;
}

function nonNegativeInteger(env: Env, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new KnobError(`${name}="${text}" is not a non-negative integer`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const text = env[name];
  if (text === undefined || text === "") return fallback;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new KnobError(`${name}="${text}" is not one of ${allowed.join(", ")}`);
  }
  return text as T;
}

function clusterKnobs(env: Env): ClusterKnobs {
  const members = positiveInteger(env, "LOAM_BENCH_CLUSTER_ETCD_MEMBERS", 1);
  if (members !== 1 && members !== 3) {
    throw new KnobError(`LOAM_BENCH_CLUSTER_ETCD_MEMBERS="${members}" is not 1 or 3`);
  }
  return {
    nodes: positiveInteger(env, "LOAM_BENCH_CLUSTER_NODES", 100),
    creates: positiveInteger(env, "LOAM_BENCH_CLUSTER_CREATES", 2000),
    clients: positiveInteger(env, "LOAM_BENCH_CLUSTER_CLIENTS", 64),
    replicas: positiveInteger(env, "LOAM_BENCH_CLUSTER_REPLICAS", 2),
    etcdMembers: members,
    delayMs: nonNegativeInteger(env, "LOAM_BENCH_CLUSTER_DELAY_MS", 20),
    capacityPercent: positiveInteger(env, "LOAM_BENCH_CLUSTER_CAPACITY_PERCENT", 85),
    placement: oneOf(env, "LOAM_BENCH_CLUSTER_PLACEMENT", ["spread", "binpack"] as const, "spread"),
  };
}

function positiveIntegers(env: Env, name: string, fallback: number[]): number[] {
  const text = env[name];
  if (text === undefined || text === "") return fallback;
  return text.split(",").map((part) => positiveInteger({ [name]: part.trim() }, name, 0));
}

function sections(env: Env): Section[] {
  const text = env.LOAM_BENCH_SECTIONS;
  if (text === undefined || text === "" || text === "all") return [...SECTIONS];
  const chosen = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of chosen) {
    if (!(SECTIONS as readonly string[]).includes(s)) {
      throw new KnobError(`LOAM_BENCH_SECTIONS has unknown section "${s}"; known: ${SECTIONS.join(", ")}`);
    }
  }
  return SECTIONS.filter((s) => chosen.includes(s));
}

export function readKnobs(env: Env, defaults: { loam: string; out: string }): Knobs {
  const chosen = sections(env);
  // Host sections alone write beside the LVM results instead of over them (cluster-burst.json, native.json).
  const out = needsLvm(chosen) ? defaults.out : join(dirname(defaults.out), `${chosen.join("+")}.json`);
  const knobs: Knobs = {
    sections: chosen,
    loam: env.LOAM_BENCH_LOAM || defaults.loam,
    out: env.LOAM_BENCH_OUT || out,
    repeats: positiveInteger(env, "LOAM_BENCH_REPEATS", 6),
    stormVolumes: positiveInteger(env, "LOAM_BENCH_STORM", 32),
    churnCycles: positiveInteger(env, "LOAM_BENCH_CHURN", 200),
    churnConcurrency: positiveIntegers(env, "LOAM_BENCH_CHURN_CONCURRENCY", [1, 8, 32]),
    scales: positiveIntegers(env, "LOAM_BENCH_SCALES", [10, 1000, 5000]).sort((a, b) => a - b),
    scaleSamples: positiveInteger(env, "LOAM_BENCH_SAMPLES", 20),
    listSamples: positiveInteger(env, "LOAM_BENCH_LIST_SAMPLES", 5),
    listPageSize: positiveInteger(env, "LOAM_BENCH_PAGE", 100),
    rpcConcurrency: positiveInteger(env, "LOAM_BENCH_RPC_CONCURRENCY", 32),
    rpcSeconds: positiveInteger(env, "LOAM_BENCH_RPC_SECONDS", 5),
    nativeRounds: positiveInteger(env, "LOAM_BENCH_NATIVE_ROUNDS", 3),
    nativeSeconds: positiveInteger(env, "LOAM_BENCH_NATIVE_SECONDS", 15),
    cluster: clusterKnobs(env),
  };
  if (env.LOAM_BENCH_GIT) knobs.gitCommit = env.LOAM_BENCH_GIT;
  if (env.LOAM_BENCH_LOG) knobs.logFile = env.LOAM_BENCH_LOG;
  if (env.LOAM_BENCH_PROFILE) knobs.profileDir = env.LOAM_BENCH_PROFILE;
  // "none" measures loam without flags (an older build, as it was deployed).
  const flags = env.LOAM_BENCH_NATIVE_V8_FLAGS;
  if (flags) knobs.nativeV8Flags = flags === "none" ? [] : flags.split(/\s+/).filter(Boolean);
  return knobs;
}

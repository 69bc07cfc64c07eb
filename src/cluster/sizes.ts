/**
 * How big the registry is, per top-level prefix (members, ledgers, nodes, volumes, snapshots):
 * keys, and bytes of keys and values. Read in pages of PAGE keys so a large registry never
 * arrives in one response; the controller samples it on the replica that holds the election,
 * every SIZES_PERIOD_MS, for the gauges loam_cluster_registry_keys and _bytes.
 */
import type { Logger } from "../log.js";
import type { Registry } from "./registry.js";

export const SIZES_PERIOD_MS = 60_000;
const PAGE = 1000;

export interface PrefixSize {
  /** The prefix's name under the root: members, ledgers, nodes, volumes, snapshots. */
  prefix: string;
  keys: number;
  bytes: number;
}

export async function registrySizes(registry: Registry, page = PAGE): Promise<PrefixSize[]> {
  const { keys } = registry;
  const prefixes: [string, string][] = [
    ["members", keys.members],
    ["ledgers", keys.ledgers],
    ["nodes", keys.nodes],
    ["volumes", keys.volumeIndexes],
    ["snapshots", keys.snapshotIndexes],
  ];
  const sizes: PrefixSize[] = [];
  for (const [name, prefix] of prefixes) {
    const size = { prefix: name, keys: 0, bytes: 0 };
    const end = prefixEnd(prefix);
    let start = prefix;
    for (;;) {
      const response = await registry.call(`sizing ${prefix}`, () =>
        registry.client.getAll().inRange({ start, end }).limit(page).exec(),
      );
      for (const kv of response.kvs) {
        size.keys++;
        size.bytes += kv.key.length + kv.value.length;
      }
      const last = response.kvs[response.kvs.length - 1];
      if (!response.more || !last) break;
      start = last.key.toString() + "\0";
    }
    sizes.push(size);
  }
  return sizes;
}

/** The first key after every key that starts with `prefix` (prefixes here are ASCII and end in "/"). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** Samples registrySizes on a period while started; `onSample(undefined)` when stopped. */
export class RegistrySizeSampler {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly onSample: (sizes: PrefixSize[] | undefined) => void,
    private readonly logger?: Logger,
    private readonly periodMs = SIZES_PERIOD_MS,
  ) {}

  start(): void {
    if (this.timer) return;
    const sample = (): void => {
      const timer = this.timer;
      registrySizes(this.registry).then(
        (sizes) => {
          if (this.timer === timer) this.onSample(sizes);
        },
        (error: unknown) => this.logger?.debug("sizing the registry failed", { error: String(error) }),
      );
    };
    this.timer = setInterval(sample, this.periodMs);
    this.timer.unref();
    sample();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.onSample(undefined);
  }
}

/**
 * What a `loam csi` subcommand is: its flags and a run that makes one call (or a series of
 * pages) and returns the reply with its human rendering; plus the renderings of the CSI
 * messages several subcommands print.
 */
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { Snapshot, Topology, Volume } from "../../gen/csi/v1/csi_pb.js";
import type { CsiClient } from "../../csi/client.js";
import { keyValues, pairs, sizeWithBytes } from "../csi-output.js";
import { type FlagSpec, type Flags, bool, text } from "./flags.js";

/** What a subcommand produced: the reply (for --json) and its human rendering. */
export interface Outcome {
  schema: DescMessage;
  reply: MessageShape<DescMessage>;
  human: string;
}

export interface Context {
  client: CsiClient;
  flags: Flags;
  timeoutMs: number;
}

export interface Subcommand {
  name: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  run(context: Context): Promise<Outcome>;
}

export async function invoke<M extends GenServiceMethods, K extends keyof M & string>(
  context: Context,
  service: GenService<M>,
  method: K,
  request: MessageInitShape<M[K]["input"]>,
): Promise<{ schema: DescMessage; reply: MessageShape<M[K]["output"]> }> {
  const reply = await context.client.call(service, method, request, { timeoutMs: context.timeoutMs });
  return { schema: service.method[method].output, reply };
}

/**
 * A listing followed across pages from --starting-token (unless --single-page): every page's
 * entries are gathered into the first reply, so --json prints one response, and its
 * next_token is the one left (non-empty only with --single-page).
 */
export async function allPages<R extends { schema: DescMessage; reply: { entries: unknown[]; nextToken: string } }>(
  flags: Flags,
  fetch: (startingToken: string) => Promise<R>,
): Promise<R> {
  const first = await fetch(text(flags, "starting-token") ?? "");
  let token = first.reply.nextToken;
  while (token !== "" && !bool(flags, "single-page")) {
    const page = await fetch(token);
    first.reply.entries.push(...page.reply.entries);
    token = page.reply.nextToken;
  }
  first.reply.nextToken = token;
  return first;
}

export function outcome(result: { schema: DescMessage; reply: unknown }, human: string): Outcome {
  return { schema: result.schema, reply: result.reply as MessageShape<DescMessage>, human };
}

// ---------------------------------------------------------------- rendering

export function topologies(list: readonly Topology[]): string {
  return list.length === 0 ? "-" : list.map((t) => pairs(t.segments)).join("; ");
}

export function volumeBlock(volume: Volume | undefined): string {
  if (!volume) return "(no volume in the reply)";
  const source = volume.contentSource?.type;
  return keyValues([
    ["volume id", volume.volumeId],
    ["capacity", sizeWithBytes(volume.capacityBytes)],
    ["topology", topologies(volume.accessibleTopology)],
    ["context", pairs(volume.volumeContext)],
    [
      "source",
      source?.case === "snapshot"
        ? `snapshot ${source.value.snapshotId}`
        : source?.case === "volume"
          ? `volume ${source.value.volumeId}`
          : undefined,
    ],
  ]);
}

export function snapshotBlock(snapshot: Snapshot | undefined): string {
  if (!snapshot) return "(no snapshot in the reply)";
  return keyValues([
    ["snapshot id", snapshot.snapshotId],
    ["source volume", snapshot.sourceVolumeId],
    ["size", sizeWithBytes(snapshot.sizeBytes)],
    ["ready to use", String(snapshot.readyToUse)],
    [
      "created",
      snapshot.creationTime ? new Date(Number(snapshot.creationTime.seconds) * 1000).toISOString() : undefined,
    ],
  ]);
}

export function enumName(values: Record<string | number, string | number>, value: number): string {
  const name = values[value];
  return typeof name === "string" ? name : `UNKNOWN(${value})`;
}

/**
 * What both Controller services (a node's, controller.ts, and cluster mode's central one,
 * cluster-controller.ts) put in and take out of CSI messages: snapshots, content sources,
 * and the signed paging tokens of ListVolumes and ListSnapshots.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { SnapshotSchema, VolumeContentSource, VolumeContentSourceSchema } from "../gen/csi/v1/csi_pb.js";
import type {
  ValidateVolumeCapabilitiesRequest,
  ValidateVolumeCapabilitiesResponseSchema,
} from "../gen/csi/v1/csi_pb.js";
import { aborted, invalidArgument } from "../volumes/errors.js";
import type { ContentSource } from "../volumes/metadata.js";
import { parseParameters } from "../volumes/parameters.js";
import { required, volumeUses } from "./validate.js";

/** What a snapshot message says, from either service's snapshot. */
export interface SnapshotFacts {
  id: string;
  sourceVolumeId: string;
  sizeBytes: number;
  createdAt: Date;
  readyToUse: boolean;
}

/**
 * One page of a listing sorted by id: the entries after the token's id, at most maxEntries
 * (0: all), and the token for the next page ("" on the last).
 */
export function page<T extends { id: string }>(
  entries: readonly T[],
  maxEntries: number,
  startingToken: string,
  tokens: PageTokens,
): { page: T[]; nextToken: string } {
  if (maxEntries < 0) throw invalidArgument(`max_entries must not be negative (got ${maxEntries})`);
  const after = startingToken ? tokens.open(startingToken) : undefined;
  const start = after === undefined ? 0 : entries.findIndex((e) => e.id > after);
  const rest = start < 0 ? [] : entries.slice(start);
  const result = maxEntries > 0 ? rest.slice(0, maxEntries) : rest;
  const last = result.at(-1);
  return { page: result, nextToken: last && result.length < rest.length ? tokens.issue(last.id) : "" };
}

export function toCsiSnapshot(snapshot: SnapshotFacts): MessageInitShape<typeof SnapshotSchema> {
  return {
    snapshotId: snapshot.id,
    sourceVolumeId: snapshot.sourceVolumeId,
    sizeBytes: BigInt(snapshot.sizeBytes),
    creationTime: timestampFromDate(snapshot.createdAt),
    readyToUse: snapshot.readyToUse,
  };
}

export function toCsiSource(source: ContentSource): MessageInitShape<typeof VolumeContentSourceSchema> {
  return source.kind === "snapshot"
    ? { type: { case: "snapshot", value: { snapshotId: source.id } } }
    : { type: { case: "volume", value: { volumeId: source.id } } };
}

export function contentSourceOf(source: VolumeContentSource | undefined): ContentSource | undefined {
  switch (source?.type.case) {
    case undefined:
      return undefined;
    case "snapshot":
      return {
        kind: "snapshot",
        id: required(source.type.value.snapshotId, "volume_content_source.snapshot.snapshot_id"),
      };
    case "volume":
      return { kind: "volume", id: required(source.type.value.volumeId, "volume_content_source.volume.volume_id") };
  }
}

/**
 * ListVolumes tokens: the id after which the next page starts, signed with a key of this
 * process. A token we did not issue (or one from before a restart) is ABORTED, which
 * tells the caller to start the listing again.
 */
export class PageTokens {
  private readonly key = randomBytes(32);

  issue(afterId: string): string {
    const body = Buffer.from(afterId).toString("base64url");
    return `${body}.${this.sign(body)}`;
  }

  open(token: string): string {
    const [body, signature, extra] = token.split(".");
    if (body && signature && extra === undefined && token.length < 1024) {
      const expected = Buffer.from(this.sign(body));
      const given = Buffer.from(signature);
      if (expected.length === given.length && timingSafeEqual(expected, given)) {
        return Buffer.from(body, "base64url").toString();
      }
    }
    throw aborted("starting_token was not issued by this driver (or it restarted since); start the listing again");
  }

  private sign(body: string): string {
    return createHmac("sha256", this.key).update(body).digest("base64url").slice(0, 22);
  }
}

/**
 * ValidateVolumeCapabilities' answer for a volume that exists: confirmed, or a message saying
 * what is not supported. An unsupported capability is an answer here, not an error: the caller
 * asked whether it is supported.
 */
export function confirmCapabilities(
  request: ValidateVolumeCapabilitiesRequest,
): MessageInitShape<typeof ValidateVolumeCapabilitiesResponseSchema> {
  try {
    volumeUses(request.volumeCapabilities);
    parseParameters(request.parameters);
  } catch (error) {
    return { message: error instanceof Error ? error.message : String(error) };
  }
  return {
    confirmed: {
      volumeContext: request.volumeContext,
      volumeCapabilities: request.volumeCapabilities,
      parameters: request.parameters,
      mutableParameters: {},
    },
    message: "",
  };
}

/**
 * Table-driven CSI tests: one row is a request and what must come back, either a reply that
 * passes the row's checks or a gRPC code with a fragment of the message.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { type CsiClient, CsiCallError } from "../../src/csi/client.js";
import { VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";

export interface RpcRow<Request, Reply> {
  name: string;
  request: Request;
  /** Runs before the request (make what the row needs). */
  before?: () => Promise<unknown>;
  /** The failure expected: its gRPC code and a pattern its message must match. */
  code?: status;
  message?: RegExp;
  /** Checks on the reply when the call is expected to succeed. */
  reply?: (reply: Reply) => void;
}

type Methods<S> = S extends GenService<infer M> ? M : never;
/** The plain-object form of a request, so rows can spread and override one. */
export type RequestOf<S extends GenService<GenServiceMethods>, K extends keyof Methods<S>> = Exclude<
  MessageInitShape<Methods<S>[K]["input"]>,
  MessageShape<Methods<S>[K]["input"]>
>;
export type ReplyOf<S extends GenService<GenServiceMethods>, K extends keyof Methods<S>> = MessageShape<
  Methods<S>[K]["output"]
>;
export type Row<S extends GenService<GenServiceMethods>, K extends keyof Methods<S>> = RpcRow<
  RequestOf<S, K>,
  ReplyOf<S, K>
>;

/** Sends the row's request and checks the outcome against the row. */
export async function checkRow<M extends GenServiceMethods, K extends keyof M & string>(
  client: CsiClient,
  service: GenService<M>,
  method: K,
  row: RpcRow<MessageInitShape<M[K]["input"]>, MessageShape<M[K]["output"]>>,
): Promise<void> {
  await row.before?.();
  let reply: MessageShape<M[K]["output"]>;
  try {
    reply = await client.call(service, method, row.request);
  } catch (error) {
    if (!(error instanceof CsiCallError)) throw error;
    if (row.code === undefined)
      assert.fail(`${row.name}: expected success, got ${status[error.code]}: ${error.details}`);
    assert.equal(status[error.code], status[row.code], `${row.name}: wrong code for "${error.details}"`);
    if (row.message) assert.match(error.details, row.message, row.name);
    return;
  }
  if (row.code !== undefined) assert.fail(`${row.name}: expected ${status[row.code]}, but the call succeeded`);
  row.reply?.(reply);
}

export const mount = (
  fsType = "xfs",
  mode = Mode.SINGLE_NODE_WRITER,
  extra: { mountFlags?: string[]; volumeMountGroup?: string } = {},
) => ({
  accessType: {
    case: "mount" as const,
    value: { fsType, mountFlags: extra.mountFlags ?? [], volumeMountGroup: extra.volumeMountGroup ?? "" },
  },
  accessMode: { mode },
});

export const block = (mode = Mode.SINGLE_NODE_WRITER) => ({
  accessType: { case: "block" as const, value: {} },
  accessMode: { mode },
});

/** Small request builders and assertions shared by the VM test files. */
import assert from "node:assert/strict";
import type { status } from "@grpc/grpc-js";
import { status as Status } from "@grpc/grpc-js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type CreateVolumeRequest,
  type CreateVolumeRequestSchema,
  VolumeCapability_AccessMode_Mode as Mode,
} from "../../src/gen/csi/v1/csi_pb.js";
import { CsiCallError } from "../../src/csi/client.js";
import { MiB } from "../../src/volumes/size.js";

export const mountCapability = (fsType = "xfs", mode = Mode.SINGLE_NODE_WRITER) => ({
  accessType: { case: "mount" as const, value: { fsType, mountFlags: [], volumeMountGroup: "" } },
  accessMode: { mode },
});

export const blockCapability = (mode = Mode.SINGLE_NODE_WRITER) => ({
  accessType: { case: "block" as const, value: {} },
  accessMode: { mode },
});

/** The plain-object form of a CreateVolumeRequest, so tests can spread and override it. */
export type CreateInit = Exclude<MessageInitShape<typeof CreateVolumeRequestSchema>, CreateVolumeRequest>;

export function createRequest(name: string, bytes = 64 * MiB): CreateInit {
  return {
    name,
    capacityRange: { requiredBytes: BigInt(bytes), limitBytes: 0n },
    volumeCapabilities: [mountCapability()],
    parameters: {},
  };
}

/** Asserts that a call fails with this gRPC code and a message matching the pattern. */
export async function rejectsWith(promise: Promise<unknown>, code: status, pattern: RegExp): Promise<CsiCallError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof CsiCallError, `expected a CSI error, got ${String(error)}`);
    assert.equal(Status[error.code], Status[code], `wrong code for "${error.details}"`);
    assert.match(error.details, pattern);
    return error;
  }
  assert.fail(`expected ${Status[code]} matching ${String(pattern)}, but the call succeeded`);
}

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
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Node } from "../../src/gen/csi/v1/csi_pb.js";
import type { CsiClient } from "../../src/csi/client.js";
import { type Harness, KUBELET_DIR } from "./harness.js";

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

/** Paths laid out as kubelet lays them out; kubelet makes the staging directory and the target's parent. */
export function kubeletPaths(name: string): { staging: string; target: string } {
  const staging = join(KUBELET_DIR, "plugins/kubernetes.io/csi/loam.csi.dev", name, "globalmount");
  const podDir = join(KUBELET_DIR, "pods", name, "volumes/kubernetes.io~csi/pvc");
  mkdirSync(staging, { recursive: true });
  mkdirSync(podDir, { recursive: true });
  return { staging, target: join(podDir, "mount") };
}

/** The lines of /proc/self/mountinfo stacked at path, bottom first. */
export function mountLines(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.split(" ")[4] === path);
}

/** NodeStageVolume, then (unless told not to) NodePublishVolume read-write, for each volume and its paths. */
export async function stageAndPublish(
  client: CsiClient,
  volumes: ReadonlyArray<readonly [string, { staging: string; target: string }]>,
  capability: ReturnType<typeof mountCapability> | ReturnType<typeof blockCapability>,
  publish = true,
): Promise<void> {
  for (const [volumeId, p] of volumes) {
    await client.call(Node, "nodeStageVolume", {
      volumeId,
      stagingTargetPath: p.staging,
      volumeCapability: capability,
    });
    if (!publish) continue;
    await client.call(Node, "nodePublishVolume", {
      volumeId,
      stagingTargetPath: p.staging,
      targetPath: p.target,
      volumeCapability: capability,
      readonly: false,
    });
  }
}

/**
 * Loses a PV the way a wiped or replaced disk looks to LVM: its first MiB (label and metadata
 * area) zeroed; the data behind it stays where the LVs' tables point.
 */
export async function wipePvLabel(h: Harness, pv: string): Promise<void> {
  await h.must(["dd", "if=/dev/zero", `of=${pv}`, "bs=1M", "count=1", "oflag=direct", "conv=fsync", "status=none"]);
}

/** Polls until `done` says so; throws naming `what` after `ms`. */
export async function until(what: string, done: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

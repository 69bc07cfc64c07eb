/**
 * Request checks shared by the CSI services: required fields, volume capabilities and
 * topology. Each failure names the field, what was wrong and what is allowed.
 */
import {
  type Topology,
  type VolumeCapability,
  VolumeCapability_AccessMode_Mode as Mode,
} from "../gen/csi/v1/csi_pb.js";
import { invalidArgument } from "../volumes/errors.js";
import {
  type AccessMode,
  type VolumeAccess,
  type VolumeUse,
  checkMountFlags,
  checkMountGroup,
  parseFsType,
  printable,
} from "../volumes/capabilities.js";

export function required<T>(value: T | undefined | null | "", field: string): T {
  if (value === undefined || value === null || value === "") throw invalidArgument(`${field} is required`);
  return value;
}

const MODES: ReadonlyMap<Mode, AccessMode> = new Map([
  [Mode.SINGLE_NODE_WRITER, "single-node-writer"],
  [Mode.SINGLE_NODE_READER_ONLY, "single-node-reader-only"],
  [Mode.SINGLE_NODE_SINGLE_WRITER, "single-node-single-writer"],
  [Mode.SINGLE_NODE_MULTI_WRITER, "single-node-multi-writer"],
]);
const ALLOWED_MODES = [...MODES.keys()].map((m) => Mode[m]).join(", ");

/** Converts one capability; throws INVALID_ARGUMENT for anything loam cannot honour. */
export function volumeUse(capability: VolumeCapability, field: string): VolumeUse {
  const modeValue = capability.accessMode?.mode ?? Mode.UNKNOWN;
  const mode = MODES.get(modeValue);
  if (!mode) throw unsupportedMode(modeValue, field);
  const access = accessOf(capability, field);
  if (!access) throw invalidArgument(`${field}.access_type is required: set either mount or block`);
  return { access, mode };
}

function unsupportedMode(modeValue: Mode, field: string): Error {
  const name = Mode[modeValue] ?? String(modeValue);
  const why = name.startsWith("MULTI_NODE")
    ? "a local LVM volume can only be reached from the node that holds it"
    : "an access mode is required";
  return invalidArgument(`${field}.access_mode ${name} is not supported (${why}); allowed: ${ALLOWED_MODES}`);
}

function accessOf(capability: VolumeCapability, field: string): VolumeAccess | undefined {
  const access = capability.accessType;
  switch (access.case) {
    case "block":
      return { kind: "block" };
    case "mount":
      return {
        kind: "mount",
        fsType: parseFsType(access.value.fsType, `${field}.mount.fs_type`),
        mountFlags: checkMountFlags(access.value.mountFlags, `${field}.mount.mount_flags`),
        mountGroup: checkMountGroup(access.value.volumeMountGroup, `${field}.mount.volume_mount_group`),
      };
    case undefined:
      return undefined;
  }
}

/**
 * The capabilities of a GetCapacity request, which may leave out what does not change
 * capacity: no capability at all (external-provisioner v5), no access mode or no access
 * type (older ones send a bare mount capability with mode UNKNOWN). What is given is still
 * checked: a MULTI_NODE mode or an unknown filesystem is INVALID_ARGUMENT, as in CreateVolume.
 */
export function capacityUses(capabilities: readonly VolumeCapability[], field = "volume_capabilities"): void {
  capabilities.forEach((capability, i) => {
    const modeValue = capability.accessMode?.mode ?? Mode.UNKNOWN;
    if (modeValue !== Mode.UNKNOWN && !MODES.has(modeValue)) throw unsupportedMode(modeValue, `${field}[${i}]`);
    accessOf(capability, `${field}[${i}]`);
  });
}

/**
 * All capabilities of one request; they must agree on block or mount, since one volume is
 * either a raw device or a filesystem (mixed ones are INVALID_ARGUMENT).
 */
export function volumeUses(capabilities: readonly VolumeCapability[], field = "volume_capabilities"): VolumeUse[] {
  if (capabilities.length === 0) throw invalidArgument(`${field} is required (at least one capability)`);
  const uses = capabilities.map((c, i) => volumeUse(c, `${field}[${i}]`));
  const block = uses.findIndex((u) => u.access.kind === "block");
  const mount = uses.findIndex((u) => u.access.kind === "mount");
  if (block >= 0 && mount >= 0) {
    throw invalidArgument(
      `${field}[${block}] asks for block access and ${field}[${mount}] for mount access; ` +
        "a volume is either a raw block device or a filesystem: ask for one of them",
    );
  }
  return uses;
}

/** The one topology segment this node answers for. */
export interface NodeTopology {
  key: string;
  nodeId: string;
}

export function topologyOf(node: NodeTopology): Topology[] {
  return [{ segments: { [node.key]: node.nodeId } } as Topology];
}

/** True when a topology names this node and nothing this node does not have. */
export function isThisNode(topology: Topology, node: NodeTopology): boolean {
  const entries = Object.entries(topology.segments);
  return entries.length > 0 && entries.every(([key, value]) => key === node.key && value === node.nodeId);
}

export function describeTopologies(topologies: readonly Topology[]): string {
  return topologies
    .map(
      (t) =>
        `{${Object.entries(t.segments)
          .map(([k, v]) => `${printable(k)}=${printable(v)}`)
          .join(", ")}}`,
    )
    .join(", ");
}

export function checkInt64NotNegative(value: bigint, field: string): void {
  if (value < 0n) throw invalidArgument(`${field} must not be negative (got ${value})`);
}

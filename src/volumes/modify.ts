/**
 * ControllerModifyVolume's parameters (Kubernetes VolumeAttributesClass): which keys may change
 * on a live volume (the IO limits, docs/iolimits.md), the shaping parameters after a change,
 * and the change recorded in the LV's parameter tag, where the node reads its limits from.
 */
import { printable } from "./capabilities.js";
import type { EngineContext } from "./context.js";
import { invalidArgument, lvmFailure, notFound } from "./errors.js";
import { metadataOf, shapingChange } from "./metadata.js";
import { IO_LIMIT_KEYS, PARAMETER_KEYS, PARAMETERS, checkIoLimits } from "./parameters.js";
import type { CallOptions } from "./volume.js";

const MUTABLE: readonly string[] = IO_LIMIT_KEYS;

/** An absolute limit and its per-GiB form: setting one drops the other. */
const COUNTERPART: Record<string, string> = Object.fromEntries(
  (
    [
      [PARAMETER_KEYS.readIOPS, PARAMETER_KEYS.readIOPSPerGiB],
      [PARAMETER_KEYS.writeIOPS, PARAMETER_KEYS.writeIOPSPerGiB],
      [PARAMETER_KEYS.readBytesPerSecond, PARAMETER_KEYS.readBytesPerSecondPerGiB],
      [PARAMETER_KEYS.writeBytesPerSecond, PARAMETER_KEYS.writeBytesPerSecondPerGiB],
    ] as const
  ).flatMap(([a, b]) => [
    [a, b],
    [b, a],
  ]),
);

/**
 * Checks mutable_parameters: every key must be one that can change in place (INVALID_ARGUMENT
 * naming the others, all of them), and every value allowed for its key.
 */
export function checkMutableParameters(mutable: Readonly<Record<string, string>>, field = "mutable_parameters"): void {
  const keys = Object.keys(mutable);
  if (keys.length === 0) throw invalidArgument(`${field} is empty; name the keys to change (${MUTABLE.join(", ")})`);
  const immutable = keys.filter((k) => !MUTABLE.includes(k));
  if (immutable.length > 0) {
    throw invalidArgument(
      `${field} has key(s) that cannot change on an existing volume: ${immutable.map((k) => `"${printable(k)}"`).join(", ")}; ` +
        `only the IO limits can: ${MUTABLE.join(", ")}`,
    );
  }
  for (const key of keys) {
    const definition = PARAMETERS.find((d) => d.key === key);
    const value = mutable[key] ?? "";
    if (definition?.check && !definition.check(value)) {
      throw invalidArgument(`${field}["${key}"] "${printable(value)}" is not allowed; allowed: ${definition.allowed}`);
    }
  }
}

/** The shaping parameters after the change: named keys set, each one's absolute or per-GiB counterpart dropped. */
export function modifiedShaping(
  current: Readonly<Record<string, string>>,
  mutable: Readonly<Record<string, string>>,
  field = "mutable_parameters",
): Record<string, string> {
  checkMutableParameters(mutable, field);
  const next: Record<string, string> = { ...current };
  for (const [key, value] of Object.entries(mutable)) {
    const other = COUNTERPART[key];
    if (other !== undefined && mutable[other] === undefined) delete next[other];
    next[key] = value;
  }
  checkIoLimits(next, field);
  return next;
}

/**
 * Records new shaping parameters in the volume's parameter tag, in the tag format the volume
 * was made with (metadata.ts, shapingChange: the new tag added, then the old one removed);
 * false when the tags already say so.
 */
export async function setShaping(
  context: EngineContext,
  id: string,
  shaping: Readonly<Record<string, string>>,
  options: CallOptions,
): Promise<boolean> {
  const { found } = await context.lookup(id, options);
  const metadata = found && metadataOf(found.lv);
  if (!found || metadata?.kind !== "volume") throw notFound(`volume ${id} does not exist on this node`);
  const { lv } = found;
  const change = shapingChange(lv, metadata, shaping);
  if (!change) return false;
  try {
    await context.lvm.addTags(lv.vgName, id, [change.add], options);
    if (change.remove.length > 0) await context.lvm.removeTags(lv.vgName, id, change.remove, options);
  } catch (error) {
    context.invalidate();
    throw lvmFailure(error, `recording the new parameters of volume ${id}`);
  }
  const tags = [...lv.tags.filter((tag) => !change.remove.includes(tag)), change.add];
  await context.changed(lv.vgName, { kind: "updated", name: id, patch: { tags }, extents: 0 });
  return true;
}

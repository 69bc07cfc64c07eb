/**
 * Which request strings loam accepts as volume names and ids. These are allow-lists: a
 * string that passes can appear in an LVM tag, an LV name and a log line without quoting.
 */
import { invalidArgument } from "./errors.js";
import { printable } from "./capabilities.js";

/** CSI asks COs to keep names within 128 bytes; Kubernetes' "pvc-<uuid>" is 40. */
export const MAX_NAME_LENGTH = 128;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function checkVolumeName(name: string, field = "name"): string {
  if (name === "") throw invalidArgument(`${field} is required`);
  if (name.length > MAX_NAME_LENGTH) {
    throw invalidArgument(`${field} is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`);
  }
  if (!NAME.test(name)) {
    throw invalidArgument(
      `${field} "${printable(name)}" has characters loam does not accept; allowed: letters, digits, '.', '_' and '-', starting with a letter or digit`,
    );
  }
  return name;
}

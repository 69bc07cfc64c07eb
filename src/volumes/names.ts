/**
 * Which request strings loam accepts as volume names and ids. These are allow-lists: a
 * string that passes can appear in an LVM tag, an LV name and a log line without quoting.
 */
import { invalidArgument } from "./errors.js";
import { printable } from "./capabilities.js";

/** CSI asks COs to keep names within 128 bytes; Kubernetes' "pvc-<uuid>" is 40. */
export const MAX_NAME_LENGTH = 128;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A DNS label: 1-63 lowercase letters, digits and '-', such as a namespace. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/**
 * A device class name is a DNS label. StorageClasses name it in loam.csi.dev/deviceClass;
 * the node config and deploy/values.json define it.
 */
export const DEVICE_CLASS_NAME = DNS_LABEL;

const SUBDOMAIN = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
/** A DNS subdomain such as the CSI driver name loam.csi.dev (callers bound its length). */
export const DNS_SUBDOMAIN = new RegExp(`^${SUBDOMAIN}$`);
/** A Kubernetes object name (PV, PVC, snapshot class ...): a DNS subdomain of at most 253 characters. */
export function isKubernetesObjectName(name: string): boolean {
  return name.length <= 253 && DNS_SUBDOMAIN.test(name);
}
/**
 * A Kubernetes label key, `[dns-subdomain/]name`: the topology key (topology.loam.csi.dev/node)
 * and node selector keys. Callers bound its length.
 */
export const LABEL_KEY = new RegExp(`^(${SUBDOMAIN}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`);

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

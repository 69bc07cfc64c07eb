/**
 * StorageClass parameters (CreateVolume/GetCapacity `parameters`). Every key loam
 * accepts is declared once here, with what it means and what values it allows; the
 * docs' parameter reference is checked against this table. Unknown keys are refused so
 * a typo in a StorageClass fails loudly instead of being silently ignored.
 */
import { invalidArgument } from "./errors.js";
import { printable } from "./capabilities.js";

export interface ParameterDefinition {
  key: string;
  type: "string" | "integer";
  defaultValue: string;
  allowed: string;
  description: string;
  /** Metadata keys describe the claim; they are recorded but never make two requests incompatible. */
  metadata: boolean;
}

const K8S_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export const PARAMETERS: readonly ParameterDefinition[] = [
  {
    key: "csi.storage.k8s.io/pvc/name",
    type: "string",
    defaultValue: "(none)",
    allowed: "a Kubernetes object name",
    description: "Set by external-provisioner with --extra-create-metadata; recorded on the LV for operators.",
    metadata: true,
  },
  {
    key: "csi.storage.k8s.io/pvc/namespace",
    type: "string",
    defaultValue: "(none)",
    allowed: "a Kubernetes namespace name",
    description: "Set by external-provisioner with --extra-create-metadata; recorded on the LV for operators.",
    metadata: true,
  },
  {
    key: "csi.storage.k8s.io/pv/name",
    type: "string",
    defaultValue: "(none)",
    allowed: "a Kubernetes object name",
    description: "Set by external-provisioner with --extra-create-metadata; recorded on the LV for operators.",
    metadata: true,
  },
];

export interface VolumeParameters {
  /** Keys that shape the volume; two requests with the same name must agree on these. */
  shaping: Record<string, string>;
  /** Claim metadata recorded for operators. */
  metadata: Record<string, string>;
}

export function parseParameters(parameters: Readonly<Record<string, string>>, field = "parameters"): VolumeParameters {
  const result: VolumeParameters = { shaping: {}, metadata: {} };
  for (const [key, value] of Object.entries(parameters)) {
    const definition = PARAMETERS.find((d) => d.key === key);
    if (!definition) {
      throw invalidArgument(
        `${field} has unknown key "${printable(key)}"; allowed keys: ${PARAMETERS.map((d) => d.key).join(", ")}`,
      );
    }
    if (definition.metadata) {
      if (!K8S_NAME.test(value)) {
        throw invalidArgument(`${field}["${key}"] "${printable(value)}" is not ${definition.allowed}`);
      }
      result.metadata[key] = value;
    } else {
      result.shaping[key] = value;
    }
  }
  return result;
}

/** A stable text form of the shaping parameters, stored on the LV and compared on retries. */
export function fingerprint(parameters: VolumeParameters): string {
  const keys = Object.keys(parameters.shaping).sort();
  return JSON.stringify(keys.map((k) => [k, parameters.shaping[k]]));
}

/** What a doctor check reports, and what the checks may ask of a host (HostProbe). */
import type { CommandResult } from "../../exec/index.js";
import type { VolumeGroupReport } from "../../lvm/report.js";

export type CheckStatus = "ok" | "warn" | "fail";

export interface Finding {
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it; empty when the check passed. */
  fix: string;
}

/** What the checks may ask of a host. */
export interface HostProbe {
  /** Runs a command (argument vector); undefined when it cannot be started. */
  run(argv: readonly string[], options?: { viaPrefix?: boolean }): Promise<CommandResult | undefined>;
  readText(path: string): Promise<string | undefined>;
  exists(path: string): Promise<boolean>;
  isWritableDir(path: string): Promise<boolean>;
  /** The full path of a program on PATH (and the sbin directories), or undefined. */
  which(program: string): Promise<string | undefined>;
  report(vg: string): Promise<VolumeGroupReport>;
}

export const ok = (check: string, detail: string): Finding => ({ check, status: "ok", detail, fix: "" });

export function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.slice(0, 300) ?? "";
}

/**
 * `loam csi`: a CSI client for operators and tests. Every RPC loam serves is a subcommand
 * with flags; replies print as aligned text, or as protobuf JSON with `--json` so scripts
 * can read them. A failed call exits 1 with `loam csi <rpc>: <CODE>: <message>`.
 *
 * This file dispatches; the flags are in csi/flags.ts and the subcommands, one file per
 * group, in csi/identity.ts, csi/volumes.ts, csi/snapshots.ts and csi/node.ts.
 */
import { parseArgs } from "node:util";
import { toJson } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { CsiCallError, CsiClient } from "../csi/client.js";
import {
  bool,
  DEFAULT_CSI_ENDPOINT,
  flagHelp,
  type Flags,
  GLOBAL_FLAGS,
  text,
  UsageError,
  wholeNumber,
} from "./csi/flags.js";
import { IDENTITY_SUBCOMMANDS } from "./csi/identity.js";
import { NODE_SUBCOMMANDS } from "./csi/node.js";
import { SNAPSHOT_SUBCOMMANDS } from "./csi/snapshots.js";
import type { Subcommand } from "./csi/subcommand.js";
import { VOLUME_SUBCOMMANDS } from "./csi/volumes.js";

const SUBCOMMANDS: Subcommand[] = [
  ...IDENTITY_SUBCOMMANDS,
  ...VOLUME_SUBCOMMANDS,
  ...SNAPSHOT_SUBCOMMANDS,
  ...NODE_SUBCOMMANDS,
];

export const CSI_SUBCOMMANDS: readonly string[] = SUBCOMMANDS.map((s) => s.name);

export const CSI_USAGE = `Usage: loam csi [--endpoint unix:///PATH] [--json] <rpc> [flags]

Calls one CSI RPC on a running loam (or any CSI driver) and prints the reply.

RPCs:
${SUBCOMMANDS.map((s) => `  ${s.name.padEnd(24)}${s.summary}`).join("\n")}

Flags for every RPC:
${flagHelp(GLOBAL_FLAGS)}

Run "loam csi <rpc> --help" for an RPC's flags. Sizes are Kubernetes quantities: Ki/Mi/Gi/Ti/Pi/Ei (binary) or k/M/G/T/P/E (decimal), e.g. 512Mi.
`;

export interface CsiIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
}

const processIo: CsiIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  env: process.env,
};

/** Runs `loam csi ...`; returns the exit status (0 ok, 1 the call failed, 2 bad usage). */
export async function runCsi(args: string[], io: CsiIo = processIo): Promise<number> {
  args = args.map((a) => (a === "-h" ? "--help" : a));
  const name = rpcName(args);
  const subcommand = SUBCOMMANDS.find((s) => s.name === name);
  if (name === undefined || name === "help") {
    io.stdout(CSI_USAGE);
    return name === undefined && !args.includes("--help") && !args.includes("-h") ? 2 : 0;
  }
  if (!subcommand) {
    io.stderr(`loam csi: unknown RPC "${name}"\n\n${CSI_USAGE}`);
    return 2;
  }
  const label = `loam csi ${subcommand.name}`;
  const specs = { ...GLOBAL_FLAGS, ...subcommand.flags };
  let flags: Flags;
  try {
    const options = Object.fromEntries(
      Object.entries(specs).map(([k, s]) => [k, { type: s.type, multiple: s.multiple ?? false }]),
    );
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    if (parsed.positionals.length !== 1)
      throw new UsageError(`unexpected argument "${parsed.positionals.find((p) => p !== name) ?? ""}"`);
    flags = parsed.values as Flags;
  } catch (error) {
    io.stderr(`${label}: ${(error as Error).message}\n\nFlags:\n${flagHelp(specs)}\n`);
    return 2;
  }
  if (bool(flags, "help")) {
    io.stdout(`Usage: loam csi ${subcommand.name} [flags]\n\n${subcommand.summary}\n\nFlags:\n${flagHelp(specs)}\n`);
    return 0;
  }
  const endpoint = text(flags, "endpoint") ?? io.env.CSI_ENDPOINT ?? DEFAULT_CSI_ENDPOINT;
  const client = new CsiClient(endpoint);
  try {
    const timeout = wholeNumber(flags, "timeout", 86_400) ?? 120;
    const result = await subcommand.run({ client, flags, timeoutMs: timeout * 1000 });
    io.stdout(
      bool(flags, "json")
        ? `${JSON.stringify(toJson(result.schema, result.reply, { alwaysEmitImplicit: true }), null, 2)}\n`
        : `${result.human}\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${label}: ${error.message}\n`);
      return 2;
    }
    if (error instanceof CsiCallError) {
      io.stderr(`${label}: ${status[error.code] ?? error.code}: ${error.details}\n`);
      return 1;
    }
    io.stderr(`${label}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    client.close();
  }
}

/** The first word that is neither a flag nor a string flag's value: the RPC to call. */
function rpcName(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const word = args[i] ?? "";
    if (!word.startsWith("-")) return word;
    const flag = word.replace(/^--?/, "");
    if (flag.includes("=")) continue;
    const spec = GLOBAL_FLAGS[flag] ?? SUBCOMMANDS.map((s) => s.flags[flag]).find((f) => f !== undefined);
    if (spec?.type === "string") i++;
  }
  return undefined;
}

/**
 * RPC overhead: the grpc-go client (test/go/csi-client, built by scripts/build-go-client)
 * hammers one cheap RPC from N goroutines over one connection, as a sidecar would.
 */
import { access } from "node:fs/promises";
import { must } from "./lab.js";
import { ENDPOINT } from "./loam-process.js";

// The cheap one first: a Probe load leaves LVM reports running in loam after the client stops.
export const LOAD_RPCS = ["NodeGetCapabilities", "Probe"] as const;

export interface LoadResult {
  rpc: string;
  concurrency: number;
  calls: number;
  errors: number;
  seconds: number;
  callsPerSecond: number;
  /** null when no call completed. */
  p50Ms: number | null;
  p99Ms: number | null;
  firstError?: string;
}

export async function rpcLoad(
  client: string,
  rpc: string,
  concurrency: number,
  seconds: number,
  endpoint: string = ENDPOINT,
): Promise<LoadResult> {
  await access(client).catch(() => {
    throw new Error(`${client} is missing: run scripts/build-go-client before the bench`);
  });
  const out = await must([
    client,
    "--endpoint",
    endpoint,
    "--rpc",
    rpc,
    "--concurrency",
    String(concurrency),
    "--duration",
    `${seconds}s`,
    "load",
  ]);
  const line = out.trim().split("\n").pop() ?? "";
  const result = JSON.parse(line) as LoadResult;
  if (result.errors > 0)
    throw new Error(`${rpc}: ${result.errors} of ${result.calls} calls failed: ${result.firstError ?? ""}`);
  return result;
}

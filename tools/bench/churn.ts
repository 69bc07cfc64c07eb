/** Churn: create + delete cycles of small thick volumes, loam at several concurrencies against a bare serial loop. */
import type { CsiClient } from "../../src/csi/client.js";
import { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB, must, timed, VG } from "./lab.js";
import { createInit } from "./requests.js";

// Small enough that churn measures LVM and loam, not zeroing of data.
export const CHURN_BYTES = 64 * MiB;

export interface ChurnResult {
  who: "bare" | "loam";
  label: string;
  concurrency: number;
  cycles: number;
  seconds: number;
  volumesPerSecond: number;
}

export async function loamChurn(client: CsiClient, cycles: number, concurrency: number): Promise<ChurnResult> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cycles) {
      const i = next++;
      const reply = await client.call(
        Controller,
        "createVolume",
        createInit(`bench-churn-c${concurrency}-${i}`, CHURN_BYTES, "thick"),
      );
      await client.call(Controller, "deleteVolume", { volumeId: reply.volume?.volumeId ?? "" });
    }
  };
  const ms = await timed(() => Promise.all(Array.from({ length: concurrency }, worker)));
  return {
    who: "loam",
    label: "loam (CSI)",
    concurrency,
    cycles,
    seconds: ms / 1000,
    volumesPerSecond: cycles / (ms / 1000),
  };
}

export async function bareChurn(cycles: number): Promise<ChurnResult> {
  const ms = await timed(async () => {
    for (let i = 0; i < cycles; i++) {
      await must(["lvcreate", "-y", "-n", `bare_churn_${i}`, "-L", `${CHURN_BYTES / MiB}M`, VG]);
      await must(["lvremove", "-y", `${VG}/bare_churn_${i}`]);
    }
  });
  return {
    who: "bare",
    label: "bare serial lvcreate/lvremove",
    concurrency: 1,
    cycles,
    seconds: ms / 1000,
    volumesPerSecond: cycles / (ms / 1000),
  };
}

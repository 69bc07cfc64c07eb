/**
 * How the long-running commands (`loam node`, `loam controller`) end: on SIGTERM or SIGINT the
 * server stops taking calls and waits for those in flight up to the grace period, then the
 * command's own resources are released.
 */
import type { RunningServer } from "../csi/server.js";
import type { Logger } from "../log.js";

export function untilSignalled(
  server: RunningServer,
  graceSeconds: number,
  logger: Logger,
  release: () => Promise<void>,
): Promise<number> {
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      logger.info("stopping", { signal, graceSeconds });
      server.stop(graceSeconds * 1000).then(
        async () => {
          await release();
          resolve(0);
        },
        (error: unknown) => {
          logger.error("stop failed", { error });
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

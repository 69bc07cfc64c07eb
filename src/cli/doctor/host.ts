/** The real host behind doctor's HostProbe: commands, files, PATH lookup and LVM reports. */
import { access, constants, readFile, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { CommandRunner } from "../../exec/index.js";
import { Lvm } from "../../lvm/lvm.js";
import type { HostProbe } from "./findings.js";

/** The real host, with LVM commands (and LVM's helpers) behind the configured prefix. */
export function realHost(prefix: readonly string[]): HostProbe {
  const plain = new CommandRunner({ defaultTimeoutMs: 30_000 });
  const prefixed = new CommandRunner({ defaultTimeoutMs: 30_000, prefix });
  const lvm = new Lvm(prefixed);
  return {
    run: async (argv, options) => {
      try {
        return await (options?.viaPrefix ? prefixed : plain).run(argv);
      } catch {
        return undefined;
      }
    },
    readText: (path) => readFile(path, "utf8").catch(() => undefined),
    exists: (path) =>
      stat(path).then(
        () => true,
        () => false,
      ),
    isWritableDir: async (path) => {
      const info = await stat(path).catch(() => undefined);
      if (!info?.isDirectory()) return false;
      return access(path, constants.W_OK).then(
        () => true,
        () => false,
      );
    },
    which: async (program) => {
      const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"].filter(
        Boolean,
      );
      for (const dir of dirs) {
        const path = join(dir, program);
        if (
          await access(path, constants.X_OK).then(
            () => true,
            () => false,
          )
        )
          return path;
      }
      return undefined;
    },
    report: (vg) => lvm.report(vg),
  };
}

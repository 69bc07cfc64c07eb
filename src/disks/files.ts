/**
 * Where the disk inventory reads the host's files (sysfs, udev's database, mountinfo, swaps):
 * the live filesystem, or a recorded set of files for the host tests (test/fixtures/disks/).
 */
import { readFile, readdir } from "node:fs/promises";

export interface HostFiles {
  /** A file's text, or undefined when it is absent or unreadable. */
  read(path: string): Promise<string | undefined>;
  /** The names in a directory, or [] when it is absent. */
  list(path: string): Promise<string[]>;
}

/** The running host's files. */
export const liveFiles: HostFiles = {
  read: async (path) => {
    try {
      return await readFile(path, "utf8");
    } catch {
      return undefined;
    }
  },
  list: async (path) => {
    try {
      return (await readdir(path)).sort();
    } catch {
      return [];
    }
  },
};

/**
 * Files recorded as a path → content map. A directory exists when some recorded path lies
 * under it; an empty directory (a disk without holders) is recorded as `path/` with content "".
 */
export function recordedFiles(files: Readonly<Record<string, string>>): HostFiles {
  const paths = Object.keys(files);
  return {
    read: (path) => Promise.resolve(files[path]),
    list: (path) => {
      const prefix = path.endsWith("/") ? path : `${path}/`;
      const names = new Set<string>();
      for (const p of paths) {
        if (!p.startsWith(prefix)) continue;
        const first = p.slice(prefix.length).split("/")[0];
        if (first) names.add(first);
      }
      return Promise.resolve([...names].sort());
    },
  };
}

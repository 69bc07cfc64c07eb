/** Doctor's filesystem checks: the mkfs, grow, probe and cryptsetup programs stage and expand run. */
import { type CheckStatus, type Finding, type HostProbe, ok } from "./findings.js";

interface FilesystemTool {
  program: string;
  status: CheckStatus;
  purpose: string;
  pkg: string;
}

const TOOLS: FilesystemTool[] = [
  { program: "mkfs.xfs", status: "fail", purpose: "makes xfs filesystems (the default fsType)", pkg: "xfsprogs" },
  { program: "xfs_growfs", status: "fail", purpose: "grows xfs filesystems on expansion", pkg: "xfsprogs" },
  { program: "mkfs.ext4", status: "warn", purpose: "makes ext4 filesystems", pkg: "e2fsprogs" },
  { program: "resize2fs", status: "warn", purpose: "grows ext4 filesystems on expansion", pkg: "e2fsprogs" },
  {
    program: "blkid",
    status: "fail",
    purpose: "finds an existing filesystem before formatting (never format over data)",
    pkg: "util-linux",
  },
  {
    program: "wipefs",
    status: "warn",
    purpose: "wipes what an interrupted format left before formatting again",
    pkg: "util-linux",
  },
  {
    program: "cryptsetup",
    status: "warn",
    purpose: "formats, opens, grows and closes encrypted (LUKS2) volumes; plain volumes never run it",
    pkg: "cryptsetup-bin",
  },
];

export async function checkFilesystemTools(host: HostProbe): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const tool of TOOLS) findings.push(await checkTool(host, tool));
  return findings;
}

async function checkTool(host: HostProbe, tool: FilesystemTool): Promise<Finding> {
  const path = await host.which(tool.program);
  if (path) return ok(tool.program, path);
  return {
    check: tool.program,
    status: tool.status,
    detail: `not found on PATH; loam uses it: it ${tool.purpose}`,
    fix: `install ${tool.pkg}`,
  };
}

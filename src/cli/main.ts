/**
 * The `loam` command: the only place that reads the command line.
 */
import { ConfigError } from "./config.js";
import { COMMIT, VERSION } from "../version.js";

// Each command's module is imported when that command runs: a `loam node` on every node never
// loads (or keeps in memory) the controller's, etcd's or the doctor's code (issue 20).

const USAGE = `Usage: loam <command> [flags]

Commands:
  node       serve CSI (Identity, Controller, Node) for this node's volume group
             (with --cluster-etcd-endpoints: Identity and Node, as an agent of loam controller)
  controller serve CSI Identity and Controller for a cluster, from its registry in etcd
  csi        call one CSI RPC on a running driver (loam csi --help)
  doctor     check this host for what loam needs, with a fix for each problem
  status     show loam's volume groups, thin pools, volumes and snapshots
  disks      find this node's local disks by rules and make its volume group (plan|apply)
  version    print the version

Run "loam <command> --help" for a command's flags.
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "node": {
        const { NODE_USAGE, runNode } = await import("./node.js");
        if (rest.includes("--help") || rest.includes("-h")) {
          process.stdout.write(NODE_USAGE);
          return 0;
        }
        return await runNode(rest);
      }
      case "controller": {
        const { CONTROLLER_USAGE, runController } = await import("./controller.js");
        if (rest.includes("--help") || rest.includes("-h")) {
          process.stdout.write(CONTROLLER_USAGE);
          return 0;
        }
        return await runController(rest);
      }
      case "csi":
        return await (await import("./csi.js")).runCsi(rest);
      case "doctor": {
        const { DOCTOR_USAGE, runDoctor } = await import("./doctor.js");
        if (rest.includes("--help") || rest.includes("-h")) {
          process.stdout.write(DOCTOR_USAGE);
          return 0;
        }
        return await runDoctor(rest);
      }
      case "status": {
        const { STATUS_USAGE, runStatus } = await import("./status.js");
        if (rest.includes("--help") || rest.includes("-h")) {
          process.stdout.write(STATUS_USAGE);
          return 0;
        }
        return await runStatus(rest);
      }
      case "disks":
        return await (await import("./disks.js")).runDisks(rest);
      case "version":
      case "--version":
        process.stdout.write(`loam ${VERSION} (commit ${COMMIT})\n`);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`loam: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`loam: invalid configuration: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`loam: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

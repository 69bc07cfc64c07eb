/**
 * deploy/nomad: the controller job, the node system job and the volume specification example.
 * Nomad is not installable where loam is developed, so these files are never run by Nomad here;
 * this test parses them with HashiCorp's HCL 2 parser (compiled to WebAssembly, in
 * @cdktn/hcl2json, the maintained fork of @cdktf/hcl2json) and checks their structure against
 * what Nomad documents and what loam accepts:
 *  - only field names Nomad's job specification, its Docker driver and its volume specification
 *    define (the lists below, each from its source);
 *  - the csi_plugin id, type and mount_dir of both jobs, and the volume's plugin_id, agree;
 *  - the node job is privileged, has the host's LVM and sysfs mounts, and does not repeat the
 *    mounts Nomad adds to every plugin task itself (Docker refuses two mounts at one path);
 *  - the args name only flags `loam controller` and `loam node` accept, and the node's args and
 *    rendered config.json go through loam's own flag parser and config schema;
 *  - the volume's parameters pass loam's parameter validation, its mount options loam's
 *    allow-lists, its topology uses loam's topology key.
 * The last tests break one field of each file and show the checks refuse it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { NODE_USAGE, loadNodeConfig } from "../../src/cli/node.js";
import type { NodeConfig } from "../../src/cli/config.js";
import { parseParameters } from "../../src/volumes/parameters.js";
import { checkMountFlags, parseFsType } from "../../src/volumes/capabilities.js";

/**
 * The parser, loaded without its type declarations: they reference TypeScript's DOM library,
 * which would then apply to the whole program (and change the types of Node's timers in other
 * files). This is the one function used, as the package declares it (build/bridge.d.ts).
 */
const { parse } = createRequire(import.meta.url)("@cdktn/hcl2json") as {
  parse: (filename: string, contents: string) => Promise<Record<string, unknown>>;
};

// Tests run from the repository root (npm test, scripts/test).
const ROOT = process.cwd();
const DIR = join(ROOT, "deploy", "nomad");
const FILES = {
  controller: "loam-controller.nomad.hcl",
  node: "loam-node.nomad.hcl",
  volume: "volume.hcl",
} as const;

// ---- What Nomad defines -------------------------------------------------------------------

/** The csi_plugin block (job -> group -> task -> csi_plugin), Nomad's job specification. */
const CSI_PLUGIN_KEYS = ["id", "type", "mount_dir", "stage_publish_base_dir", "health_timeout"];
/** The task block's parameters and blocks, Nomad's job specification. */
const TASK_KEYS = [
  "action",
  "affinity",
  "artifact",
  "config",
  "constraint",
  "consul",
  "csi_plugin",
  "dispatch_payload",
  "driver",
  "env",
  "identity",
  "kill_signal",
  "kill_timeout",
  "kind",
  "leader",
  "lifecycle",
  "logs",
  "meta",
  "resources",
  "restart",
  "schedule",
  "scaling",
  "service",
  "shutdown_delay",
  "template",
  "user",
  "vault",
  "volume_mount",
];
/** The Docker driver's task config (taskConfigSpec in Nomad's drivers/docker/config.go). */
const DOCKER_CONFIG_KEYS = [
  "image",
  "advertise_ipv6_address",
  "args",
  "auth",
  "auth_soft_fail",
  "cap_add",
  "cap_drop",
  "command",
  "cpuset_cpus",
  "cpu_hard_limit",
  "cpu_cfs_period",
  "devices",
  "dns_search_domains",
  "dns_options",
  "dns_servers",
  "entrypoint",
  "extra_hosts",
  "force_pull",
  "group_add",
  "healthchecks",
  "hostname",
  "init",
  "interactive",
  "ipc_mode",
  "ipv4_address",
  "ipv6_address",
  "isolation",
  "labels",
  "load",
  "logging",
  "mac_address",
  "memory_hard_limit",
  "mount",
  "mounts",
  "network_aliases",
  "network_mode",
  "runtime",
  "pids_limit",
  "pid_mode",
  "ports",
  "port_map",
  "privileged",
  "image_pull_timeout",
  "readonly_rootfs",
  "security_opt",
  "shm_size",
  "storage_opt",
  "sysctl",
  "tty",
  "ulimit",
  "uts_mode",
  "userns_mode",
  "volumes",
  "volume_driver",
  "work_dir",
];
/** The Docker driver's mount block (mountBodySpec, same file). */
const DOCKER_MOUNT_KEYS = ["type", "target", "source", "readonly", "bind_options", "tmpfs_options", "volume_options"];
/** Nomad's volume specification for CSI volumes (`nomad volume create`). */
const VOLUME_KEYS = [
  "id",
  "namespace",
  "name",
  "type",
  "plugin_id",
  "snapshot_id",
  "clone_id",
  "capacity_min",
  "capacity_max",
  "capability",
  "mount_options",
  "topology_request",
  "secrets",
  "parameters",
  "context",
];
/** Nomad's access modes, and the CSI mode each becomes; loam serves only single-node ones. */
const NOMAD_ACCESS_MODES: Record<string, string> = {
  "single-node-reader-only": "SINGLE_NODE_READER_ONLY",
  "single-node-writer": "SINGLE_NODE_WRITER",
  "multi-node-reader-only": "MULTI_NODE_READER_ONLY",
  "multi-node-single-writer": "MULTI_NODE_SINGLE_WRITER",
  "multi-node-multi-writer": "MULTI_NODE_MULTI_WRITER",
};
const ATTACHMENT_MODES = ["file-system", "block-device"];
/** Nomad's runtime variables the jobs use (interpolated by the client, not at parse time). */
const RUNTIME_VARIABLES: Record<string, string> = { "node.unique.name": "client-1" };

// ---- What loam accepts --------------------------------------------------------------------

/**
 * `loam controller`'s flags, from the contract of issue 14 (the working brief): src/cli/controller.ts
 * had not landed when this test was written. When its usage text exists, the flags are also
 * checked against it (controllerUsage below).
 */
const CONTROLLER_FLAGS = [
  "--endpoint",
  "--listen",
  "--tls-cert",
  "--tls-key",
  "--tls-client-ca",
  "--etcd-endpoints",
  "--etcd-ca",
  "--etcd-cert",
  "--etcd-key",
  "--driver-name",
  "--placement",
  "--node-timeout-seconds",
  "--election-lease-seconds",
  "--etcd-quorum-bound-seconds",
  "--log-level",
  "--metrics-address",
];
/**
 * The node agent's cluster flags, same contract. Checked against NODE_USAGE once it lists them;
 * until then against this list.
 */
const NODE_CLUSTER_FLAGS = ["--cluster-etcd-endpoints", "--etcd-ca", "--etcd-cert", "--etcd-key"];
const PLACEMENTS = ["spread", "binpack"];

const flagsIn = (usage: string): Set<string> => new Set(usage.match(/--[a-z][a-z-]*/g) ?? []);

/** The usage text src/cli/controller.ts exports, once it exists (it is looked up in the build). */
async function controllerUsage(): Promise<string | undefined> {
  const built = new URL("../../src/cli/controller.js", import.meta.url);
  if (!existsSync(built)) return undefined;
  const module = (await import(built.href)) as Record<string, unknown>;
  return Object.values(module).find(
    (v): v is string => typeof v === "string" && v.startsWith("Usage: loam controller"),
  );
}

// ---- Reading the parsed HCL ---------------------------------------------------------------

type Block = Record<string, unknown>;

function block(value: unknown, where: string): Block {
  assert.ok(value !== null && typeof value === "object" && !Array.isArray(value), `${where} is not a block`);
  return value as Block;
}
/** hcl2json gives every block as a list; these files have one of each unless said otherwise. */
function only(value: unknown, where: string): Block {
  assert.ok(Array.isArray(value), `${where} is missing`);
  assert.equal(value.length, 1, `${where} must appear exactly once`);
  return block(value[0], where);
}
function blocks(value: unknown, where: string): Block[] {
  assert.ok(Array.isArray(value) && value.length > 0, `${where} is missing`);
  return value.map((v, i) => block(v, `${where}[${i}]`));
}
/** A labelled block (job "x", group "y"): its one label and body. */
function labelled(parent: Block, kind: string, where: string): [string, Block] {
  const byLabel = block(parent[kind], `${where}: ${kind}`);
  const labels = Object.keys(byLabel);
  assert.equal(labels.length, 1, `${where} must have exactly one ${kind}, has ${labels.join(", ") || "none"}`);
  const label = labels[0];
  return [label, only(byLabel[label], `${where} ${kind} "${label}"`)];
}
function text(value: unknown, where: string): string {
  assert.equal(typeof value, "string", `${where} must be a string`);
  return value as string;
}
function keysWithin(b: Block, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(b))
    assert.ok(allowed.includes(key), `${where} has "${key}", which Nomad does not define`);
}

async function parseFile(name: string, contents?: string): Promise<Block> {
  return block(await parse(name, contents ?? (await readFile(join(DIR, name), "utf8"))), name);
}

/** The job file's variables and their defaults; every variable needs both a default and a description. */
function variables(file: Block, where: string): Map<string, string> {
  const result = new Map<string, string>();
  const declared = block(file.variable ?? {}, `${where}: variable`);
  for (const [name, value] of Object.entries(declared)) {
    const v = only(value, `${where} variable "${name}"`);
    text(v.description, `${where} variable "${name}" description`);
    result.set(name, text(v.default, `${where} variable "${name}" default`));
  }
  return result;
}

/** Resolves `${var.x}` to its default and Nomad's runtime variables to a sample value; nothing else may remain. */
function resolve(value: string, vars: Map<string, string>, where: string): string {
  const resolved = value.replace(/\$\{([^}]*)\}/g, (whole, name: string) => {
    if (name.startsWith("var.")) {
      const found = vars.get(name.slice(4));
      assert.ok(found !== undefined, `${where}: ${whole} names no declared variable`);
      return found;
    }
    const runtime = RUNTIME_VARIABLES[name];
    assert.ok(runtime !== undefined, `${where}: ${whole} is not a variable this job declares or Nomad provides`);
    return runtime;
  });
  return resolved;
}

interface Task {
  jobType: string;
  task: Block;
  config: Block;
  plugin: Block;
  /** The args as written, `${...}` unresolved. */
  rawArgs: string[];
  /** The args with variables at their defaults and Nomad's runtime variables at sample values. */
  args: string[];
  vars: Map<string, string>;
}

/** The one job, group and Docker task of a plugin job, checked for Nomad's field names. */
function pluginTask(file: Block, where: string): Task {
  const vars = variables(file, where);
  const [, job] = labelled(file, "job", where);
  const [, group] = labelled(job, "group", where);
  const [taskName, task] = labelled(group, "task", where);
  const at = `${where} task "${taskName}"`;
  keysWithin(task, TASK_KEYS, at);
  assert.equal(task.driver, "docker", `${at}: driver`);
  const config = only(task.config, `${at} config`);
  keysWithin(config, DOCKER_CONFIG_KEYS, `${at} config`);
  text(config.image, `${at} config image`);
  resolve(config.image as string, vars, `${at} config image`);
  const plugin = only(task.csi_plugin, `${at} csi_plugin`);
  keysWithin(plugin, CSI_PLUGIN_KEYS, `${at} csi_plugin`);
  text(plugin.id, `${at} csi_plugin id`);
  const mountDir = text(plugin.mount_dir, `${at} csi_plugin mount_dir`);
  assert.ok(mountDir.startsWith("/"), `${at} csi_plugin mount_dir must be an absolute path inside the task`);
  const rawArgs = config.args;
  assert.ok(Array.isArray(rawArgs), `${at} config args is missing`);
  const raw = rawArgs.map((a, i) => text(a, `${at} args[${i}]`));
  const args = raw.map((a, i) => resolve(a, vars, `${at} args[${i}]`));
  return { jobType: text(job.type, `${where} job type`), task, config, plugin, rawArgs: raw, args, vars };
}

/** `--flag=value` args after the subcommand, as a map; every arg must have that form. */
function flagArgs(args: string[], subcommand: string, where: string): Map<string, string> {
  assert.equal(args[0], subcommand, `${where}: the first arg must be the subcommand "${subcommand}"`);
  const flags = new Map<string, string>();
  for (const arg of args.slice(1)) {
    const match = /^(--[a-z][a-z-]*)=(.*)$/s.exec(arg);
    assert.ok(match, `${where}: "${arg}" is not of the form --flag=value`);
    assert.ok(!flags.has(match[1]), `${where}: ${match[1]} is given twice`);
    flags.set(match[1], match[2]);
  }
  return flags;
}

/** The variable a flag's value comes from: the etcd endpoints are the operator's to give, in both jobs alike. */
function variableOf(rawArgs: string[], flag: string, where: string): string {
  const arg = rawArgs.find((a) => a.startsWith(`${flag}=`));
  const match = arg === undefined ? null : /^--[a-z-]+=\$\{var\.([a-z_]+)\}$/.exec(arg);
  assert.ok(match, `${where}: ${flag} must be given as \${var.NAME}, got ${arg ?? "nothing"}`);
  return match[1];
}

function checkEtcdEndpoints(value: string | undefined, where: string): void {
  assert.ok(value, `${where}: no etcd endpoints`);
  for (const endpoint of value.split(",")) {
    const url = new URL(endpoint);
    assert.ok(["http:", "https:"].includes(url.protocol), `${where}: etcd endpoint ${endpoint} is not http(s)`);
  }
}

// ---- The three files ----------------------------------------------------------------------

interface Controller {
  pluginId: string;
  driverName: string;
  topologyKey: string;
  etcdVariable: string;
}

async function checkControllerJob(file: Block): Promise<Controller> {
  const where = FILES.controller;
  const { jobType, plugin, config, args, rawArgs } = pluginTask(file, where);
  assert.equal(jobType, "service", `${where}: the controller is a service job`);
  assert.equal(plugin.type, "controller", `${where}: csi_plugin type`);
  assert.notEqual(config.privileged, true, `${where}: the controller needs no privileges`);
  const flags = flagArgs(args, "controller", where);
  const usage = await controllerUsage();
  const known = usage ? flagsIn(usage) : new Set(CONTROLLER_FLAGS);
  for (const flag of flags.keys()) {
    assert.ok(CONTROLLER_FLAGS.includes(flag), `${where}: loam controller has no flag ${flag}`);
    assert.ok(known.has(flag), `${where}: loam controller's usage text has no flag ${flag}`);
  }
  assert.equal(
    flags.get("--endpoint"),
    `unix://${text(plugin.mount_dir, "mount_dir")}/csi.sock`,
    `${where}: --endpoint`,
  );
  checkEtcdEndpoints(flags.get("--etcd-endpoints"), where);
  const placement = flags.get("--placement");
  if (placement !== undefined) assert.ok(PLACEMENTS.includes(placement), `${where}: --placement ${placement}`);
  const seconds = flags.get("--node-timeout-seconds");
  if (seconds !== undefined) assert.match(seconds, /^[1-9][0-9]*$/, `${where}: --node-timeout-seconds`);
  return {
    pluginId: text(plugin.id, "id"),
    driverName: flags.get("--driver-name") ?? "loam.csi.dev",
    // The controller takes each node's topology from its agent's registration: the node job's key.
    topologyKey: "topology.loam.csi.dev/node",
    etcdVariable: variableOf(rawArgs, "--etcd-endpoints", where),
  };
}

interface NodeJob {
  pluginId: string;
  etcdVariable: string;
  config: NodeConfig;
}

/** Host paths the node plugin must see as the host has them, with why. */
const NODE_HOST_MOUNTS: Record<string, string> = {
  "/run/lvm": "LVM's run directory (lvmetad/lvmpolld sockets, the host's view of LVM)",
  "/run/lock/lvm": "LVM's lock directory: one set of locks per host",
  "/sys": "device attributes for blkid, mkfs and the growers",
};

async function checkNodeJob(file: Block): Promise<NodeJob> {
  const where = FILES.node;
  const { jobType, task, plugin, config, args, rawArgs } = pluginTask(file, where);
  assert.equal(jobType, "system", `${where}: the node plugin is a system job (one per client, drained last)`);
  assert.equal(plugin.type, "node", `${where}: csi_plugin type`);
  assert.equal(config.privileged, true, `${where}: the node plugin must be privileged (mount, mkfs, device nodes)`);
  const mountDir = text(plugin.mount_dir, "mount_dir");
  const base = text(plugin.stage_publish_base_dir, `${where}: csi_plugin stage_publish_base_dir`);
  assert.ok(base.startsWith("/"), `${where}: stage_publish_base_dir must be absolute`);
  assert.ok(
    base !== mountDir && !base.startsWith(`${mountDir}/`),
    `${where}: stage_publish_base_dir cannot be mount_dir or below it (Nomad refuses that)`,
  );

  // Docker mounts: the host's LVM and sysfs, and none where Nomad mounts for the plugin itself.
  const mounts = config.mount === undefined ? [] : blocks(config.mount, `${where} config mount`);
  const targets = new Map<string, Block>();
  for (const [i, mount] of mounts.entries()) {
    keysWithin(mount, DOCKER_MOUNT_KEYS, `${where} config mount[${i}]`);
    const target = text(mount.target, `${where} mount[${i}] target`);
    assert.ok(!targets.has(target), `${where}: two mounts at ${target}`);
    assert.ok(
      ![mountDir, base, "/dev"].includes(target),
      `${where}: Nomad mounts ${target} into every plugin task itself; Docker refuses a second mount there`,
    );
    targets.set(target, mount);
  }
  for (const [path, why] of Object.entries(NODE_HOST_MOUNTS)) {
    const mount = targets.get(path);
    assert.ok(mount, `${where}: no mount of the host's ${path} (${why})`);
    assert.equal(mount.type, "bind", `${where}: ${path} must be a bind mount`);
    assert.equal(mount.source, path, `${where}: ${path} must come from the same host path`);
    assert.notEqual(mount.readonly, true, `${where}: ${path} must be writable`);
  }

  // Flags: the node's own (its usage text) plus the cluster flags of issue 14.
  const flags = flagArgs(args, "node", where);
  const usage = flagsIn(NODE_USAGE);
  const clusterKnown = usage.has("--cluster-etcd-endpoints") ? usage : new Set(NODE_CLUSTER_FLAGS);
  for (const flag of flags.keys()) {
    const known = NODE_CLUSTER_FLAGS.includes(flag) ? clusterKnown.has(flag) : usage.has(flag);
    assert.ok(known, `${where}: loam node has no flag ${flag}`);
  }
  checkEtcdEndpoints(flags.get("--cluster-etcd-endpoints"), where);

  // The config file comes from a template block; loam's own flag parser and schema read it.
  const configPath = flags.get("--config");
  assert.ok(configPath, `${where}: --config is missing`);
  const templates = task.template === undefined ? [] : blocks(task.template, `${where} template`);
  const template = templates.find((t) => `/${String(t.destination)}` === configPath);
  assert.ok(template, `${where}: no template renders ${configPath} (destination ${configPath.slice(1)})`);
  const data = text(template.data, `${where} template data`);
  assert.ok(!data.includes("{{"), `${where}: the config template is static JSON here; checks need updating if not`);
  const scratch = await mkdtemp(join(tmpdir(), "loam-nomad-"));
  let config_: NodeConfig;
  try {
    const file_ = join(scratch, "config.json");
    await writeFile(file_, data);
    const nodeArgs = [...flags]
      .filter(([flag]) => !NODE_CLUSTER_FLAGS.includes(flag))
      .map(([flag, value]) => `${flag}=${flag === "--config" ? file_ : value}`);
    config_ = await loadNodeConfig(nodeArgs);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  assert.equal(config_.endpoint, `unix://${mountDir}/csi.sock`, `${where}: endpoint must be the socket in mount_dir`);
  assert.equal(
    config_.kubeletDir,
    base,
    `${where}: kubeletDir must be stage_publish_base_dir: Nomad's staging and target paths lie under it`,
  );
  assert.equal(config_.nodeId, RUNTIME_VARIABLES["node.unique.name"], `${where}: --node-id is the Nomad node name`);
  if (config_.lvmCommandPrefix.includes("--target=1")) {
    assert.equal(config.pid_mode, "host", `${where}: nsenter --target=1 needs the host's PID namespace (pid_mode)`);
  }
  return {
    pluginId: text(plugin.id, "id"),
    etcdVariable: variableOf(rawArgs, "--cluster-etcd-endpoints", where),
    config: config_,
  };
}

/** Nomad's capacity strings (go-humanize ParseBytes), the units this example may use. */
function capacityBytes(value: string, where: string): number {
  const units: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };
  for (const [i, u] of ["KiB", "MiB", "GiB", "TiB"].entries()) units[u] = 1024 ** (i + 1);
  const match = /^([0-9]+)\s*([A-Za-z]+)$/.exec(value);
  const unit = match ? units[match[2]] : undefined;
  assert.ok(match && unit, `${where} "${value}" is not a size with one of ${Object.keys(units).join(", ")}`);
  return Number(match[1]) * unit;
}

function checkVolume(file: Block, plugin: { id: string; topologyKey: string }): void {
  const where = FILES.volume;
  keysWithin(file, VOLUME_KEYS, where);
  assert.equal(file.type, "csi", `${where}: type`);
  for (const key of ["id", "name"]) text(file[key], `${where}: ${key}`);
  assert.equal(file.plugin_id, plugin.id, `${where}: plugin_id must be the jobs' csi_plugin id`);

  const min = capacityBytes(text(file.capacity_min, `${where}: capacity_min`), `${where}: capacity_min`);
  const max = capacityBytes(text(file.capacity_max, `${where}: capacity_max`), `${where}: capacity_max`);
  assert.ok(min > 0 && min <= max, `${where}: capacity_min must be positive and at most capacity_max`);

  const capabilities = blocks(file.capability, `${where}: capability`);
  for (const [i, capability] of capabilities.entries()) {
    const at = `${where}: capability[${i}]`;
    keysWithin(capability, ["access_mode", "attachment_mode"], at);
    const mode = text(capability.access_mode, `${at} access_mode`);
    assert.ok(mode in NOMAD_ACCESS_MODES, `${at}: ${mode} is not a Nomad access mode`);
    assert.ok(
      mode.startsWith("single-node-"),
      `${at}: ${mode}: a local LV serves one node; loam refuses multi-node modes`,
    );
    assert.ok(ATTACHMENT_MODES.includes(text(capability.attachment_mode, `${at} attachment_mode`)), at);
  }
  if (file.mount_options !== undefined) {
    const options = only(file.mount_options, `${where}: mount_options`);
    keysWithin(options, ["fs_type", "mount_flags"], `${where}: mount_options`);
    assert.ok(
      capabilities.every((c) => c.attachment_mode === "file-system"),
      `${where}: mount_options apply to file-system volumes only`,
    );
    parseFsType(text(options.fs_type ?? "", "fs_type"), `${where}: mount_options fs_type`);
    const flags = options.mount_flags ?? [];
    assert.ok(Array.isArray(flags), `${where}: mount_flags must be a list`);
    checkMountFlags(flags as string[], `${where}: mount_options mount_flags`);
  }

  if (file.topology_request !== undefined) {
    const request = only(file.topology_request, `${where}: topology_request`);
    keysWithin(request, ["required", "preferred"], `${where}: topology_request`);
    const segmentsOf = (kind: string): string[] => {
      if (request[kind] === undefined) return [];
      const topologies = blocks(only(request[kind], `${where}: ${kind}`).topology, `${where}: ${kind} topology`);
      return topologies.map((t, i) => {
        const segments = block(t.segments, `${where}: ${kind} topology[${i}] segments`);
        assert.deepEqual(
          Object.keys(segments),
          [plugin.topologyKey],
          `${where}: ${kind} topology[${i}] must use loam's topology key ${plugin.topologyKey} only`,
        );
        return text(segments[plugin.topologyKey], `${where}: ${kind} topology[${i}] node`);
      });
    };
    const required = segmentsOf("required");
    for (const node of segmentsOf("preferred")) {
      // CSI: with requisite topologies given, every preferred one must be among them.
      assert.ok(required.length === 0 || required.includes(node), `${where}: preferred ${node} is not required`);
    }
  }

  const parameters = block(file.parameters ?? {}, `${where}: parameters`);
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parameters)) values[key] = text(value, `${where}: parameters["${key}"]`);
  parseParameters(values, `${where}: parameters`);
}

async function checkAll(texts: Partial<Record<keyof typeof FILES, string>> = {}): Promise<void> {
  const controller = await checkControllerJob(await parseFile(FILES.controller, texts.controller));
  const node = await checkNodeJob(await parseFile(FILES.node, texts.node));
  assert.equal(node.pluginId, controller.pluginId, "the controller and node jobs must share one csi_plugin id");
  assert.equal(node.etcdVariable, controller.etcdVariable, "both jobs take the etcd endpoints from one variable name");
  assert.equal(node.config.driverName, controller.driverName, "the node and controller must use one driver name");
  assert.equal(node.config.topologyKey, controller.topologyKey, "the node and controller must use one topology key");
  checkVolume(await parseFile(FILES.volume, texts.volume), {
    id: controller.pluginId,
    topologyKey: controller.topologyKey,
  });
}

// ---- Tests --------------------------------------------------------------------------------

describe("deploy/nomad", () => {
  test("the controller job, the node job and the volume specification agree with Nomad and with loam", async () => {
    await checkAll();
  });

  test("the controller is a service job serving the controller plugin on the socket in its mount_dir", async () => {
    const { plugin, args, jobType } = pluginTask(await parseFile(FILES.controller), FILES.controller);
    assert.equal(jobType, "service");
    assert.deepEqual([plugin.id, plugin.type, plugin.mount_dir], ["loam", "controller", "/csi"]);
    assert.ok(args.includes("--endpoint=unix:///csi/csi.sock"));
  });

  test("the node job runs `loam node` in cluster mode on every client, privileged, with the host's LVM", async () => {
    const node = await checkNodeJob(await parseFile(FILES.node));
    assert.equal(node.pluginId, "loam");
    assert.deepEqual(
      node.config.deviceClasses.map((c) => c.name),
      ["thick", "thin"],
    );
  });

  const original = async (name: string): Promise<string> => readFile(join(DIR, name), "utf8");
  const broken = async (name: keyof typeof FILES, from: string, to: string): Promise<string> => {
    const source = await original(FILES[name]);
    assert.ok(source.includes(from), `${FILES[name]} no longer contains ${from}`);
    return source.replace(from, to);
  };

  test("a syntax error in a job file is refused by the parser", async () => {
    const node = (await original(FILES.node)).replace(/}\s*$/, "");
    await assert.rejects(checkAll({ node }), /parse config/);
  });

  test("a wrong csi_plugin type, a plugin id that differs, or a missing privilege is refused", async () => {
    const type = await broken("node", 'type                   = "node"', 'type                   = "monolith"');
    await assert.rejects(checkAll({ node: type }), /csi_plugin type/);
    const id = await broken("volume", 'plugin_id = "loam"', 'plugin_id = "loam-csi"');
    await assert.rejects(checkAll({ volume: id }), /plugin_id must be the jobs' csi_plugin id/);
    const privileged = await broken("node", "\n        privileged = true", "\n        privileged = false");
    await assert.rejects(checkAll({ node: privileged }), /must be privileged/);
  });

  test("a misspelt Nomad field, a flag loam does not have, or a repeated Nomad mount is refused", async () => {
    const field = await broken("controller", "mount_dir      =", "mountdir       =");
    await assert.rejects(checkAll({ controller: field }), /"mountdir", which Nomad does not define/);
    const flag = await broken("controller", '"--etcd-endpoints=', '"--etcd-endpoint=');
    await assert.rejects(checkAll({ controller: flag }), /loam controller has no flag --etcd-endpoint/);
    const nodeFlag = await broken("node", '"--node-id=', '"--nodeid=');
    await assert.rejects(checkAll({ node: nodeFlag }), /loam node has no flag --nodeid/);
    const dev = await broken("node", 'target = "/sys"', 'target = "/dev"');
    await assert.rejects(checkAll({ node: dev }), /Nomad mounts \/dev into every plugin task itself/);
    const lvm = await broken("node", 'source = "/run/lock/lvm"', 'source = "/var/lock/lvm"');
    await assert.rejects(checkAll({ node: lvm }), /\/run\/lock\/lvm must come from the same host path/);
  });

  test("a config that loam node refuses, or a kubeletDir outside Nomad's staging base, is refused", async () => {
    const key = await broken("node", '"logLevel": "info"', '"logLevel": "verbose"');
    await assert.rejects(checkAll({ node: key }), /logLevel/);
    const dir = await broken("node", '"kubeletDir": "/local/csi"', '"kubeletDir": "/var/lib/kubelet"');
    await assert.rejects(checkAll({ node: dir }), /kubeletDir must be stage_publish_base_dir/);
  });

  test("volume parameters, mount flags, access modes and topology loam refuses are refused", async () => {
    const parameter = await broken("volume", '"loam.csi.dev/deviceClass" = "thin"', '"deviceClass" = "thin"');
    await assert.rejects(checkAll({ volume: parameter }), /unknown key "deviceClass"/);
    const placement = await broken(
      "volume",
      '"loam.csi.dev/placement"   = "spread"',
      '"loam.csi.dev/placement" = "random"',
    );
    await assert.rejects(checkAll({ volume: placement }), /placement/);
    const flag = await broken("volume", 'mount_flags = ["noatime"]', 'mount_flags = ["suid"]');
    await assert.rejects(checkAll({ volume: flag }), /does not pass to mount/);
    const mode = await broken("volume", '"single-node-writer"', '"multi-node-multi-writer"');
    await assert.rejects(checkAll({ volume: mode }), /loam refuses multi-node modes/);
    const topology = await broken("volume", '{ "topology.loam.csi.dev/node" = "client-1" }', '{ "rack" = "r1" }');
    await assert.rejects(checkAll({ volume: topology }), /loam's topology key/);
  });
});

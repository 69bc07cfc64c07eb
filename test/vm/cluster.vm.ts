/**
 * Cluster mode end to end on real LVM (issue 14): etcd in the guest (three members), one `loam
 * controller` process and three `loam node --cluster-etcd-endpoints` agents, each on its own
 * volume group on its own scratch disk (the eighth, ninth and tenth), all run from the bundle.
 * Through the controller's socket: volumes placed on each node by requisite topology, one
 * staged and published through its node's own socket, expanded (controller then node), a thin
 * volume snapshotted and restored on its node, GetCapacity per node, ListVolumes, deletes that
 * leave no LV. Then an agent SIGKILLed as soon as a CreateVolume's spec is in etcd: the call
 * ends DEADLINE_EXCEEDED, the restarted agent converges, the retry finds the same volume, LVM
 * has exactly one LV for it and the registry's status says what LVM says. Then garbage
 * collection: LVs made by hand, removed on cl-node-b (gc=delete), reported on cl-node-a
 * (cluster-gc.vm.ts, issue 15). Last, etcd loses quorum under it all (cluster-quorum.vm.ts).
 *
 * Each process starts once (a start costs seconds under TCG); the four start together.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { mkdir, rm, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { Etcd3, type IKeyValue } from "etcd3";
import { CsiClient } from "../../src/csi/client.js";
import { Controller, Identity, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { metadataOf } from "../../src/volumes/metadata.js";
import { MiB } from "../../src/volumes/size.js";
import { EtcdCluster } from "../support/etcd.js";
import { Harness, TOPOLOGY_KEY, repoRoot, vmDisks } from "./harness.js";
import { createRequest, mountCapability, rejectsWith, stageAndPublish } from "./support.js";
import { quorumLossTest } from "./cluster-quorum.vm.js";
import { garbageCollectionTest } from "./cluster-gc.vm.js";

const ROOT = "/run/loam-cluster";
const CONTROLLER_SOCKET = `${ROOT}/controller.sock`;
const NODES = ["cl-node-a", "cl-node-b", "cl-node-c"] as const;
type NodeId = (typeof NODES)[number];
const VGS: Record<NodeId, string> = { "cl-node-a": "loamcla", "cl-node-b": "loamclb", "cl-node-c": "loamclc" };
/** cl-node-c also offers a thin class, for the snapshot and the restore. */
const THIN_NODE: NodeId = "cl-node-c";
const POOL = "pool";
/** How long the controller waits for an agent: short, so the killed agent's call ends soon. */
const NODE_TIMEOUT_SECONDS = 20;
/** How long without a confirmed etcd quorum before the controller refuses metadata changes. */
const QUORUM_BOUND_SECONDS = 8;
const CLASS = "loam.csi.dev/deviceClass";
/** A process start under TCG while others start too: tens of seconds, minutes on a host busy with other work. */
const START_TIMEOUT_MS = 600_000;
/** Garbage collection (cluster-gc.vm.ts): this agent deletes orphan LVs, the others only report; a short grace. */
const GC_DELETE_NODE: NodeId = "cl-node-b";
const GC_RESYNC_SECONDS = 10;
/** How long a process may take to exit on SIGTERM at the end of the group (its grace is 30 s). */
const STOP_MS = 60_000;
const GC_GRACE_SECONDS = 5;

const placeOf = (node: NodeId) => ({
  socket: `${ROOT}/${node}/csi.sock`,
  kubeletDir: `${ROOT}/${node}/kubelet`,
  nodeId: node,
});
const on = (node: NodeId) => ({ requisite: [{ segments: { [TOPOLOGY_KEY]: node } }], preferred: [] });

/** kubelet's paths for a volume below a node's kubelet directory; kubelet makes the staging dir and the target's parent. */
function pathsOn(node: NodeId, name: string): { staging: string; target: string } {
  const k = placeOf(node).kubeletDir;
  const staging = join(k, "plugins/kubernetes.io/csi/loam.csi.dev", name, "globalmount");
  const pod = join(k, "pods", name, "volumes/kubernetes.io~csi/pvc");
  mkdirSync(staging, { recursive: true });
  mkdirSync(pod, { recursive: true });
  return { staging, target: join(pod, "mount") };
}

/** Mount points below a directory, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined && point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

export function clusterTests(): void {
  const disks = vmDisks().slice(7, 10);
  describe(
    "cluster mode: controller and three node agents on etcd",
    { skip: disks.length < 3 && "needs the 8th to 10th scratch disks" },
    () => {
      const agents = new Map<NodeId, Harness>(NODES.map((n) => [n, new Harness(placeOf(n))]));
      // Three agents start at once on the guest's two vCPUs.
      for (const a of agents.values()) a.startTimeoutMs = START_TIMEOUT_MS;
      const agent = (node: NodeId): Harness => agents.get(node) as Harness;
      const sh = agent(NODES[0]);
      let etcd: EtcdCluster | undefined;
      let registry: Etcd3 | undefined;
      let controllerProcess: ChildProcess | undefined;
      let controllerLogs = "";
      let controller: CsiClient;
      const startAgent = (node: NodeId): Promise<void> =>
        agent(node).startLoam([
          "--config",
          `${ROOT}/${node}/config.json`,
          "--cluster-etcd-endpoints",
          (etcd as EtcdCluster).endpoints.join(","),
        ]);

      async function startController(): Promise<void> {
        const child = spawn(
          process.execPath,
          [
            join(repoRoot(), "dist", "loam.mjs"),
            "controller",
            "--etcd-endpoints",
            (etcd as EtcdCluster).endpoints.join(","),
            "--endpoint",
            `unix://${CONTROLLER_SOCKET}`,
            "--metrics-address",
            "",
            "--node-timeout-seconds",
            String(NODE_TIMEOUT_SECONDS),
            // Under TCG on a busy host one quorum check can take seconds; the default bound is 4 s.
            "--etcd-quorum-bound-seconds",
            String(QUORUM_BOUND_SECONDS),
            "--log-level",
            "info",
          ],
          { stdio: ["ignore", "ignore", "pipe"] },
        );
        child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (controllerLogs += chunk));
        controllerProcess = child;
        controller = new CsiClient(`unix://${CONTROLLER_SOCKET}`);
        const deadline = Date.now() + START_TIMEOUT_MS;
        for (;;) {
          try {
            await controller.call(Identity, "probe", {}, { timeoutMs: 2_000 });
            return;
          } catch (error) {
            if (child.exitCode !== null)
              throw new Error(`loam controller exited with ${child.exitCode}:\n${controllerLogs}`);
            if (Date.now() > deadline)
              throw new Error(
                `loam controller did not answer in ${START_TIMEOUT_MS / 1000} s: ${String(error)}\n${controllerLogs}`,
              );
            await sleep(200);
          }
        }
      }

      /** LV names in a node's VG as `lvs` lists them, and the CSI name each carries. */
      async function lvsOn(node: NodeId): Promise<{ name: string; csiName: string | undefined; sizeBytes: number }[]> {
        const { lvs } = await sh.lvm.report(VGS[node]);
        return lvs
          .filter((lv) => !lv.internal && lv.name !== POOL)
          .map((lv) => ({ name: lv.name, csiName: metadataOf(lv)?.name, sizeBytes: lv.sizeBytes }));
      }

      async function capacityOf(node: NodeId, parameters: Record<string, string> = {}): Promise<bigint> {
        const answer = await controller.call(Controller, "getCapacity", {
          volumeCapabilities: [mountCapability("ext4")],
          parameters,
          accessibleTopology: { segments: { [TOPOLOGY_KEY]: node } },
        });
        return answer.availableCapacity;
      }

      before(async () => {
        const started = performance.now();
        await rm(ROOT, { recursive: true, force: true });
        for (const [i, node] of NODES.entries()) {
          await mkdir(placeOf(node).kubeletDir, { recursive: true });
          await sh.must(["vgremove", "-ff", "-y", VGS[node]], { allowFailure: true });
          await sh.must(["pvcreate", "-ff", "-y", disks[i]]);
          await sh.must(["vgcreate", "-y", VGS[node], disks[i]]);
          const classes: object[] = [{ name: "default", volumeGroup: VGS[node], default: true }];
          if (node === THIN_NODE) {
            await sh.lvm.createThinPool({ vg: VGS[node], name: POOL, sizeBytes: 1024 * MiB });
            classes.push({ name: "thin", volumeGroup: VGS[node], type: "thin", thinPool: POOL, overprovisionRatio: 1 });
          }
          await writeFile(
            `${ROOT}/${node}/config.json`,
            JSON.stringify({
              metricsAddress: "",
              deviceClasses: classes,
              gc: node === GC_DELETE_NODE ? "delete" : "report",
              gcGraceSeconds: GC_GRACE_SECONDS,
              // Sweeps (and room reports) every 10 s, not 60: the GC test then waits seconds, not minutes.
              clusterResyncSeconds: GC_RESYNC_SECONDS,
            }),
          );
        }
        const etcdAt = performance.now();
        // Three members: the last test kills one, then two (cluster-quorum.vm.ts).
        etcd = await EtcdCluster.start(3);
        console.log(`# etcd healthy in ${Math.round(performance.now() - etcdAt)} ms`);
        registry = new Etcd3({ hosts: etcd.endpoints });
        const lap = (what: string, since: number): void =>
          console.log(`# ${what} in ${Math.round(performance.now() - since)} ms`);
        lap("three VGs and a thin pool made", started);
        // Four processes, each started once, all at the same time (etcd first: the agents register at start).
        const since = performance.now();
        await Promise.all([
          startController().then(() => lap("loam controller answering", since)),
          ...NODES.map((node) => startAgent(node).then(() => lap(`agent ${node} answering`, since))),
        ]);
        console.log(
          `# cluster fixture (3 VGs, etcd, controller, 3 agents) up in ${Math.round(performance.now() - started)} ms`,
        );
      });

      after(async () => {
        // Each process gets STOP_MS to exit on SIGTERM; one that does not is killed, named and fails the group.
        const hung: string[] = [];
        const since = performance.now();
        controller?.close();
        if (controllerProcess && controllerProcess.exitCode === null) {
          const gone = new Promise((resolve) => controllerProcess?.once("exit", resolve));
          controllerProcess.kill("SIGTERM");
          if (!(await Promise.race([gone.then(() => true), sleep(STOP_MS).then(() => false)]))) {
            hung.push(`controller:\n${controllerLogs.split("\n").slice(-30).join("\n")}`);
            controllerProcess.kill("SIGKILL");
            await gone;
          }
        }
        for (const node of NODES) {
          if (!(await agent(node).stopWithin(STOP_MS)))
            hung.push(`${node}:\n${agent(node).logs.split("\n").slice(-30).join("\n")}`);
        }
        console.log(`# controller and agents stopped in ${Math.round(performance.now() - since)} ms`);
        registry?.close();
        await etcd?.stop();
        console.log(`# etcd stopped, ${Math.round(performance.now() - since)} ms into the teardown`);
        for (const point of mountsUnder(ROOT)) await sh.must(["umount", "-l", point], { allowFailure: true });
        for (const node of NODES) await sh.must(["vgremove", "-ff", "-y", VGS[node]], { allowFailure: true });
        await sh.must(["pvremove", "-ff", "-y", ...disks], { allowFailure: true });
        await sh.must(["wipefs", "-a", ...disks], { allowFailure: true });
        await rm(ROOT, { recursive: true, force: true });
        assert.deepEqual(hung, [], `processes that did not exit within ${STOP_MS} ms of SIGTERM`);
      });

      test("volumes land on each node by topology; stage, publish, expand, snapshot, restore, capacity, list and delete on real LVM", async (t) => {
        const step = (what: string, since: number): void =>
          t.diagnostic(`${what}: ${Math.round(performance.now() - since)} ms`);
        const capacityBefore = new Map<NodeId, bigint>();
        for (const node of NODES) capacityBefore.set(node, await capacityOf(node));

        // One thick volume per node, each asked for by requisite topology.
        let since = performance.now();
        const thick = new Map<NodeId, string>();
        for (const node of NODES) {
          const { volume } = await controller.call(Controller, "createVolume", {
            ...createRequest(`cl-thick-${node}`, 128 * MiB),
            accessibilityRequirements: on(node),
          });
          assert.ok(volume);
          assert.deepEqual(
            volume.accessibleTopology.map((s) => ({ ...s.segments })),
            [{ [TOPOLOGY_KEY]: node }],
          );
          assert.equal(volume.capacityBytes, BigInt(128 * MiB));
          thick.set(node, volume.volumeId);
          const lvs = await lvsOn(node);
          assert.deepEqual(
            lvs.map((lv) => [lv.name, lv.csiName, lv.sizeBytes]),
            [[volume.volumeId, `cl-thick-${node}`, 128 * MiB]],
            `${node}'s VG holds exactly the LV of its volume`,
          );
        }
        step("three thick CreateVolumes, one per node", since);
        for (const node of NODES) {
          assert.equal(
            await capacityOf(node),
            (capacityBefore.get(node) as bigint) - BigInt(128 * MiB),
            `GetCapacity for ${node} drops by its volume's size`,
          );
        }

        // The thin class exists only on THIN_NODE: placement takes it there without topology.
        since = performance.now();
        const thinCapacity = await capacityOf(THIN_NODE, { [CLASS]: "thin" });
        const { volume: source } = await controller.call(Controller, "createVolume", {
          ...createRequest("cl-thin-source", 64 * MiB),
          volumeCapabilities: [mountCapability("ext4")],
          parameters: { [CLASS]: "thin" },
        });
        assert.ok(source);
        assert.deepEqual({ ...source.accessibleTopology[0]?.segments }, { [TOPOLOGY_KEY]: THIN_NODE });
        assert.equal(
          await capacityOf(THIN_NODE, { [CLASS]: "thin" }),
          thinCapacity - BigInt(64 * MiB),
          "the thin class's capacity (ratio 1: the pool less the virtual sizes) drops by the volume's size",
        );
        step("thin CreateVolume", since);

        // Stage and publish it through its node's own socket, write a marker.
        since = performance.now();
        const node = agent(THIN_NODE).client;
        const capability = mountCapability("ext4");
        const p = pathsOn(THIN_NODE, "cl-thin-source");
        await stageAndPublish(node, [[source.volumeId, p]], capability);
        const fd = openSync(join(p.target, "marker"), "w");
        writeSync(fd, "written on cl-node-c through the cluster");
        fsyncSync(fd);
        closeSync(fd);
        step("stage + publish + marker", since);

        // ControllerExpandVolume grows the LV on the owning node; NodeExpandVolume grows the filesystem.
        since = performance.now();
        const fsBefore = await statfs(p.target);
        const grown = await controller.call(Controller, "controllerExpandVolume", {
          volumeId: source.volumeId,
          capacityRange: { requiredBytes: BigInt(192 * MiB), limitBytes: 0n },
          volumeCapability: capability,
        });
        assert.equal(grown.capacityBytes, BigInt(192 * MiB));
        assert.equal(grown.nodeExpansionRequired, true);
        assert.equal((await lvsOn(THIN_NODE)).find((lv) => lv.name === source.volumeId)?.sizeBytes, 192 * MiB);
        const expanded = await node.call(Node, "nodeExpandVolume", {
          volumeId: source.volumeId,
          volumePath: p.target,
          capacityRange: { requiredBytes: BigInt(192 * MiB), limitBytes: 0n },
          volumeCapability: capability,
        });
        assert.equal(expanded.capacityBytes, BigInt(192 * MiB));
        const fsAfter = await statfs(p.target);
        assert.ok(
          fsAfter.blocks * fsAfter.bsize - fsBefore.blocks * fsBefore.bsize > 100 * MiB,
          `the filesystem grew: ${fsBefore.blocks * fsBefore.bsize} -> ${fsAfter.blocks * fsAfter.bsize} bytes`,
        );
        step("ControllerExpandVolume + NodeExpandVolume", since);

        // Snapshot it, restore the snapshot: the restore lands on the source's node and has the marker.
        since = performance.now();
        const { snapshot } = await controller.call(Controller, "createSnapshot", {
          name: "cl-snap",
          sourceVolumeId: source.volumeId,
        });
        assert.ok(snapshot?.readyToUse);
        const { volume: restored } = await controller.call(Controller, "createVolume", {
          ...createRequest("cl-restored", 192 * MiB),
          volumeCapabilities: [capability],
          parameters: { [CLASS]: "thin" },
          volumeContentSource: { type: { case: "snapshot", value: { snapshotId: snapshot.snapshotId } } },
        });
        assert.ok(restored);
        assert.deepEqual({ ...restored.accessibleTopology[0]?.segments }, { [TOPOLOGY_KEY]: THIN_NODE });
        assert.ok((await lvsOn(THIN_NODE)).some((lv) => lv.name === restored.volumeId));
        const r = pathsOn(THIN_NODE, "cl-restored");
        await stageAndPublish(node, [[restored.volumeId, r]], capability);
        assert.equal(readFileSync(join(r.target, "marker"), "utf8"), "written on cl-node-c through the cluster");
        step("CreateSnapshot + restore + stage/publish + marker read back", since);

        // ListVolumes: every volume, each with a normal condition.
        const listed = await controller.call(Controller, "listVolumes", {});
        const expected = [...thick.values(), source.volumeId, restored.volumeId].sort();
        assert.deepEqual(listed.entries.map((e) => e.volume?.volumeId).sort(), expected);
        for (const entry of listed.entries) {
          assert.equal(entry.status?.volumeCondition?.abnormal, false, `${entry.volume?.volumeId} is normal`);
        }

        // Delete everything: the LVs go, the capacity comes back.
        since = performance.now();
        for (const [id, paths] of [
          [restored.volumeId, r],
          [source.volumeId, p],
        ] as const) {
          await node.call(Node, "nodeUnpublishVolume", { volumeId: id, targetPath: paths.target });
          await node.call(Node, "nodeUnstageVolume", { volumeId: id, stagingTargetPath: paths.staging });
        }
        await controller.call(Controller, "deleteVolume", { volumeId: restored.volumeId });
        await controller.call(Controller, "deleteSnapshot", { snapshotId: snapshot.snapshotId });
        await controller.call(Controller, "deleteVolume", { volumeId: source.volumeId });
        for (const id of thick.values()) await controller.call(Controller, "deleteVolume", { volumeId: id });
        step("unpublish, unstage and six deletes", since);
        for (const n of NODES) {
          const left = await sh.must(["lvs", "--noheadings", "-o", "lv_name", VGS[n]]);
          const names = left.stdout
            .split("\n")
            .map((s) => s.trim())
            .filter(Boolean);
          assert.deepEqual(names, n === THIN_NODE ? [POOL] : [], `lvs ${VGS[n]} after the deletes`);
          assert.equal(await capacityOf(n), capacityBefore.get(n), `${n}'s capacity is back`);
        }
        assert.deepEqual((await controller.call(Controller, "listVolumes", {})).entries, []);
        await rejectsWith(
          controller.call(Controller, "createVolume", {
            ...createRequest("cl-nowhere"),
            accessibilityRequirements: on("cl-node-x" as NodeId),
          }),
          status.RESOURCE_EXHAUSTED,
          /no registered node matches the requisite topology/,
        );
      });

      test("an agent SIGKILLed once the spec is in etcd: DEADLINE_EXCEEDED, then the restarted agent converges and the retry finds the same volume", async (t) => {
        const victim: NodeId = "cl-node-a";
        const db = registry as Etcd3;
        const prefix = `/loam/v1/nodes/${victim}/volumes/`;
        const request = { ...createRequest("cl-killed", 96 * MiB), accessibilityRequirements: on(victim) };

        const watcher = await db.watch().prefix(prefix).create();
        let specKey = "";
        const specWritten = new Promise<void>((resolve) =>
          watcher.once("put", (kv: IKeyValue) => {
            specKey = kv.key.toString();
            resolve();
          }),
        );
        const started = performance.now();
        const first = controller.call(Controller, "createVolume", request);
        first.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
        // A call that ends before its spec is written fails the test here instead of waiting for ever.
        await Promise.race([
          specWritten,
          first.then(
            () => assert.fail("CreateVolume answered before its spec was seen"),
            (error: unknown) => assert.fail(`CreateVolume failed before its spec was written: ${String(error)}`),
          ),
        ]);
        const code = await agent(victim).killLoam("SIGKILL");
        await watcher.cancel();
        assert.equal(code, null, "the agent died of the signal");
        const id = specKey.slice(prefix.length);
        t.diagnostic(
          `agent killed ${Math.round(performance.now() - started)} ms after the call; LVs then: ${JSON.stringify(await lvsOn(victim))}`,
        );

        await rejectsWith(first, status.DEADLINE_EXCEEDED, new RegExp(`node ${victim}`));
        t.diagnostic(
          `the call ended DEADLINE_EXCEEDED ${Math.round(performance.now() - started)} ms after it was sent`,
        );

        const restart = performance.now();
        await startAgent(victim);
        t.diagnostic(`agent restarted and answering in ${Math.round(performance.now() - restart)} ms`);
        const { volume } = await controller.call(Controller, "createVolume", request);
        t.diagnostic(`the retry answered, counted from the restart, in ${Math.round(performance.now() - restart)} ms`);
        assert.ok(volume);
        assert.equal(volume.volumeId, id, "the retry returns the volume the first call placed");
        assert.deepEqual({ ...volume.accessibleTopology[0]?.segments }, { [TOPOLOGY_KEY]: victim });

        const lvs = (await lvsOn(victim)).filter((lv) => lv.csiName === "cl-killed");
        assert.deepEqual(
          lvs.map((lv) => lv.name),
          [id],
          "exactly one LV for the volume",
        );
        const statusText = await db.get(`/loam/v1/nodes/${victim}/volume-status/${id}`).string();
        assert.ok(statusText, "the agent wrote the volume's status");
        const recorded = JSON.parse(statusText) as { state: string; sizeBytes: number; generation: number };
        assert.equal(recorded.state, "ready");
        assert.equal(recorded.sizeBytes, lvs[0].sizeBytes, "the registry's size is LVM's");
        assert.equal(Number(volume.capacityBytes), lvs[0].sizeBytes);

        await controller.call(Controller, "deleteVolume", { volumeId: id });
        assert.deepEqual(
          (await lvsOn(victim)).filter((lv) => lv.csiName === "cl-killed"),
          [],
          "the LV is gone after DeleteVolume",
        );
        assert.equal(await db.get(`/loam/v1/volumes/${id}`).string(), null, "the registry forgot the volume");
      });

      garbageCollectionTest({
        deleteNode: GC_DELETE_NODE,
        reportNode: "cl-node-a",
        vgOf: (node) => VGS[node],
        dirOf: (node) => `${ROOT}/${node}`,
        sh: () => sh,
        deviceClass: "default",
      });

      quorumLossTest(
        {
          nodes: NODES,
          etcd: () => etcd as EtcdCluster,
          controller: () => controller,
          nodeClient: (node) => agent(node).client,
          pathsOn,
          lvsOn,
        },
        NODE_TIMEOUT_SECONDS,
      );
    },
  );
}

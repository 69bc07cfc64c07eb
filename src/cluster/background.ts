/**
 * Background work of the controller replicas: it runs on the one replica that holds an etcd
 * election (`<root>/controller/election/leader`, a lease of `leaseSeconds`), so that two
 * replicas never do it at once, and another replica takes over when the holder dies (its
 * lease expires) or resigns.
 *
 * The work today is the reservation sweep: a reservation that no pending work explains (its
 * spec is gone, or the node already reported the spec's generation) is taken out of its
 * ledger after a grace period, so a ledger cannot keep promising bytes away for ever when a
 * record was removed by hand or a future bug drops one. Normally the agent drops each
 * reservation in the same transaction as its outcome, and the sweep finds nothing.
 *
 * On a shorter period (`livenessSeconds`) it marks lost nodes and unmarks returned ones
 * (liveness.ts), and removes the records of tombstones a returned node has acted on
 * (tombstones.ts). A lost node's ledger is left as it is: it is not a candidate, so its
 * reservations block nothing, and its agent rewrites the room when it returns.
 */
import type { Campaign } from "etcd3";
import type { Logger } from "../log.js";
import { markLostNodes } from "./liveness.js";
import {
  LedgerSchema,
  SnapshotSpecSchema,
  SnapshotStatusSchema,
  VolumeSpecSchema,
  VolumeStatusSchema,
} from "./records.js";
import { type Registry, stored } from "./registry.js";
import { sweepTombstones } from "./tombstones.js";

export interface BackgroundOptions {
  registry: Registry;
  /** This replica's name in the election (host name and pid). */
  identity: string;
  logger?: Logger;
  leaseSeconds?: number;
  sweepSeconds?: number;
  /** A reservation younger than this is never swept: its work may be about to start. */
  graceSeconds?: number;
  /** Called on every change of leadership (for the metric). */
  onLeadership?: (leader: boolean) => void;
  /** How often lost nodes are marked and finished tombstones removed. */
  livenessSeconds?: number;
  /** A tombstone's delete the returned node refused is asked again after this long. */
  tombstoneRetrySeconds?: number;
  /** Called after each liveness pass with the number of lost nodes, and with 0 when leadership ends (for the gauge). */
  onLostNodes?: (count: number) => void;
}

/** How long a stop waits for etcd to take the resignation. */
const RESIGN_BOUND_MS = 3000;

/** Resigns, waiting at most `ms`; never rejects (a campaign that cannot resign loses its lease by expiry). */
async function resignWithin(campaign: Campaign, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    campaign.resign().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

export class BackgroundWork {
  private campaign: Campaign | undefined;
  private retry: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  leader = false;
  /** Reservations swept since start (for tests and logs). */
  swept = 0;

  constructor(private readonly options: BackgroundOptions) {}

  start(): void {
    this.stopped = false;
    this.campaignNow();
  }

  /**
   * One campaign at a time. etcd3 may report one failure of a campaign twice (its lease lost,
   * then the campaign's own start failing), and a campaign that failed keeps its lease alive
   * unless resigned: answering every report with a new campaign doubled them each second while
   * etcd was gone (60 live leases after 10 s, measured), and their keepalives kept a stopped
   * controller from exiting. So only the current campaign's first failure counts, the failed
   * campaign is resigned, and exactly one new campaign follows a second later.
   */
  private campaignNow(): void {
    const election = this.options.registry.client
      .namespace(`${this.options.registry.keys.root}/controller/`)
      .election("leader", this.options.leaseSeconds ?? 10);
    const campaign = election.campaign(this.options.identity);
    this.campaign = campaign;
    campaign.on("elected", () => {
      if (campaign !== this.campaign) return;
      this.setLeader(true);
      const every = (this.options.sweepSeconds ?? 30) * 1000;
      this.timer = setInterval(() => void this.sweepOnce().catch(() => undefined), every);
      this.timer.unref();
      const check = (this.options.livenessSeconds ?? 5) * 1000;
      this.livenessTimer = setInterval(() => void this.livenessOnce().catch(() => undefined), check);
      this.livenessTimer.unref();
    });
    campaign.on("error", (error) => {
      if (campaign !== this.campaign) return;
      this.campaign = undefined;
      void resignWithin(campaign, RESIGN_BOUND_MS);
      // Leadership lost (lease expired, etcd unreachable): stop working, campaign again.
      this.options.logger?.warn("controller election lost; campaigning again", { error: String(error) });
      this.stopWork();
      if (this.stopped) return;
      this.retry = setTimeout(() => {
        this.retry = undefined;
        if (!this.stopped) this.campaignNow();
      }, 1000);
      this.retry.unref();
    });
  }

  /** Stops the work and resigns; bounded, so that a controller stops even while etcd is gone (the lease then expires by itself). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    this.stopWork();
    const campaign = this.campaign;
    this.campaign = undefined;
    if (campaign) await resignWithin(campaign, RESIGN_BOUND_MS);
  }

  private stopWork(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.timer = undefined;
    this.livenessTimer = undefined;
    if (this.leader) this.options.onLostNodes?.(0);
    this.setLeader(false);
  }

  private setLeader(leader: boolean): void {
    if (this.leader === leader) return;
    this.leader = leader;
    this.options.logger?.info(
      leader ? "this controller now does the background work" : "background work stopped here",
      {
        identity: this.options.identity,
      },
    );
    this.options.onLeadership?.(leader);
  }

  /** One liveness pass: marks and unmarks lost nodes, then handles tombstones; returns the lost nodes' count. */
  async livenessOnce(): Promise<number> {
    const { registry, logger } = this.options;
    const lost = await markLostNodes(registry, logger);
    this.options.onLostNodes?.(lost);
    await sweepTombstones(registry, (this.options.tombstoneRetrySeconds ?? 60) * 1000, logger);
    return lost;
  }

  /** One sweep of every ledger; returns how many reservations it removed. */
  async sweepOnce(): Promise<number> {
    const { registry } = this.options;
    const keys = registry.keys;
    const [ledgers, nodes] = await Promise.all([registry.range(keys.ledgers), registry.range(keys.nodes)]);
    const pending = new Set<string>();
    const specs = new Map<string, { generation: number }>();
    const done = new Map<string, number>();
    for (const kv of nodes.kvs) {
      const parsed = keys.parseNodeKey(kv.key.toString());
      if (!parsed) continue;
      const kind = parsed.kind === "volumes" || parsed.kind === "volume-status" ? "volume" : "snapshot";
      const at = `${parsed.node}/${kind}/${parsed.id}`;
      if (parsed.kind === "volumes" || parsed.kind === "snapshots") {
        const spec =
          parsed.kind === "volumes" ? stored(VolumeSpecSchema, kv).value : stored(SnapshotSpecSchema, kv).value;
        // A spec that fails validation keeps its reservations: nobody can tell what they are for.
        specs.set(at, { generation: spec?.generation ?? Number.MAX_SAFE_INTEGER });
      } else {
        const status =
          parsed.kind === "volume-status"
            ? stored(VolumeStatusSchema, kv).value
            : stored(SnapshotStatusSchema, kv).value;
        if (status) done.set(at, status.generation);
      }
    }
    for (const [at, spec] of specs) if ((done.get(at) ?? 0) < spec.generation) pending.add(at);
    const cutoff = Date.now() - (this.options.graceSeconds ?? 300) * 1000;
    let removed = 0;
    for (const kv of ledgers.kvs) {
      const node = kv.key.toString().slice(keys.ledgers.length);
      const ledger = stored(LedgerSchema, kv);
      if (!ledger.value) continue;
      const stale = Object.entries(ledger.value.reservations).filter(([name, r]) => {
        const [kind, id] = name.split(":");
        const work = kind === "snapshot" ? "snapshot" : "volume";
        return !pending.has(`${node}/${work}/${id}`) && Date.parse(r.at) < cutoff;
      });
      if (stale.length === 0) continue;
      const reservations = { ...ledger.value.reservations };
      for (const [name] of stale) delete reservations[name];
      const client = registry.client;
      const key = keys.ledger(node);
      const result = await registry.call("sweeping reservations", () =>
        client
          .if(key, "Mod", "==", ledger.modRevision)
          .then(client.put(key).value(registry.encode(LedgerSchema, { ...ledger.value!, reservations })))
          .commit(),
      );
      if (result.succeeded) {
        removed += stale.length;
        this.options.logger?.warn("swept reservations no pending work explains", {
          node,
          reservations: stale.map(([name, r]) => `${name} (${r.bytes} bytes since ${r.at})`),
        });
      }
    }
    this.swept += removed;
    return removed;
  }
}

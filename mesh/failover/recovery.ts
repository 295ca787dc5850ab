/**
 * Recovery: carries out the failover state machine of region-state.ts, which turns detected
 * failures into promotions and new backups. Every event that moves a region is one method here
 * (`serverFailed`, `primaryAcknowledged`, `announce`, ...), and each run dispatches every region that
 * needs work on its state to one function per state (`promotionStep`, `replicationStep`), Redis
 * Sentinel style; every pending step carries a deadline and an abort path.
 *
 * Work is done in priority order (critical regions, then by players) and throttled per server
 * (Apache Helix): a server takes at most `maxTransitionsPerServer` pending promotions and backup
 * syncs at once; the rest wait for a later tick. Availability comes before durability: a run first
 * promotes a backup in every region that lost its primary, then assigns replacement backups.
 * Mesh-wide, one run assigns at most `maxBackupAssignmentsPerTick` replacement backups less its
 * promotions (HDFS bounds each re-replication pass the same way); promotions are never held back,
 * so the tick that fails over a mass failure leaves its new backups to the next ticks.
 */
import { alertNoCapacity, refreshPhase, raiseAlert, resolveAlert, type CoreContext } from './context.ts';
import { chooseCandidate, PlacementPlanner } from './placement.ts';
import { announce, isAnnounced, stateOf, type FailoverEvent, type TransitionTrace } from './region-state.ts';
import { byPriority, type RegionRecord, type ServerRecord } from './topology.ts';
import type { ServerId } from '../base/types.ts';

/** What one run carries from region to region. */
interface Pass {
  readonly nowMs: number;
  /** Pending promotions and backup syncs per server, including those of this run. */
  readonly transitions: Map<ServerId, number>;
  /** The placement planner, built on first use (most runs place nothing). */
  readonly plannerOf: () => PlacementPlanner;
  /** Replacement backups this run may still assign. */
  assignmentsLeft: number;
}

/** Drives every region back to a primary and its backups. */
export class Recovery {
  // The region records themselves, not their ids: a mass failure puts thousands of regions here,
  // and each run would otherwise look every one of them up again. A removed region is forgotten.
  /** Regions that need a decision at the next run. */
  private readonly work = new Set<RegionRecord>();
  /** Regions with a pending deadline (unacknowledged primary or syncing backups). */
  private readonly timed = new Set<RegionRecord>();
  /** Regions short of backups for lack of capacity; retried when capacity appears. */
  private readonly starved = new Set<RegionRecord>();
  private capacityAppeared = false;
  /**
   * Planned hand-offs (rebalance.ts): region -> the confirmed backup that takes its primary over at
   * the next run.
   */
  private readonly handOffs = new Map<RegionRecord, ServerId>();
  /**
   * Planned hand-offs under way: the old primary was made a backup, and the planned backup is
   * promoted once the old primary's lease is over (region -> that backup).
   */
  private readonly handingOver = new Map<RegionRecord, ServerId>();
  /** False during a run that fails a region over or runs in TILT: no planned hand-off then. */
  private handOffsOpen = false;
  /**
   * Regions whose primary was taken away while it may still hold a lease: no backup is promoted
   * there before this instant (the old primary's last lease plus the drift margin).
   */
  private readonly leaseFences = new Map<RegionRecord, number>();
  /** Sees every transition when set (tests only). */
  trace: TransitionTrace | null = null;

  constructor(private readonly ctx: CoreContext) {}

  /** Asks for a decision about a region at the next run. */
  enqueue(region: RegionRecord): void {
    this.work.add(region);
  }

  /** A region removed from the topology needs no decision any more. */
  forget(region: RegionRecord): void {
    this.leaseFences.delete(region);
    this.work.delete(region);
    this.handOffs.delete(region);
    this.handingOver.delete(region);
    this.timed.delete(region);
    this.starved.delete(region);
  }

  /** A server joined, returned or freed room: regions short of backups are retried. */
  capacityChanged(): void {
    this.capacityAppeared = true;
  }

  /** Rebuilds the deadline index after a restart. */
  track(region: RegionRecord): void {
    if (region.deadlineMs !== null || region.syncing.size > 0) this.timed.add(region);
    if (region.phase !== 'active') this.work.add(region);
  }

  /** Number of regions waiting for a decision (for tests and metrics). */
  backlog(): number {
    return this.work.size;
  }

  /**
   * Takes a failed server out of every region it hosts. Its primaries wait for a promotion in the
   * next run; the failover record starts from its last heartbeat. `refreshPhases` false leaves the
   * regions' phases to that run, which refreshes every region it handles: a tick's judging passes
   * false, since its run follows at once, so that a region losing two or three replicas in one
   * tick changes phase once, not once per replica.
   */
  serverFailed(server: ServerRecord, lastHeartbeatAtMs: number, nowMs: number, refreshPhases: boolean): void {
    const regions = refreshPhases ? [...server.hosted] : null;
    const traced = this.trace === null ? null : [...server.hosted].map((region) => ({ region, from: stateOf(region) }));
    this.ctx.topology.evict(server, (region) => {
      const wasPrimary = region.primary === server.id;
      // Only a replica that held the state may bring the region back; a syncing backup did not.
      const heldState = wasPrimary || !region.syncing.has(server.id);
      if (wasPrimary) {
        this.fenceOldLease(region, server.id);
        if (region.failoverId === null && region.lostPrimary === null) {
          region.lostPrimary = { serverId: server.id, failedAtMs: lastHeartbeatAtMs, detectedAtMs: nowMs };
        }
        this.primaryGone(region);
        this.dropSyncingBackups(region);
      }
      if (heldState) this.noteLoss(region, server.id);
      this.work.add(region);
    });
    for (const { region, from } of traced ?? []) this.trace?.(region, from, 'replica_lost', stateOf(region));
    if (regions !== null) for (const region of regions) refreshPhase(this.ctx, region, nowMs);
  }

  /** Starts a graceful hand-off: backups are replaced, primaries handed over without a failure. */
  serverDraining(server: ServerRecord, nowMs: number): void {
    const { topology } = this.ctx;
    for (const region of [...server.hosted]) {
      if (region.primary !== server.id) {
        this.traced(region, 'backup_drained', () => topology.removeBackup(region, server.id));
        refreshPhase(this.ctx, region, nowMs);
      }
      this.work.add(region);
    }
  }

  /** The promoted server's heartbeat carries the new epoch: the failover is complete. */
  primaryAcknowledged(region: RegionRecord, nowMs: number): void {
    this.traced(region, 'primary_ack', () => this.completeFailover(region, nowMs));
    this.work.add(region);
    refreshPhase(this.ctx, region, nowMs);
  }

  private completeFailover(region: RegionRecord, nowMs: number): void {
    region.primaryAcked = true;
    region.deadlineMs = null;
    let recoveryMs: number | null = null;
    if (region.failoverId !== null) {
      const record = this.ctx.metrics.complete(region.failoverId, nowMs);
      recoveryMs = record.recoveryMs;
      region.lastFailoverId = region.failoverId;
      region.failoverId = null;
    }
    region.lostPrimary = null;
    this.ctx.topology.forgetDeparted(region);
    resolveAlert(this.ctx, `failover-stuck:${region.id}`, nowMs);
    const newPrimaryId = region.primary as ServerId;
    this.ctx.outbox.emit({ type: 'failover_completed', regionId: region.id, newPrimaryId, epoch: region.epoch, recoveryMs, seq: 0, atMs: nowMs });
    this.ctx.outbox.changed();
  }

  /**
   * Everything up to `epoch` is durable: a promotion held back until then is announced, and with
   * `nowMs` its acknowledgement deadline starts now (a slow write must not eat the new primary's time).
   */
  announce(region: RegionRecord, epoch: number, nowMs?: number): void {
    if (region.announcedEpoch >= epoch) return;
    this.traced(region, 'epoch_durable', () => announce(region, epoch));
    if (nowMs !== undefined && region.deadlineMs !== null && !region.primaryAcked) {
      region.deadlineMs = Math.max(region.deadlineMs, nowMs + this.ctx.config.promotionAckTimeoutMs);
    }
  }

  /**
   * A server claims an epoch above the region's, or primary at the region's epoch without being the
   * record's primary: this coordinator's record is older than what servers were told (an operator
   * restored an old data file, or a write was lost). It ratchets the epoch up to the claim, so that
   * fencing tokens never go backwards; that epoch is known to servers already, so it is announced at
   * once. Who leads under it is not known here, so the record's primary steps down to a confirmed
   * backup (it keeps its state) and the region waits for a promotion, which takes the most
   * up-to-date backup under the highest epoch seen + 1 (after the restart grace, once every
   * reachable server has reported its epoch). Every claimant of primary meanwhile is told backup.
   */
  ratchetEpoch(region: RegionRecord, claimedEpoch: number, nowMs: number): void {
    this.traced(region, 'epoch_ratchet', () => {
      region.epoch = Math.max(region.epoch, claimedEpoch);
      region.announcedEpoch = region.epoch;
      const primary = region.primary;
      if (primary === null) return;
      this.dropPrimary(region);
      this.ctx.topology.addBackup(region, primary, null);
    });
    this.ctx.outbox.changed();
    this.work.add(region);
    refreshPhase(this.ctx, region, nowMs);
  }

  /** A new backup's heartbeat shows it holds the region. */
  backupConfirmed(region: RegionRecord, serverId: ServerId, nowMs: number): void {
    this.traced(region, 'backup_confirmed', () => {
      region.syncing.delete(serverId);
      region.syncTarget.delete(serverId);
    });
    this.ctx.topology.forgetDeparted(region);
    this.ctx.outbox.emit({ type: 'backup_created', regionId: region.id, backupServerId: serverId, seq: 0, atMs: nowMs });
    this.ctx.outbox.changed();
    refreshPhase(this.ctx, region, nowMs);
  }

  /**
   * A server that held an unavailable region came back with its state: it becomes the primary
   * under a new epoch, which brings the region back.
   */
  readopt(region: RegionRecord, serverId: ServerId, nowMs: number): void {
    if (nowMs < this.leaseFence(region)) {
      // The lost primary may still serve on its lease: the returning replica keeps what it holds as
      // a confirmed backup, and the region is promoted as any other once the lease is over.
      this.traced(region, 'replica_returns', () => this.ctx.topology.addBackup(region, serverId, null));
      this.work.add(region);
    } else {
      this.traced(region, 'replica_returns', () => this.promote(region, serverId, nowMs, new Map()));
    }
    region.formerReplicas = [];
    refreshPhase(this.ctx, region, nowMs);
  }

  /**
   * A server no longer holds what it held of a region as a replica (it was told to drop the region,
   * or given it afresh as a syncing backup): it may no longer bring the region back. The change is
   * persisted like any topology change, so that a restart does not bring the old entry back.
   */
  forgetFormerReplica(region: RegionRecord, serverId: ServerId): void {
    if (!region.formerReplicas.includes(serverId)) return;
    region.formerReplicas = region.formerReplicas.filter((id) => id !== serverId);
    this.ctx.topology.changedRegions.add(region.id);
    this.ctx.outbox.changed();
  }

  /**
   * One pass: expired deadlines first, then every region that needs work, most important first.
   * While the coordinator is in TILT no deadline expires: an acknowledgement that could not be
   * processed during its own stall is no reason to abort a promotion.
   */
  run(nowMs: number, tilted = false): void {
    const promotionsHeld = nowMs < this.ctx.restartGraceUntilMs;
    if (!tilted) this.expireDeadlines(nowMs);
    if (this.capacityAppeared) {
      for (const region of this.starved) this.work.add(region);
      this.starved.clear();
      this.capacityAppeared = false;
    }
    if (this.work.size === 0) return;
    const regions = byPriority(this.work);
    this.work.clear();
    this.handOffsOpen = !tilted && !regions.some((region) => region.primary === null && !this.handingOver.has(region));
    const transitions = this.pendingTransitions();
    const canTake = (id: ServerId) => (transitions.get(id) ?? 0) < this.ctx.config.maxTransitionsPerServer;
    // Failover first, in priority order: promotions take the servers' transition slots before any
    // new backup does, and they use up the run's assignment budget.
    let promotions = 0;
    for (const region of regions) {
      if (promotionsHeld) this.work.add(region);
      else if (this.promotionStep(region, nowMs, transitions)) promotions += 1;
    }
    let planner: PlacementPlanner | null = null;
    const assignmentsLeft = Math.max(0, this.ctx.config.maxBackupAssignmentsPerTick - promotions);
    const pass: Pass = { nowMs, transitions, assignmentsLeft,
      plannerOf: () => (planner ??= new PlacementPlanner(this.ctx.topology, canTake)) };
    for (const region of regions) {
      this.replicationStep(region, pass);
      refreshPhase(this.ctx, region, nowMs);
    }
  }

  /**
   * The first half of a run, by state: a region without a primary gets one (or is given up), one
   * whose primary drains hands it over; true when a backup was promoted.
   */
  private promotionStep(region: RegionRecord, nowMs: number, transitions: Map<ServerId, number>): boolean {
    switch (stateOf(region)) {
      case 'awaiting_promotion':
      case 'unavailable':
        return this.replacePrimary(region, nowMs, transitions, null);
      case 'active':
      case 'under_replicated':
      case 'awaiting_announcement':
      case 'awaiting_ack':
        return this.handOffIfDraining(region, nowMs, transitions);
    }
  }

  /**
   * A primary that drains is replaced like a lost one, without a failure; so is one whose region
   * has a planned hand-off (rebalancing), to the planned backup. True when promoted.
   */
  private handOffIfDraining(region: RegionRecord, nowMs: number, transitions: Map<ServerId, number>): boolean {
    // While no server drains and nothing is planned, a region with a primary keeps it: no lookup (a
    // mass failure's run passes thousands of regions that only lost a backup).
    if (this.ctx.counts.statuses.draining === 0 && this.handOffs.size === 0) return false;
    const primary = this.ctx.topology.servers.get(region.primary as ServerId);
    if (primary !== undefined && primary.status !== 'draining') return this.plannedHandOff(region, primary, nowMs, transitions);
    this.handOffs.delete(region);
    return this.replacePrimary(region, nowMs, transitions, primary ?? null);
  }

  /**
   * A planned hand-off of an active region to a confirmed backup, in two steps. First the old
   * primary becomes a confirmed backup (it keeps the whole state): replies name it backup of the
   * region at once, so no later lease covers the region, and the region is fenced until the lease
   * it holds now is over (its other regions renew that lease, so it is read now, not later).
   * Players' actions are buffered meanwhile. Then, once the fence has passed, the planned backup is
   * promoted under epoch + 1 and announced once durable (replacePrimary). Not a failure: no record.
   * Never returns true: the promotion happens in a later run.
   */
  private plannedHandOff(region: RegionRecord, primary: ServerRecord, nowMs: number, transitions: Map<ServerId, number>): boolean {
    const to = this.handOffs.get(region);
    if (to === undefined || !this.handOffsOpen || stateOf(region) !== 'active') return false;
    // A busy target is not handed to now; the rebalancer asks again.
    if ((transitions.get(to) ?? 0) >= this.ctx.config.maxTransitionsPerServer) return false;
    this.handOffs.delete(region);
    this.traced(region, 'hand_off', () => {
      this.dropPrimary(region);
      this.ctx.topology.addBackup(region, primary.id, null);
    });
    this.handingOver.set(region, to);
    this.ctx.outbox.changed();
    this.work.add(region);
    refreshPhase(this.ctx, region, nowMs);
    return false;
  }

  /** The backup a planned hand-off under way promotes, while it is still a healthy confirmed backup. */
  private plannedCandidate(region: RegionRecord): ServerId | null {
    const to = this.handingOver.get(region);
    if (to === undefined || !region.backups.includes(to) || region.syncing.has(to)) return null;
    return this.ctx.topology.servers.get(to)?.status === 'alive' ? to : null;
  }

  /** The backup a planned hand-off under way of `region` promotes, once its old primary's lease is over. */
  handingOverTo(region: RegionRecord): ServerId | undefined {
    return this.handingOver.get(region);
  }

  /** Asks for a planned hand-off of `region`'s primary to its confirmed backup `to` at the next run. */
  requestHandOff(region: RegionRecord, to: ServerId): void {
    this.handOffs.set(region, to);
    this.work.add(region);
  }

  /** Withdraws a planned hand-off that has not happened yet. */
  cancelHandOff(region: RegionRecord): void {
    this.handOffs.delete(region);
  }

  /**
   * Adds `to` as a syncing backup beyond the region's target: the copy a planned move makes before
   * the hand-off, so that the region never has fewer backups than its target (make before break).
   */
  addMoveTarget(region: RegionRecord, to: ServerId, nowMs: number): void {
    const primarySeq = region.primary === null ? 0 : region.appliedSeq.get(region.primary) ?? 0;
    this.traced(region, 'backup_assigned', () =>
      this.ctx.topology.addBackup(region, to, nowMs + this.ctx.config.backupSyncTimeoutMs, primarySeq));
    this.forgetFormerReplica(region, to);
    this.timed.add(region);
    this.ctx.outbox.changed();
  }

  /** Releases a backup beyond the region's target, once a planned move is done or abandoned. */
  releaseSurplus(region: RegionRecord, backup: ServerId, nowMs: number): void {
    if (region.backups.length <= region.backupTarget || !region.backups.includes(backup)) return;
    this.traced(region, 'backup_released', () => this.ctx.topology.removeBackup(region, backup));
    this.ctx.outbox.changed();
    refreshPhase(this.ctx, region, nowMs);
  }

  /**
   * The second half of a run, by state: a region short of backups gets new ones. A new backup
   * copies the state from the primary, so it is assigned only once there is an acknowledged primary
   * to copy from (the acknowledgement re-queues the region at once).
   */
  private replicationStep(region: RegionRecord, pass: Pass): void {
    if (stateOf(region) === 'under_replicated' && region.backups.length < region.backupTarget) this.fillBackups(region, pass);
  }

  /** Promotes the best backup (true), waits for one, or declares the region unavailable. */
  private replacePrimary(region: RegionRecord, nowMs: number, transitions: Map<ServerId, number>,
    handingOff: ServerRecord | null): boolean {
    const fence = handingOff === null ? this.leaseFence(region) : this.ctx.leases.fenceOf(handingOff.id);
    if (nowMs < fence) {
      // The old primary may still serve: wait for its lease (a draining one is granted none).
      this.work.add(region);
      return false;
    }
    const candidate = this.plannedCandidate(region) ?? chooseCandidate(this.ctx.topology, region);
    const throttled = candidate !== null &&
      (transitions.get(candidate) ?? 0) >= this.ctx.config.maxTransitionsPerServer;
    if (candidate !== null && !throttled) {
      this.traced(region, 'promote', () => {
        if (handingOff !== null) this.dropPrimary(region);
        this.promote(region, candidate, nowMs, transitions);
      });
      this.handingOver.delete(region);
      return true;
    }
    if (candidate !== null || this.hasPromotableLater(region) || handingOff !== null) {
      this.work.add(region);
    } else {
      this.traced(region, 'give_up', () => this.giveUp(region, nowMs));
    }
    return false;
  }

  /** A backup that is suspect (or busy) may still be promoted once it is judged. */
  private hasPromotableLater(region: RegionRecord): boolean {
    return region.backups.some((id) => {
      const server = this.ctx.topology.servers.get(id);
      return server !== undefined && server.status === 'suspect' && !region.syncing.has(id);
    });
  }

  private promote(region: RegionRecord, candidate: ServerId, nowMs: number, transitions: Map<ServerId, number>): void {
    const { topology, metrics, outbox, config } = this.ctx;
    region.epoch += 1;
    topology.promote(region, candidate);
    region.primaryAcked = false;
    region.deadlineMs = nowMs + config.promotionAckTimeoutMs;
    this.timed.add(region);
    transitions.set(candidate, (transitions.get(candidate) ?? 0) + 1);
    const lost = region.lostPrimary;
    if (region.failoverId !== null) {
      metrics.repromote(region.failoverId, candidate, region.epoch, nowMs);
    } else if (lost !== null) {
      region.failoverId = metrics.start({
        regionId: region.id, failedServerId: lost.serverId, newPrimaryId: candidate, critical: region.critical,
        players: region.players, epoch: region.epoch, failedAtMs: lost.failedAtMs, detectedAtMs: lost.detectedAtMs,
        promotedAtMs: nowMs,
      });
    }
    outbox.holdAnnouncement(region.id, region.epoch);
    outbox.emit({
      type: 'failover_initiated', regionId: region.id, failedServerId: lost?.serverId ?? null,
      newPrimaryId: candidate, epoch: region.epoch, seq: 0, atMs: nowMs,
    });
  }

  /** No replica holds the region any more: the failover has failed and operators are told. */
  private giveUp(region: RegionRecord, nowMs: number): void {
    const lost = region.lostPrimary;
    if (region.failoverId !== null) {
      region.lastFailoverId = this.ctx.metrics.fail(region.failoverId, nowMs).id;
      region.failoverId = null;
    } else if (lost !== null) {
      const started = this.ctx.metrics.start({
        regionId: region.id, failedServerId: lost.serverId, newPrimaryId: null, critical: region.critical,
        players: region.players, epoch: region.epoch, failedAtMs: lost.failedAtMs, detectedAtMs: lost.detectedAtMs,
        promotedAtMs: null,
      });
      region.lastFailoverId = this.ctx.metrics.fail(started, nowMs).id;
    }
    region.lostPrimary = null;
    this.dropSyncingBackups(region);
    this.ctx.outbox.changed();
  }

  /**
   * Backups still syncing hold no complete state and have lost the primary they copied from: they
   * can never be promoted, so they are released (the region gets new ones after its failover).
   */
  private dropSyncingBackups(region: RegionRecord): void {
    if (region.syncing.size === 0) return;
    for (const backup of [...region.syncing.keys()]) this.ctx.topology.removeBackup(region, backup);
  }

  /**
   * Assigns replacement backups until the region has its full count, capacity runs out (the region
   * waits for capacity) or this run's assignment budget does (it waits for the next run).
   */
  private fillBackups(region: RegionRecord, pass: Pass): void {
    const { topology, config } = this.ctx;
    const { nowMs, transitions } = pass;
    while (region.backups.length < region.backupTarget) {
      if (pass.assignmentsLeft === 0) {
        this.work.add(region);
        return;
      }
      const planner = pass.plannerOf();
      const chosen = planner.pick(region);
      if (chosen === null) {
        this.starved.add(region);
        alertNoCapacity(this.ctx, region, nowMs);
        return;
      }
      const primarySeq = region.primary === null ? 0 : region.appliedSeq.get(region.primary) ?? 0;
      this.traced(region, 'backup_assigned', () => topology.addBackup(region, chosen, nowMs + config.backupSyncTimeoutMs, primarySeq));
      // A former replica given the region again starts over as a syncing backup: what it once held
      // is gone (it restarted, or dropped the region when it was taken from it), so its claim of the
      // region now proves nothing. It counts as a former replica again only if lost once confirmed.
      this.forgetFormerReplica(region, chosen);
      transitions.set(chosen, (transitions.get(chosen) ?? 0) + 1);
      pass.assignmentsLeft -= 1;
      planner.placed(chosen);
      this.timed.add(region);
      this.ctx.outbox.changed();
    }
  }

  /** Promotions not acknowledged and backups not confirmed in time are aborted and retried. */
  private expireDeadlines(nowMs: number): void {
    for (const region of this.timed) {
      let expired = false;
      // A promotion whose epoch is not durable yet has not been told to anyone: its deadline waits.
      if (region.deadlineMs !== null && region.deadlineMs <= nowMs && !region.primaryAcked && isAnnounced(region)) {
        this.traced(region, 'ack_timeout', () => this.abortPromotion(region, nowMs));
        expired = true;
      }
      let syncing = false;
      for (const [backup, deadlineMs] of [...region.syncing]) {
        if (deadlineMs <= nowMs) {
          this.traced(region, 'sync_timeout', () => this.ctx.topology.removeBackup(region, backup));
          this.work.add(region);
          expired = true;
        } else {
          syncing = true;
        }
      }
      if (region.deadlineMs === null && !syncing) this.timed.delete(region);
      if (expired) refreshPhase(this.ctx, region, nowMs);
    }
  }

  private abortPromotion(region: RegionRecord, nowMs: number): void {
    const serverId = region.primary as ServerId;
    this.ctx.outbox.emit({
      type: 'failover_aborted', regionId: region.id, serverId, epoch: region.epoch,
      reason: `no acknowledgement within ${this.ctx.config.promotionAckTimeoutMs} ms`, seq: 0, atMs: nowMs,
    });
    raiseAlert(this.ctx, {
      dedupKey: `failover-stuck:${region.id}`, severity: 'warning', title: `Failover of ${region.id} is not completing`,
      message: `Server ${serverId} did not acknowledge its promotion to primary of ${region.id} (epoch ` +
        `${region.epoch}) within ${this.ctx.config.promotionAckTimeoutMs} ms; trying the next backup.`,
      subject: { regionId: region.id, serverId },
    }, nowMs);
    this.dropPrimary(region);
    this.dropSyncingBackups(region);
    this.noteLoss(region, serverId);
    this.work.add(region);
  }

  private dropPrimary(region: RegionRecord): void {
    if (region.primary !== null) this.fenceOldLease(region, region.primary);
    this.ctx.topology.setPrimary(region, null);
    this.primaryGone(region);
  }

  /** The region's primary left it: there is no promotion to acknowledge and no deadline. */
  private primaryGone(region: RegionRecord): void {
    region.primaryAcked = false;
    region.deadlineMs = null;
  }

  /**
   * Remembers who held a region so that it can be brought back if every replica is lost. The list
   * is replaced rather than pushed to: a push onto an empty array reserves room for 16 entries, and
   * a mass failure notes the first loss of thousands of regions at once.
   */
  private noteLoss(region: RegionRecord, serverId: ServerId): void {
    if (!region.formerReplicas.includes(serverId)) region.formerReplicas = [...region.formerReplicas, serverId];
  }

  /** The region's primary `serverId` leaves it: no backup is promoted before its lease is surely over. */
  private fenceOldLease(region: RegionRecord, serverId: ServerId): void {
    const until = this.ctx.leases.fenceOf(serverId);
    if (until > (this.leaseFences.get(region) ?? -Infinity)) this.leaseFences.set(region, until);
  }

  /**
   * The instant before which no backup may be promoted in the region: the lease of a primary it
   * lost plus the drift margin, and the restart grace (leases of an earlier run of the coordinator).
   */
  private leaseFence(region: RegionRecord): number {
    return Math.max(this.leaseFences.get(region) ?? -Infinity, this.ctx.restartGraceUntilMs);
  }

  /** Runs the facts' change `act` as `event`, shown to the trace when there is one. */
  private traced(region: RegionRecord, event: FailoverEvent, act: () => void): void {
    this.ctx.topology.changedRegions.add(region.id);
    if (this.trace === null) {
      act();
      return;
    }
    const from = stateOf(region);
    act();
    this.trace(region, from, event, stateOf(region));
  }

  /** Pending promotions and backup syncs per server, from the regions with deadlines. */
  private pendingTransitions(): Map<ServerId, number> {
    const counts = new Map<ServerId, number>();
    for (const region of this.timed) {
      if (region.primary !== null && !region.primaryAcked) counts.set(region.primary, (counts.get(region.primary) ?? 0) + 1);
      for (const backup of region.syncing.keys()) {
        counts.set(backup, (counts.get(backup) ?? 0) + 1);
      }
    }
    return counts;
  }
}

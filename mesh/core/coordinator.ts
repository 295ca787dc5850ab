/**
 * The facade of the core: commands in, effects and events out. Every method takes the time as an
 * argument and returns plain data; nothing here reads a clock, draws a random number, awaits or
 * does I/O. `src/` drives it with the system clock and a ticker, the simulator with virtual time.
 * Injected faults are not the core's business: mesh/faults/fault-layer.ts wraps it for that. Code
 * outside the core reads it through the queries at the end; its parts (`ctx`) stay private.
 */
import { ActionBuffer, type ActionAck, type BufferedAction, type SubmitOutcome } from '../actions/action-buffer.ts';
import { AlertBook, type Alert, type AlertFilter } from '../health/alerts.ts';
import type { MeshConfig } from '../base/config.ts';
import { emptyCounts, raiseAlert, resolveAlert, setServerStatus, refreshPhase, type CoreContext } from '../failover/context.ts';
import { DegradedMode } from '../health/degraded-mode.ts';
import { LeaseBook } from '../failover/leases.ts';
import { Recovery } from '../failover/recovery.ts';
import { Rebalancer } from '../failover/rebalance.ts';
import { isAnnounced, type TransitionTrace } from '../failover/region-state.ts';
import { FailoverMetrics } from '../health/failover-metrics.ts';
import { ServerDetector } from '../detection/failure-detector.ts';
import { applyHeartbeat, buildReply, renewLease, type HeartbeatInput, type HeartbeatReply } from './heartbeat.ts';
import { Membership } from './membership.ts';
import { Outbox, type Effect } from '../effects/outbox.ts';
import { SnapshotStore, type PlayerSnapshot } from '../actions/snapshots.ts';
import { Topology, type RegionRecord, type ServerRecord } from '../failover/topology.ts';
import { ok, reject, regionId as toRegionId, serverId as toServerId, type PlayerId, type RegionId, type Result,
  type ServerId } from '../base/types.ts';
import { meshStatus, metricsView, replicationView, routeView, serverView, type MeshStatus, type MetricsView,
  type ReplicationView, type RouteView, type ServerView } from './views.ts';
import { createRegions, type RegionInput } from '../failover/region-factory.ts';
import { importState, exportState, type CoreState } from './state.ts';
import { ChangeTracker, type ChangeBatch, type ChangeRecord } from './change-records.ts';
import { HeartbeatCadence } from '../detection/heartbeat-cadence.ts';

/**
 * How long the restart grace lasts (`CoreContext.restartGraceUntilMs`): leases are not persisted, so
 * any primary may hold one the previous process granted just before it stopped, up to
 * `primaryLeaseMs` on its clock plus the drift margin on ours; and two heartbeat intervals let one
 * lost or late heartbeat of every server still report before anything is promoted.
 */
export function restartGraceMs(config: MeshConfig): number {
  return Math.max(config.primaryLeaseMs + config.leaseDriftMarginMs, 2 * config.heartbeatIntervalMs);
}

/** What a server says about itself when it registers. */
export interface ServerInput {
  readonly id?: string;
  readonly address: string;
  readonly zone: string;
  readonly capacity: number;
  readonly name?: string | null;
  readonly simulated?: boolean;
  readonly credentialHash?: string | null;
}

/** The coordinator of one mesh. */
export class Coordinator {
  private readonly ctx: CoreContext;
  private readonly recovery: Recovery;
  private readonly membership: Membership;
  private readonly rebalancer: Rebalancer;
  private lastTickMs: number | null = null;
  private tiltUntilMs: number;
  private nextServerNumber = 1;
  private nextRegionNumber = 1;
  private readonly changes = new ChangeTracker();

  /**
   * @param state a persisted state to resume from; every server then gets one full detection
   *   window from `nowMs` before it can be judged, so a restart never causes a mass failover.
   */
  constructor(config: MeshConfig, nowMs: number, state?: CoreState) {
    this.ctx = {
      config, topology: new Topology(),
      outbox: new Outbox(state?.positions), alerts: state ? AlertBook.fromJSON(state.alerts, config.resolvedAlertsLimit)
        : new AlertBook(config.resolvedAlertsLimit),
      metrics: state ? FailoverMetrics.fromJSON(state.metrics, config.failoverHistoryLimit) : new FailoverMetrics(config.failoverHistoryLimit),
      buffer: state ? ActionBuffer.fromJSON(state.buffer, config) : new ActionBuffer(config),
      snapshots: new SnapshotStore(config),
      degraded: state ? DegradedMode.fromJSON(state.degraded, config) : new DegradedMode(config, nowMs),
      leases: new LeaseBook(config.leaseDriftMarginMs, config.primaryLeaseMs),
      counts: emptyCounts(),
      restartGraceUntilMs: state ? nowMs + restartGraceMs(config) : 0,
      cadence: new HeartbeatCadence(config),
    };
    this.recovery = new Recovery(this.ctx);
    this.membership = new Membership(this.ctx, this.recovery);
    this.rebalancer = new Rebalancer(this.ctx, this.recovery);
    this.tiltUntilMs = nowMs;
    if (state) {
      const numbers = importState(this.ctx, state, nowMs);
      this.nextServerNumber = numbers.nextServerNumber;
      this.nextRegionNumber = numbers.nextRegionNumber;
      for (const region of this.ctx.topology.regions.values()) this.recovery.track(region);
      this.membership.rebuildAlertCoverage(nowMs);
    }
  }

  // ---- membership ----------------------------------------------------------------------------

  /** Registers a server; it is watched from now on and becomes capacity for new replicas. */
  registerServer(input: ServerInput, nowMs: number): Result<ServerView, 'duplicate_server'> {
    const id = toServerId(input.id ?? this.nextId('srv', () => this.nextServerNumber++, (c) => this.ctx.topology.servers.has(toServerId(c))));
    if (this.ctx.topology.servers.has(id)) return reject('duplicate_server', `server ${id} is already registered`);
    const server: ServerRecord = {
      id, address: input.address, zone: input.zone, capacity: input.capacity, name: input.name ?? null,
      simulated: input.simulated ?? false, credentialHash: input.credentialHash ?? null, status: 'alive',
      statusSinceMs: nowMs, registeredAtMs: nowMs, players: 0, incarnation: null, lastSeq: null, hosted: new Set(),
      detector: new ServerDetector(this.ctx.config, nowMs),
    };
    this.ctx.topology.addServer(server);
    this.ctx.counts.statuses.alive += 1;
    this.recovery.capacityChanged();
    this.ctx.outbox.changed();
    return ok(serverView(this.ctx, server));
  }

  /** Starts a graceful leave: the server's regions are handed off without a failure. */
  leave(id: ServerId, nowMs: number): Result<ServerView, 'unknown_server' | 'server_failed'> {
    const server = this.ctx.topology.servers.get(id);
    if (!server) return reject('unknown_server', `no server ${id}`);
    if (server.status === 'failed') return reject('server_failed', `server ${id} has failed; it cannot drain`);
    if (server.status === 'alive' || server.status === 'suspect') {
      setServerStatus(this.ctx, server, 'draining', nowMs);
      this.recovery.serverDraining(server, nowMs);
    }
    return ok(serverView(this.ctx, server));
  }

  /** Applies one heartbeat and returns the server's assignment. Never causes a write by itself. */
  heartbeat(id: ServerId, input: HeartbeatInput, nowMs: number): Result<HeartbeatReply, 'unknown_server' | 'server_left'> {
    const server = this.heartbeatSender(id);
    if (!server.ok) return server;
    const applied = applyHeartbeat(this.ctx, this.recovery, this.membership, server.value, input, nowMs);
    return ok(buildReply(this.ctx, server.value, applied.demoted, (r) => this.ctx.buffer.pending(r), nowMs, applied.reportedSilence, input.leaseMs));
  }

  /** A session's lease renewal: the length granted (`sessionLeaseMs`), or 0 when the server may hold none. */
  renewLease(id: ServerId, nowMs: number): Result<number, 'unknown_server' | 'server_left'> {
    const server = this.heartbeatSender(id);
    return server.ok ? ok(renewLease(this.ctx, server.value, nowMs)) : server;
  }

  /**
   * The server's session closed without a `leave` (its process may have died, or only the
   * connection did): it becomes suspect at once; its peers' reports decide (see Membership).
   */
  sessionClosed(id: ServerId, nowMs: number): Result<null, 'unknown_server' | 'server_left'> {
    const server = this.heartbeatSender(id);
    if (!server.ok) return server;
    this.membership.sessionClosed(server.value, nowMs);
    return ok(null);
  }

  /**
   * The reply a heartbeat would get, without applying one (for a heartbeat that is held back). It
   * grants a lease like any reply, since the server receives it (`leaseMs` as in HeartbeatInput).
   */
  assignment(id: ServerId, nowMs: number, leaseMs?: number): Result<HeartbeatReply, 'unknown_server' | 'server_left'> {
    const server = this.heartbeatSender(id);
    return server.ok ? ok(buildReply(this.ctx, server.value, [], (r) => this.ctx.buffer.pending(r), nowMs, false, leaseMs)) : server;
  }

  private heartbeatSender(id: ServerId): Result<ServerRecord, 'unknown_server' | 'server_left'> {
    const server = this.ctx.topology.servers.get(id);
    if (!server) return reject('unknown_server', `no server ${id}; register it first`);
    if (server.status === 'left') return reject('server_left', `server ${id} has left the mesh; register it again`);
    return ok(server);
  }

  // ---- time ----------------------------------------------------------------------------------

  /**
   * One tick: observe (detector verdicts, expiries), then act (recovery, degraded level). A tick
   * gap beyond `tiltThresholdMs` means the coordinator itself stalled: it enters TILT and declares
   * no failure for `tiltRecoveryMs`.
   */
  tick(nowMs: number): void {
    if (this.lastTickMs !== null && nowMs - this.lastTickMs > this.ctx.config.tiltThresholdMs) {
      this.tiltUntilMs = nowMs + this.ctx.config.tiltRecoveryMs;
      raiseAlert(this.ctx, {
        dedupKey: 'coordinator-tilt', severity: 'warning', title: 'Coordinator stalled (TILT)',
        message: `No tick for ${nowMs - this.lastTickMs} ms; no failure is declared for ${this.ctx.config.tiltRecoveryMs} ms.`,
      }, nowMs);
    } else if (nowMs >= this.tiltUntilMs) {
      resolveAlert(this.ctx, 'coordinator-tilt', nowMs);
    }
    this.lastTickMs = nowMs;
    this.membership.observe(nowMs, this.tilted(nowMs));
    this.expireActions(nowMs);
    this.recovery.run(nowMs, this.tilted(nowMs));
    this.rebalancer.run(nowMs, this.tilted(nowMs));
    this.membership.finishDrains(nowMs);
    this.evaluateDegraded(nowMs);
  }

  /**
   * The wall clock stepped by `stepMs` against the monotonic clock (mesh/runtime/clock-watch.ts):
   * TILT, as after a stall, since a suspended VM's monotonic clock hides the suspension and only the
   * step shows it. Ticks go on; no failure is declared for `tiltRecoveryMs`.
   */
  clockStepped(stepMs: number, nowMs: number): void {
    this.tiltUntilMs = Math.max(this.tiltUntilMs, nowMs + this.ctx.config.tiltRecoveryMs);
    raiseAlert(this.ctx, {
      dedupKey: 'coordinator-tilt', severity: 'warning', title: 'Wall clock stepped (TILT)',
      message: `The wall clock stepped ${stepMs > 0 ? 'forward' : 'back'} by ${Math.abs(Math.round(stepMs))} ms against the ` +
        `monotonic clock; no failure is declared for ${this.ctx.config.tiltRecoveryMs} ms.`,
    }, nowMs);
  }

  /** True while the coordinator distrusts its own observations after a stall. */
  tilted(nowMs: number): boolean {
    return nowMs < this.tiltUntilMs;
  }

  private expireActions(nowMs: number): void {
    const expired = this.ctx.buffer.expire(nowMs);
    if (expired.length === 0) return;
    const perRegion = new Map<RegionId, number>();
    for (const ref of expired) perRegion.set(ref.regionId, (perRegion.get(ref.regionId) ?? 0) + 1);
    for (const [regionId, count] of perRegion) this.ctx.outbox.emit({ type: 'actions_expired', regionId, count, seq: 0, atMs: nowMs });
    this.ctx.outbox.changed();
  }

  private evaluateDegraded(nowMs: number): void {
    const { statuses, phases } = this.ctx.counts;
    const servers = this.ctx.topology.servers.size - statuses.left;
    const regions = this.ctx.topology.regions.size;
    const evaluation = this.ctx.degraded.evaluate({
      failedServerShare: servers === 0 ? 0 : statuses.failed / servers,
      // A region failing over recovers within seconds; the issue counts under-replicated and
      // unavailable regions, which stay impaired until capacity or a replica returns.
      impairedRegionShare: regions === 0 ? 0 : (phases.under_replicated + phases.unavailable) / regions,
    }, nowMs);
    const change = evaluation.changed;
    if (change === null) return;
    if (change.direction === 'up') {
      this.ctx.outbox.emit({ type: 'degraded_mode_activated', level: change.to, previous: change.from, reason: change.reason, seq: 0, atMs: nowMs });
    } else {
      this.ctx.outbox.emit({ type: 'degraded_mode_deactivated', level: change.to, previous: change.from, seq: 0, atMs: nowMs });
    }
    if (change.to === 'NORMAL') {
      resolveAlert(this.ctx, 'degraded-mode', nowMs);
    } else {
      raiseAlert(this.ctx, {
        dedupKey: 'degraded-mode', severity: change.to === 'SEVERE' ? 'critical' : change.to === 'MODERATE' ? 'warning' : 'info',
        title: `Mesh degraded: ${change.to}`, message: `Degraded level ${change.from} -> ${change.to}: ${change.reason}.`,
      }, nowMs);
    }
    this.ctx.outbox.changed();
  }

  // ---- regions -------------------------------------------------------------------------------

  /** Creates regions and places their replicas; refused as a whole when no server has room. */
  createRegions(inputs: readonly RegionInput[], nowMs: number): Result<RegionRecord[], 'duplicate_region' | 'no_capacity'> {
    const created = createRegions(this.ctx, inputs, nowMs, () => this.nextId('region', () => this.nextRegionNumber++,
      (c) => this.ctx.topology.regions.has(toRegionId(c))));
    // A region created short of backups waits for capacity like any other.
    if (created.ok) for (const region of created.value) if (region.phase !== 'active') this.recovery.enqueue(region);
    return created;
  }

  /** Changes a region's priority inputs. */
  updateRegion(id: RegionId, patch: { critical?: boolean; players?: number }): Result<ReplicationView, 'unknown_region'> {
    const region = this.ctx.topology.regions.get(id);
    if (!region) return reject('unknown_region', `no region ${id}`);
    if (patch.critical !== undefined) region.critical = patch.critical;
    if (patch.players !== undefined) region.players = patch.players;
    this.ctx.topology.changedRegions.add(region.id);
    this.ctx.outbox.changed();
    return ok(replicationView(this.ctx, region));
  }

  // ---- expected outages -----------------------------------------------------------------------

  /**
   * The servers are down on purpose until `untilMs` (null: until further notice), as an injected
   * fault makes them: when they come back, their failover is not counted as a false one.
   */
  expectOutage(serverIds: readonly ServerId[], untilMs: number | null): void {
    this.membership.expectOutage(serverIds, untilMs);
  }

  // ---- player actions and snapshots ----------------------------------------------------------

  /**
   * Buffers a player's action while the region has no acknowledged primary, or while it has one
   * that the player reports it cannot reach (`unreachable` names the epoch the player knew). A
   * report against the current epoch is evidence against that primary, never proof: the player's
   * own network may be the broken one, and a healthy primary collects the action from the buffer.
   * A report against an older epoch is stale: the player is sent to the current primary.
   */
  submitAction(id: RegionId, action: { playerId: PlayerId; seq: number; payload: unknown }, nowMs: number,
    unreachable?: { readonly knownEpoch: number }):
    Result<SubmitOutcome & { changeSeq: number }, 'unknown_region' | 'region_healthy' | 'buffer_full' | 'action_conflict'> {
    const region = this.ctx.topology.regions.get(id);
    if (!region) return reject('unknown_region', `no region ${id}`);
    const route = routeView(this.ctx, region);
    if (route.primary !== null) {
      if (unreachable?.knownEpoch !== route.epoch) {
        return reject('region_healthy', `region ${id} has a primary; send the action to ${route.primary.address}`,
          { data: { primary: route.primary, epoch: route.epoch } });
      }
      this.ctx.topology.servers.get(route.primary.serverId)?.detector.playerReport(nowMs);
    }
    const result = this.ctx.buffer.submit(id, action, nowMs);
    if (!result.ok && result.code === 'action_conflict') return result;
    if (!result.ok) {
      raiseAlert(this.ctx, {
        dedupKey: `buffer-full:${id}`, severity: 'warning', title: `Action buffer full in ${id}`,
        message: `Player ${action.playerId} reached ${this.ctx.config.actionBufferMaxPerPlayer} buffered actions in region ${id}; further actions are refused with 429 until the failover completes.`,
        subject: { regionId: id },
      }, nowMs);
      return result;
    }
    const changeSeq = result.value.status === 'buffered' ? this.ctx.outbox.changed() : this.ctx.outbox.positions().changeSeq;
    return ok({ ...result.value, changeSeq });
  }

  /** Hands the region's buffered actions to its acknowledged primary, in per-player order. */
  collectActions(id: RegionId, serverId: ServerId, nowMs: number, limit?: number):
    Result<{ epoch: number; actions: BufferedAction[] }, 'unknown_region' | 'not_primary'> {
    const region = this.primaryOf(id, serverId);
    if (!region.ok) return region;
    return ok({ epoch: region.value.epoch, actions: this.ctx.buffer.collect(id, nowMs, limit) });
  }

  /** Removes actions the primary applied; each player whose actions were replayed has reconnected. */
  acknowledgeActions(id: RegionId, serverId: ServerId, acks: readonly ActionAck[], nowMs: number):
    Result<{ acknowledged: number; unknown: number; pending: number; changeSeq: number }, 'unknown_region' | 'not_primary'> {
    const region = this.primaryOf(id, serverId);
    if (!region.ok) return region;
    const outcome = { acknowledged: 0, unknown: 0 };
    for (const [playerId, playerAcks] of groupBy(acks, (a) => a.playerId)) {
      const result = this.ctx.buffer.acknowledge(id, playerAcks, nowMs);
      outcome.acknowledged += result.acknowledged;
      outcome.unknown += result.unknown;
      if (result.acknowledged > 0) this.ctx.outbox.emit({ type: 'player_reconnected', regionId: id, playerId, serverId, seq: 0, atMs: nowMs });
    }
    if (outcome.acknowledged > 0) resolveAlert(this.ctx, `buffer-full:${id}`, nowMs);
    const changeSeq = outcome.acknowledged > 0 ? this.ctx.outbox.changed() : this.ctx.outbox.positions().changeSeq;
    return ok({ ...outcome, pending: this.ctx.buffer.pending(id), changeSeq });
  }

  /** Keeps the latest snapshot of a player's state posted by the region's primary. */
  putSnapshot(id: RegionId, serverId: ServerId, snapshot: { playerId: PlayerId; state: unknown; sizeBytes: number }, nowMs: number):
    Result<{ version: number; epoch: number }, 'unknown_region' | 'not_primary' | 'snapshot_too_large' | 'stale_epoch'> {
    const region = this.primaryOf(id, serverId);
    if (!region.ok) return region;
    const epoch = region.value.epoch;
    const put = this.ctx.snapshots.put(id, { ...snapshot, serverId, epoch }, nowMs);
    return put.ok ? ok({ version: put.value.version, epoch }) : put;
  }

  /** The latest snapshot of a player, if any. */
  getSnapshot(id: RegionId, playerId: PlayerId): Result<PlayerSnapshot, 'unknown_region' | 'unknown_snapshot'> {
    if (!this.ctx.topology.regions.has(id)) return reject('unknown_region', `no region ${id}`);
    const snapshot = this.ctx.snapshots.get(id, playerId);
    return snapshot ? ok(snapshot) : reject('unknown_snapshot', `no snapshot of player ${playerId} in region ${id}`);
  }

  private primaryOf(id: RegionId, serverId: ServerId): Result<RegionRecord, 'unknown_region' | 'not_primary'> {
    const region = this.ctx.topology.regions.get(id);
    if (!region) return reject('unknown_region', `no region ${id}`);
    // Acknowledged too: a promotion that is then aborted must not leave actions counted replayed
    // that no primary of the region ever held.
    if (region.primary !== serverId || !isAnnounced(region) || !region.primaryAcked) {
      return reject('not_primary', `server ${serverId} is not the acknowledged primary of ${id} (epoch ${region.announcedEpoch})`);
    }
    return ok(region);
  }

  // ---- alerts --------------------------------------------------------------------------------

  listAlerts(filter: AlertFilter = {}): Alert[] {
    return this.ctx.alerts.list(filter);
  }

  acknowledgeAlert(id: string, nowMs: number, by?: string): Result<Alert, 'unknown_alert'> {
    const firstTime = this.ctx.alerts.get(id)?.acknowledgedAtMs === null;
    const result = this.ctx.alerts.acknowledge(id, nowMs, by);
    // Acknowledging again keeps the first acknowledgement: nothing to persist.
    if (result.ok && firstTime) this.ctx.outbox.changed();
    return result;
  }

  // ---- views ---------------------------------------------------------------------------------

  status(nowMs: number): MeshStatus {
    return meshStatus(this.ctx, this.tilted(nowMs));
  }

  servers(): ServerView[] {
    return [...this.ctx.topology.servers.values()].map((s) => serverView(this.ctx, s));
  }

  server(id: ServerId): ServerView | undefined {
    const server = this.ctx.topology.servers.get(id);
    return server && serverView(this.ctx, server);
  }

  /** The stored record of a server (for credential checks at the edge). */
  serverRecord(id: ServerId): Readonly<ServerRecord> | undefined {
    return this.ctx.topology.servers.get(id);
  }

  regions(): ReplicationView[] {
    return [...this.ctx.topology.regions.values()].map((r) => replicationView(this.ctx, r));
  }

  replication(id: RegionId): ReplicationView | undefined {
    const region = this.ctx.topology.regions.get(id);
    return region && replicationView(this.ctx, region);
  }

  route(id: RegionId): RouteView | undefined {
    const region = this.ctx.topology.regions.get(id);
    return region && routeView(this.ctx, region);
  }

  metrics(): MetricsView {
    return metricsView(this.ctx);
  }

  // ---- effects and persistence ---------------------------------------------------------------

  /** Takes the effects produced since the last call: at most one `persist`, then the events. */
  drain(): Effect[] {
    return this.ctx.outbox.drain();
  }

  /**
   * Everything up to change `seq` is on disk: held promotions are announced. With `nowMs`, each
   * announced promotion's acknowledgement deadline runs from now: the new primary cannot acknowledge
   * what it has not been told, however long the write took.
   */
  markDurable(seq: number, nowMs?: number): void {
    for (const { regionId, epoch } of this.ctx.outbox.markDurable(seq)) {
      const region = this.ctx.topology.regions.get(regionId);
      if (region) this.recovery.announce(region, epoch, nowMs);
    }
  }

  /**
   * The host cannot make changes durable (`reason` says why): a critical alert stays open until
   * {@link storageRecovered}. Promotions wait for their announcement meanwhile, and their deadlines
   * with them.
   */
  storageFailing(reason: string, nowMs: number): void {
    raiseAlert(this.ctx, {
      dedupKey: 'persistence-failing', severity: 'critical', title: 'Persisting the mesh state fails',
      message: `Writing the mesh state failed (${reason}); it is retried with back-off. Until a write succeeds no ` +
        'promotion is announced and no action is accepted (503).',
    }, nowMs);
  }

  /** Writes succeed again: the alert of {@link storageFailing} is resolved. */
  storageRecovered(nowMs: number): void {
    resolveAlert(this.ctx, 'persistence-failing', nowMs);
  }

  /**
   * This coordinator took over as leader from another replica (issue 20). `leaderlessMs` is how long
   * it saw no leader, or null when it never saw one; a gap far beyond a lease's expiry (etcd
   * unreachable or without quorum: nobody decided meanwhile) is critical. Resolved by
   * {@link leaderTakeOverSettled} once every server has had its detection window under the new leader.
   */
  leaderTookOver(change: { readonly leaderlessMs: number | null; readonly critical: boolean; readonly by: string }, nowMs: number): void {
    const gap = change.leaderlessMs === null ? 'for an unknown time' : `for ${Math.round(change.leaderlessMs)} ms`;
    raiseAlert(this.ctx, {
      dedupKey: 'coordinator-leader-changed', severity: change.critical ? 'critical' : 'warning',
      title: change.critical ? 'No coordinator could lead (etcd unreachable or without quorum)' : 'The coordinator leader changed',
      message: `${change.by} took over as leader after no coordinator led ${gap}: nothing was decided meanwhile. ` +
        'Every server gets a full detection window before it is judged.',
    }, nowMs);
  }

  /** The take-over's detection window has passed: the alert of {@link leaderTookOver} is resolved. */
  leaderTakeOverSettled(nowMs: number): void {
    resolveAlert(this.ctx, 'coordinator-leader-changed', nowMs);
  }

  /** The persistent part of the state (never heartbeats, detectors or snapshots). */
  exportState(nowMs: number): CoreState {
    return exportState(this.ctx, nowMs, { nextServerNumber: this.nextServerNumber, nextRegionNumber: this.nextRegionNumber });
  }

  /**
   * The change records since the last call (mesh/core/change-records.ts), covering every change up
   * to the batch's `seq`. The caller owns them until they are durable: they are not handed out again.
   */
  takeChanges(nowMs: number): ChangeBatch {
    return this.changes.take(this.ctx, nowMs, { nextServerNumber: this.nextServerNumber, nextRegionNumber: this.nextRegionNumber });
  }

  /**
   * At most `max` of the records the next {@link takeChanges} would hand out, handed out now, so that
   * a large change can be copied in slices; a later change of one of them hands it out again.
   */
  takeSomeChanges(max: number): ChangeRecord[] {
    return this.changes.takeSome(this.ctx, max);
  }

  /**
   * Removes the simulated test mesh: its servers, its regions with their actions and snapshots, and
   * the failover history and metrics. Self-registered servers and their regions stay.
   */
  resetTestMesh(nowMs: number): { servers: number; regions: number } {
    const { topology } = this.ctx;
    let regions = 0;
    for (const region of [...topology.regions.values()]) {
      if (!region.simulated) continue;
      this.ctx.counts.phases[region.phase] -= 1;
      topology.removeRegion(region.id);
      this.recovery.forget(region);
      this.ctx.buffer.dropRegion(region.id);
      this.ctx.snapshots.dropRegion(region.id);
      regions++;
    }
    const simulated = [...topology.servers.values()].filter((s) => s.simulated);
    for (const server of simulated) {
      if (server.hosted.size > 0) this.membership.removeWithReplicas(server, nowMs);
      this.ctx.counts.statuses[server.status] -= 1;
      topology.removeServer(server.id);
      this.ctx.cadence.forget(server.id);
      this.membership.forgetFailure(server, nowMs);
    }
    for (const alert of this.ctx.alerts.list({ state: 'open' })) {
      const regionId = alert.subject?.regionId;
      if (regionId !== undefined && !topology.regions.has(toRegionId(regionId))) resolveAlert(this.ctx, alert.dedupKey, nowMs);
    }
    this.ctx.metrics.reset();
    this.membership.forgetExpectedOutages();
    for (const region of topology.regions.values()) refreshPhase(this.ctx, region, nowMs);
    this.ctx.outbox.changed();
    return { servers: simulated.length, regions };
  }

  // ---- queries for code outside the core ------------------------------------------------------

  /** The configuration the core runs with. */
  get config(): MeshConfig {
    return this.ctx.config;
  }

  /** Who is asked for sooner heartbeats (read only: metrics and tests). */
  get heartbeatCadence(): Pick<HeartbeatCadence, 'wants' | 'wantingCount'> {
    return this.ctx.cadence;
  }

  /**
   * Every server's and every region's record by id, in registration and creation order. Read only:
   * the core owns them.
   */
  records(): { readonly servers: ReadonlyMap<ServerId, Readonly<ServerRecord>>; readonly regions: ReadonlyMap<RegionId, Readonly<RegionRecord>> } {
    return this.ctx.topology;
  }

  /** The record of one region. Read only: the core owns it. */
  regionRecord(id: RegionId): Readonly<RegionRecord> | undefined {
    return this.ctx.topology.regions.get(id);
  }

  /** Regions a server hosts in any role. Read only: the core owns them. */
  hostedBy(id: ServerId): ReadonlySet<Readonly<RegionRecord>> {
    return this.ctx.topology.regionsOf(id);
  }

  /** Servers that replicate with `id` in some region. */
  peersOf(id: ServerId): Set<ServerId> {
    return this.ctx.topology.peersOf(id);
  }

  /** How many servers (including failed and left ones) and regions the mesh has. */
  size(): { servers: number; regions: number } {
    return { servers: this.ctx.topology.servers.size, regions: this.ctx.topology.regions.size };
  }

  /** Servers by status and regions by phase, as kept with every transition. */
  counts(): Readonly<CoreContext['counts']> {
    return this.ctx.counts;
  }

  /**
   * The regions whose records or buffered actions may have changed since the last call, and
   * forgets them: what the session pushes look at instead of every region. One reader only.
   */
  takeTouchedRegions(): Set<RegionId> {
    const touched = this.ctx.topology.changedRegions.takeForViews();
    for (const id of this.ctx.buffer.takeChangedRegions()) touched.add(id);
    return touched;
  }

  /** Buffered actions waiting for a region's primary. */
  pendingActions(id: RegionId): number {
    return this.ctx.buffer.pending(id);
  }

  /** The change sequence number that covers everything done so far. */
  changeSeq(): number {
    return this.ctx.outbox.positions().changeSeq;
  }

  /**
   * Test-only: the core's parts, for tests and the simulator's checkers that must look at (or hook
   * into) what no query shows. Production code uses the queries above.
   */
  static partsForTests(coordinator: Coordinator): CoreContext {
    return coordinator.ctx;
  }

  /** Test-only: `trace` sees every transition of every region's failover state machine. */
  static traceTransitionsForTests(coordinator: Coordinator, trace: TransitionTrace | null): void {
    coordinator.recovery.trace = trace;
  }

  private nextId(prefix: string, take: () => number, taken: (candidate: string) => boolean): string {
    for (;;) {
      const candidate = `${prefix}-${take()}`;
      if (!taken(candidate)) return candidate;
    }
  }
}

/** Groups items by key, keeping first-seen key order and item order. */
function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

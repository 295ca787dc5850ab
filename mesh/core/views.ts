/**
 * Read-only views of the core's state, shaped for operators, players and the HTTP API. They read
 * the announced (durable) epoch wherever a server or a player could act on what they show.
 */
import { isAnnounced } from '../failover/region-state.ts';
import type { CoreContext } from '../failover/context.ts';
import type { DurationStats, FailoverRecord } from '../health/failover-metrics.ts';
import { endpoint, type Endpoint } from './heartbeat.ts';
import { confirmedBackups, priorityScore, type RegionRecord, type ServerRecord } from '../failover/topology.ts';
import type { DegradedLevel, RegionId, RegionPhase, ServerId, ServerStatus } from '../base/types.ts';
import { levelFidelity } from '../health/degraded-mode.ts';

/** Overall health of the mesh. */
export interface MeshStatus {
  readonly status: 'healthy' | 'degraded' | 'critical';
  readonly degradedLevel: DegradedLevel;
  readonly fidelity: number;
  readonly servers: { total: number; alive: number; suspect: number; failed: number; draining: number };
  readonly regions: { total: number } & Record<RegionPhase, number>;
  readonly alertsOpen: number;
  readonly tilt: boolean;
}

/** A server as shown to operators. */
export interface ServerView {
  readonly serverId: ServerId;
  readonly address: string;
  readonly zone: string;
  readonly capacity: number;
  readonly name: string | null;
  readonly simulated: boolean;
  readonly status: ServerStatus;
  readonly statusSinceMs: number;
  readonly registeredAtMs: number;
  readonly lastHeartbeatAtMs: number | null;
  readonly players: number;
  readonly primaries: number;
  readonly backups: number;
}

/** A replica of a region with its progress. */
export interface ReplicaView {
  readonly serverId: ServerId;
  readonly status: ServerStatus;
  readonly appliedSeq: number;
}

/** Replication state of one region (`GET /mesh/replication/{id}`). */
export interface ReplicationView {
  readonly regionId: RegionId;
  readonly epoch: number;
  readonly state: RegionPhase;
  readonly critical: boolean;
  readonly players: number;
  readonly priority: number;
  readonly primary: (ReplicaView & { acknowledged: boolean }) | null;
  readonly backups: readonly (ReplicaView & { lag: number; syncing: boolean })[];
  readonly lastFailover: FailoverRecord | null;
}

/** Where players of a region should connect. */
export interface RouteView {
  readonly regionId: RegionId;
  readonly epoch: number;
  readonly state: RegionPhase;
  readonly primary: Endpoint | null;
  readonly backups: readonly Endpoint[];
}

/** Failover statistics (`GET /mesh/failover_metrics`). */
export interface MetricsView {
  readonly failovers: { total: number; completed: number; in_progress: number; failed: number };
  readonly detectionMs: DurationStats;
  readonly recoveryMs: DurationStats;
  readonly falseFailovers: number;
  readonly actions: { buffered: number; replayed: number; expired: number; rejected: number; pending: number };
  readonly replicationCoverage: number;
  readonly recent: readonly FailoverRecord[];
}

export function meshStatus(ctx: CoreContext, tilt: boolean): MeshStatus {
  const { statuses, phases } = ctx.counts;
  const level = ctx.degraded.level;
  const total = ctx.topology.servers.size - statuses.left;
  const critical = phases.unavailable > 0 || level === 'SEVERE';
  const degraded = level !== 'NORMAL' || phases.failing_over + phases.under_replicated > 0 || statuses.failed > 0;
  return {
    status: critical ? 'critical' : degraded ? 'degraded' : 'healthy',
    degradedLevel: level, fidelity: levelFidelity[level],
    servers: { total, alive: statuses.alive, suspect: statuses.suspect, failed: statuses.failed, draining: statuses.draining },
    regions: { total: ctx.topology.regions.size, ...phases },
    alertsOpen: ctx.alerts.openCount(), tilt,
  };
}

export function serverView(ctx: CoreContext, server: ServerRecord): ServerView {
  let primaries = 0;
  for (const region of server.hosted) if (region.primary === server.id) primaries++;
  return {
    serverId: server.id, address: server.address, zone: server.zone, capacity: server.capacity, name: server.name,
    simulated: server.simulated, status: server.status, statusSinceMs: server.statusSinceMs,
    registeredAtMs: server.registeredAtMs,
    lastHeartbeatAtMs: server.incarnation === null ? null : server.detector.lastHeartbeatAtMs,
    players: server.players, primaries, backups: server.hosted.size - primaries,
  };
}

export function replicationView(ctx: CoreContext, region: RegionRecord): ReplicationView {
  const replica = (id: ServerId): ReplicaView => ({
    serverId: id, status: ctx.topology.servers.get(id)?.status ?? 'left', appliedSeq: region.appliedSeq.get(id) ?? 0,
  });
  const primarySeq = region.primary === null ? 0 : region.appliedSeq.get(region.primary) ?? 0;
  const last = region.failoverId ?? region.lastFailoverId;
  return {
    regionId: region.id, epoch: region.epoch, state: region.phase, critical: region.critical, players: region.players,
    priority: priorityScore(region),
    primary: region.primary === null ? null : { ...replica(region.primary), acknowledged: region.primaryAcked },
    backups: region.backups.map((id) => ({
      ...replica(id), lag: Math.max(0, primarySeq - (region.appliedSeq.get(id) ?? 0)), syncing: region.syncing.has(id),
    })),
    lastFailover: last === null ? null : ctx.metrics.get(last) ?? null,
  };
}

export function routeView(ctx: CoreContext, region: RegionRecord): RouteView {
  const announced = isAnnounced(region);
  const serving = announced && region.primaryAcked;
  return {
    regionId: region.id, epoch: region.announcedEpoch, state: region.phase,
    primary: serving ? endpoint(ctx, region.primary) : null,
    backups: region.backups.map((b) => endpoint(ctx, b)).filter((e): e is Endpoint => e !== null),
  };
}

/**
 * Share of the replicas the mesh should have that it has and that are confirmed: 1.0 when every
 * region has an acknowledged primary and all its backups.
 */
export function replicationCoverage(ctx: CoreContext): number {
  let wanted = 0;
  let have = 0;
  for (const region of ctx.topology.regions.values()) {
    wanted += 1 + region.backupTarget;
    if (region.primary !== null && region.primaryAcked) have += 1;
    have += Math.min(region.backupTarget, confirmedBackups(region).length);
  }
  return wanted === 0 ? 1 : have / wanted;
}

export function metricsView(ctx: CoreContext): MetricsView {
  const summary = ctx.metrics.summary();
  const counters = ctx.buffer.counters();
  return {
    failovers: summary.failovers, detectionMs: summary.detection_ms, recoveryMs: summary.recovery_ms,
    falseFailovers: summary.false_failovers,
    actions: { buffered: counters.buffered, replayed: counters.replayed, expired: counters.expired,
      rejected: counters.rejected, pending: ctx.buffer.pendingTotal() },
    replicationCoverage: replicationCoverage(ctx), recent: summary.recent,
  };
}

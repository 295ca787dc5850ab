/**
 * The core's parts, shared by the modules that act on them, and the small state transitions that
 * must always go together with an event, an alert or a persisted change.
 */
import type { ActionBuffer } from '../actions/action-buffer.ts';
import type { AlertBook, AlertInput } from '../health/alerts.ts';
import type { MeshConfig } from '../base/config.ts';
import type { DegradedMode } from '../health/degraded-mode.ts';
import type { FailoverMetrics } from '../health/failover-metrics.ts';
import type { Outbox } from '../effects/outbox.ts';
import type { LeaseBook } from './leases.ts';
import type { HeartbeatCadence } from '../detection/heartbeat-cadence.ts';
import type { SnapshotStore } from '../actions/snapshots.ts';
import { phaseOf } from './region-state.ts';
import { confirmedBackups, type RegionRecord, type ServerRecord, type Topology } from './topology.ts';
import type { RegionPhase, ServerId, ServerStatus } from '../base/types.ts';

/** Everything one coordinator owns. */
export interface CoreContext {
  readonly config: MeshConfig;
  readonly topology: Topology;
  readonly outbox: Outbox;
  readonly alerts: AlertBook;
  readonly metrics: FailoverMetrics;
  readonly buffer: ActionBuffer;
  readonly snapshots: SnapshotStore;
  readonly degraded: DegradedMode;
  /** The last lease granted to every primary (never persisted). */
  readonly leases: LeaseBook;
  /** Live counts by phase and status, kept in step with every transition (read every tick). */
  readonly counts: { phases: Record<RegionPhase, number>; statuses: Record<ServerStatus, number> };
  /**
   * The restart grace: after a start from a persisted state, no primary lease is granted and no
   * backup is promoted before this time (0 when the coordinator started empty). It lasts the longest
   * lease the previous process may have granted plus the drift margin, so that no lease of that
   * process, held by a primary its records may not even name (an operator restored an older data
   * file), still runs when a new one is granted or a backup promoted; and at least two heartbeat
   * intervals, so that every reachable server has reported (one lost heartbeat allowed) and a server
   * holding a newer epoch than the persisted one has ratcheted it before the next promotion.
   */
  restartGraceUntilMs: number;
  /** The servers asked for sooner heartbeats, within their budget (never persisted). */
  readonly cadence: HeartbeatCadence;
}

/** Empty phase and status counters. */
export function emptyCounts(): CoreContext['counts'] {
  return {
    phases: { active: 0, failing_over: 0, under_replicated: 0, unavailable: 0 },
    statuses: { alive: 0, suspect: 0, failed: 0, draining: 0, left: 0 },
  };
}

/**
 * Raises (or re-raises) an alert; a new or escalated alert is published, and every report is
 * persisted (a repeat changes the alert's count and latest message).
 */
export function raiseAlert(ctx: CoreContext, input: AlertInput, nowMs: number): void {
  const { alert, isNew, escalated } = ctx.alerts.raise(input, nowMs);
  if (isNew || escalated) ctx.outbox.emit({ type: 'administrator_alert', alert, seq: 0, atMs: nowMs });
  ctx.outbox.changed();
}

/** Resolves an alert if it is open. */
export function resolveAlert(ctx: CoreContext, dedupKey: string, nowMs: number): void {
  if (!ctx.alerts.isOpen(dedupKey)) return;
  const alert = ctx.alerts.resolve(dedupKey, nowMs);
  if (alert) ctx.outbox.emit({ type: 'administrator_alert', alert, seq: 0, atMs: nowMs });
  ctx.outbox.changed();
}

/** Moves a server to a new status with its event and counters. */
export function setServerStatus(ctx: CoreContext, server: ServerRecord, to: ServerStatus, nowMs: number): void {
  const from = server.status;
  if (from === to) return;
  ctx.counts.statuses[from] -= 1;
  ctx.counts.statuses[to] += 1;
  server.status = to;
  server.statusSinceMs = nowMs;
  if (to === 'failed' || to === 'left') ctx.cadence.forget(server.id);
  ctx.outbox.emit({ type: 'server_status_changed', serverId: server.id, from, to, seq: 0, atMs: nowMs });
  // Suspicion is judged afresh after a restart, so alive <-> suspect needs no write: with phi 3 a
  // single lost heartbeat makes a server suspect, and persisting that would rewrite the state
  // almost every tick in a large mesh.
  if (!isTransient(from, to)) {
    ctx.topology.changedServers.add(server.id);
    ctx.outbox.changed();
  }
}

function isTransient(from: ServerStatus, to: ServerStatus): boolean {
  return (from === 'alive' || from === 'suspect') && (to === 'alive' || to === 'suspect');
}

/**
 * Recomputes a region's phase; a change is published, counted, persisted and reflected in the
 * region's alerts (missing backups warn, unavailability is critical, both resolve on recovery).
 * Alerts are also re-checked when the phase stays the same, since the backups may have changed.
 */
export function refreshPhase(ctx: CoreContext, region: RegionRecord, nowMs: number): void {
  const to = phaseOf(region);
  const from = region.phase;
  // Every path that changes a region's facts ends here (or in a recovery event): noting the region
  // now makes it part of the next change records without each caller having to remember it.
  ctx.topology.changedRegions.add(region.id);
  if (from === to) {
    // Same phase: only a change in assigned backups can raise or resolve the under-replication alert.
    if (to === 'under_replicated' || to === 'active') phaseAlerts(ctx, region, from, nowMs);
    return;
  }
  ctx.counts.phases[from] -= 1;
  ctx.counts.phases[to] += 1;
  region.phase = to;
  region.phaseSinceMs = nowMs;
  ctx.outbox.emit({ type: 'region_phase_changed', regionId: region.id, from, to, seq: 0, atMs: nowMs });
  ctx.outbox.changed();
  phaseAlerts(ctx, region, from, nowMs);
}

/**
 * Raises the unavailability alert, or resolves what the region's recovery has cleared. Only three
 * cases can change anything: the region is unavailable (raise), it was (resolve), or it has its
 * full backups (resolve under-replication). The others, such as the thousands of regions that lose
 * a replica in a mass failure, return before even the book's lookup by region.
 */
function phaseAlerts(ctx: CoreContext, region: RegionRecord, from: RegionPhase, nowMs: number): void {
  if (region.phase !== 'unavailable' && from !== 'unavailable' && region.backups.length < region.backupTarget) return;
  if (region.phase !== 'unavailable' && !ctx.alerts.hasOpenAboutRegion(region.id)) return;
  const unavailableKey = `region-unavailable:${region.id}`;
  if (region.phase === 'unavailable') {
    if (ctx.alerts.isOpen(unavailableKey)) return;
    raiseAlert(ctx, {
      dedupKey: unavailableKey, severity: 'critical', title: `Region ${region.id} is unavailable`,
      message: `Region ${region.id} has no primary and no backup holding its state` +
        `${region.critical ? ' (critical region)' : ''}; it returns when a former replica reconnects.`,
      subject: { regionId: region.id },
    }, nowMs);
    return;
  }
  resolveAlert(ctx, unavailableKey, nowMs);
  if (region.backups.length >= region.backupTarget) resolveAlert(ctx, `region-under-replicated:${region.id}`, nowMs);
}

/**
 * Raised by recovery when no server has room for a missing backup. A region between a failover's
 * acknowledgement and its next backup assignment is short of backups for a tick; that is not
 * worth an operator's attention, so only a failed placement alerts.
 */
export function alertNoCapacity(ctx: CoreContext, region: RegionRecord, nowMs: number): void {
  const key = `region-under-replicated:${region.id}`;
  if (ctx.alerts.isOpen(key)) return;
  raiseAlert(ctx, {
    dedupKey: key, severity: 'warning', title: `Region ${region.id} is under-replicated`,
    message: `Region ${region.id} has ${confirmedBackups(region).length} of ${region.backupTarget} ` +
      'backups and no server has room for another; it is re-replicated as soon as one does.',
    subject: { regionId: region.id },
  }, nowMs);
}

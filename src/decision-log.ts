/**
 * One log line per decision of the coordinator, as Redis Sentinel logs `+sdown`, `+odown` and
 * `+failover-state-...`: derived from the core's published events (and, for durations, its
 * failover records), so that the core stays free of I/O. `decision` names the step in a stable,
 * grep-able word; the message says it in English. Heartbeats and replays are not decisions and are
 * not logged at the default level.
 */
import type { RequestRecord } from '../api/request-observer.ts';
import type { Alert } from '../mesh/health/alerts.ts';
import type { MeshEvent } from '../mesh/effects/events.ts';
import type { RegionId } from '../mesh/base/types.ts';
import type { Logger } from './logger.ts';
import type { MetricsHost } from './metrics.ts';

/** Logs every decision of `host` until the returned function is called. */
export function logDecisions(host: MetricsHost, log: Logger): () => void {
  return host.subscribe((event) => logEvent(host, log, event));
}

/** Writes the line (if any) of one event. Exported for tests. */
export function logEvent(host: MetricsHost, log: Logger, event: MeshEvent): void {
  const at = { atMs: Math.round(event.atMs) };
  switch (event.type) {
    case 'server_status_changed':
      if (event.to === 'suspect') log.info('server suspect', { decision: 'suspect', serverId: event.serverId, ...at });
      else if (event.from === 'suspect' && event.to === 'alive') log.info('server no longer suspect', { decision: 'unsuspect', serverId: event.serverId, ...at });
      else if (event.to === 'draining') log.info('server draining', { decision: 'draining', serverId: event.serverId, ...at });
      return;
    case 'server_failure_detected':
      log.warn('server declared failed', {
        decision: 'failed', serverId: event.serverId, evidence: event.reason,
        lastHeartbeatAtMs: Math.round(event.lastHeartbeatAtMs), silenceMs: Math.round(event.atMs - event.lastHeartbeatAtMs), ...at,
      });
      return;
    case 'failover_initiated': {
      const record = host.coordinator.replication(event.regionId)?.lastFailover ?? null;
      log.info('failover started', {
        decision: 'failover-started', regionId: event.regionId, failedServerId: event.failedServerId,
        newPrimaryId: event.newPrimaryId, epoch: event.epoch, failoverId: record?.id ?? null,
        critical: record?.critical ?? null, detectionMs: record === null ? null : Math.round(record.detectionMs), ...at,
      });
      return;
    }
    case 'failover_completed':
      log.info('failover completed', {
        decision: 'failover-completed', regionId: event.regionId, newPrimaryId: event.newPrimaryId, epoch: event.epoch,
        recoveryMs: event.recoveryMs === null ? null : Math.round(event.recoveryMs), ...at,
      });
      return;
    case 'failover_aborted':
      log.warn('failover candidate aborted', {
        decision: 'failover-aborted', regionId: event.regionId, serverId: event.serverId, epoch: event.epoch, reason: event.reason, ...at,
      });
      return;
    case 'region_phase_changed':
      if (event.to === 'unavailable') logFailoverFailed(host, log, event.regionId, event.atMs);
      return;
    case 'backup_created':
      log.info('backup assigned', { decision: 'backup-assigned', regionId: event.regionId, serverId: event.backupServerId, ...at });
      return;
    case 'degraded_mode_activated':
      log.warn('degraded level raised', { decision: 'degraded-level', level: event.level, previous: event.previous, reason: event.reason, ...at });
      return;
    case 'degraded_mode_deactivated':
      log.info('degraded level lowered', { decision: 'degraded-level', level: event.level, previous: event.previous, ...at });
      return;
    case 'administrator_alert':
      logAlert(log, event.alert, event.atMs);
      return;
    case 'actions_expired':
      log.warn('buffered actions expired', { decision: 'actions-expired', regionId: event.regionId, count: event.count, ...at });
      return;
    case 'rebalance_started':
    case 'rebalance_completed':
    case 'rebalance_aborted':
      log.info(`primary move ${event.type.slice('rebalance_'.length)}`, { decision: event.type.replace('_', '-'), regionId: event.regionId,
        fromServerId: event.fromServerId, toServerId: event.toServerId, ...at });
      return;
    default:
      // player_reconnected: one per player, not a decision of the coordinator.
      return;
  }
}

function logFailoverFailed(host: MetricsHost, log: Logger, regionId: RegionId, atMs: number): void {
  const record = host.coordinator.replication(regionId)?.lastFailover ?? null;
  log.error('failover failed: region unavailable', {
    decision: 'failover-failed', regionId, failoverId: record?.id ?? null, failedServerId: record?.failedServerId ?? null,
    detectionMs: record === null ? null : Math.round(record.detectionMs),
    elapsedMs: record === null ? null : Math.round(atMs - record.failedAtMs), atMs: Math.round(atMs),
  });
}

function logAlert(log: Logger, alert: Alert, atMs: number): void {
  const fields = {
    alertId: alert.id, dedupKey: alert.dedupKey, severity: alert.severity, title: alert.title, message: alert.message,
    count: alert.count, atMs: Math.round(atMs),
  };
  const tilt = alert.dedupKey === 'coordinator-tilt';
  if (alert.resolvedAtMs !== null) {
    log.info(tilt ? 'TILT left' : 'alert resolved', { decision: tilt ? 'tilt-left' : 'alert-resolved', ...fields });
  } else {
    const at = alert.severity === 'critical' ? 'error' : 'warn';
    log[at](tilt ? 'TILT entered' : 'alert raised', { decision: tilt ? 'tilt-entered' : 'alert-raised', ...fields });
  }
}

/**
 * An authentication or authorisation refusal: who (address), what (method and route) and why (the
 * problem's detail, which never contains a token). Other 4xx answers are the client's business.
 */
export function logRefusal(log: Logger, record: RequestRecord): void {
  if (record.status !== 401 && record.status !== 403) return;
  log.warn('request refused', {
    decision: 'auth-refused', status: record.status, method: record.method, route: record.route,
    remoteAddress: record.remoteAddress ?? null, detail: record.detail ?? null,
  });
}

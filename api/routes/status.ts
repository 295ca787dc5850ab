/**
 * Service and mesh health: `GET /healthz`, `GET /readyz`, `GET /openapi.yaml`, `GET /mesh/status`,
 * `GET /mesh/failover_metrics` and `GET /mesh/replication/{region_id}`. Read-only views of the
 * core, mapped to the contract's snake_case with every millisecond value a whole number.
 */
import { Router } from '@koa/router';
import type { FailoverRecord, DurationStats } from '../../mesh/health/failover-metrics.ts';
import { regionId, type RegionId } from '../../mesh/base/types.ts';
import type { ReplicationView } from '../../mesh/core/views.ts';
import { coordinatorJson } from '../leadership.ts';
import { HttpProblem, notFound, snakeCaseKeys } from '../problem.ts';
import { ms, msOrNull, operation, reply, type RouteKit } from '../route-kit.ts';

/** Routes of the service and mesh-health operations. */
export function statusRoutes(kit: RouteKit): Router {
  const router = new Router();
  const { host, contract } = kit;

  const coordinator = () => coordinatorJson(kit.deps.leadership);
  operation(router, kit, 'getHealth', (ctx) => reply(ctx, 200, { status: 'ok', coordinator: coordinator() }));

  operation(router, kit, 'getReadiness', (ctx) => {
    const readiness = host.readiness();
    if (!readiness.ready) {
      throw new HttpProblem({
        status: 503, slug: 'not-ready', detail: `Not ready: ${readiness.reason}.`, headers: { 'Retry-After': '1' }, extra: { coordinator: coordinator() },
      });
    }
    reply(ctx, 200, { status: 'ready', coordinator: coordinator() });
  });

  operation(router, kit, 'getOpenApiDocument', (ctx) => {
    ctx.status = 200;
    ctx.type = 'application/yaml';
    ctx.body = contract.source;
  });

  operation(router, kit, 'getMeshStatus', (ctx) => {
    const now = host.now();
    const status = snakeCaseKeys(host.coordinator.status(now)) as Record<string, unknown>;
    reply(ctx, 200, { ...status, clock: host.clockKind, now: ms(now), coordinator: coordinator() });
  });

  operation(router, kit, 'getFailoverMetrics', (ctx, { query }) => {
    const metrics = host.coordinator.metrics();
    const limit = query.recent_limit as number;
    reply(ctx, 200, {
      failovers: metrics.failovers,
      detection_ms: roundStats(metrics.detectionMs),
      recovery_ms: roundStats(metrics.recoveryMs),
      false_failovers: metrics.falseFailovers,
      actions: metrics.actions,
      replication_coverage: metrics.replicationCoverage,
      recent: metrics.recent.slice(0, limit).map(failoverRecordJson),
    });
  });

  operation(router, kit, 'getRegionReplication', (ctx, { path }) => {
    const id = regionId(path.region_id as string);
    const view = host.coordinator.replication(id);
    if (!view) throw notFound('region', id);
    reply(ctx, 200, replicationJson(view));
  });

  return router;
}

/** Duration statistics with whole milliseconds (the count stays as it is). */
export function roundStats(stats: DurationStats): DurationStats {
  return {
    count: stats.count, min: ms(stats.min), mean: ms(stats.mean), p50: ms(stats.p50), p95: ms(stats.p95),
    p99: ms(stats.p99), max: ms(stats.max),
  };
}

/** A failover record as the contract's `FailoverRecord`. */
export function failoverRecordJson(record: FailoverRecord): Record<string, unknown> {
  return {
    id: record.id, region_id: record.regionId, failed_server_id: record.failedServerId,
    new_primary_id: record.newPrimaryId, critical: record.critical, players: record.players, epoch: record.epoch,
    failed_at: ms(record.failedAtMs), detected_at: ms(record.detectedAtMs), promoted_at: msOrNull(record.promotedAtMs),
    completed_at: msOrNull(record.completedAtMs), detection_ms: ms(record.detectionMs),
    recovery_ms: msOrNull(record.recoveryMs), outcome: record.outcome,
  };
}

/** A region's replication state as the contract's `RegionReplication`. */
export function replicationJson(view: ReplicationView): Record<string, unknown> {
  const primary = view.primary === null ? null : {
    server_id: view.primary.serverId, status: view.primary.status, applied_seq: view.primary.appliedSeq,
    acknowledged: view.primary.acknowledged,
  };
  return {
    region_id: view.regionId satisfies RegionId, epoch: view.epoch, state: view.state, critical: view.critical,
    players: view.players, priority: view.priority, primary,
    backups: view.backups.map((b) => ({ server_id: b.serverId, status: b.status, applied_seq: b.appliedSeq, lag: b.lag, syncing: b.syncing })),
    last_failover: view.lastFailover === null ? null : failoverRecordJson(view.lastFailover),
  };
}

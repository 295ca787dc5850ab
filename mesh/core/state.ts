/**
 * The persistent part of the core's state and its restoration. Heartbeats, detector windows and
 * snapshots are not persisted: after a restart every server gets one full detection window, and
 * primaries re-post snapshots.
 */
import type { ActionBufferJSON } from '../actions/action-buffer.ts';
import type { AlertBookJSON } from '../health/alerts.ts';
import type { CoreContext } from '../failover/context.ts';
import type { DegradedModeJSON } from '../health/degraded-mode.ts';
import type { FailoverMetricsJSON } from '../health/failover-metrics.ts';
import { ServerDetector } from '../detection/failure-detector.ts';
import type { RegionRecord, ServerRecord } from '../failover/topology.ts';
import type { ServerId } from '../base/types.ts';

/** Version of the persisted core state; bumped on incompatible changes. */
export const coreStateVersion = 1;

/** A region as persisted: its per-replica maps are plain objects keyed by server id. */
export type PersistedRegion = Omit<RegionRecord, 'syncing' | 'syncTarget' | 'appliedSeq'> & {
  readonly syncing: Readonly<Record<string, number>>;
  /** Absent in states written before backups recorded their sync target (treated as 0). */
  readonly syncTarget?: Readonly<Record<string, number>>;
  readonly appliedSeq: Readonly<Record<string, number>>;
};

/**
 * A server as persisted: without its hosted-regions index, which is rebuilt from the regions, and
 * without its failure detector, which starts afresh.
 */
export type PersistedServer = Omit<ServerRecord, 'hosted' | 'detector'>;

/** Everything the core persists. */
export interface CoreState {
  readonly version: number;
  readonly savedAtMs: number;
  readonly positions: { eventSeq: number; changeSeq: number };
  readonly numbers: { nextServerNumber: number; nextRegionNumber: number };
  readonly servers: readonly PersistedServer[];
  readonly regions: readonly PersistedRegion[];
  readonly alerts: AlertBookJSON;
  readonly metrics: FailoverMetricsJSON;
  readonly buffer: ActionBufferJSON;
  readonly degraded: DegradedModeJSON;
}

/** Captures the persistent state. Records are copied so that later changes do not alter it. */
export function exportState(ctx: CoreContext, nowMs: number, numbers: CoreState['numbers']): CoreState {
  const { eventSeq, changeSeq } = ctx.outbox.positions();
  return {
    version: coreStateVersion, savedAtMs: nowMs, positions: { eventSeq, changeSeq }, numbers,
    servers: [...ctx.topology.servers.values()].map(persistedServer),
    regions: [...ctx.topology.regions.values()].map(persistedRegion),
    alerts: ctx.alerts.toJSON(), metrics: ctx.metrics.toJSON(), buffer: ctx.buffer.toJSON(), degraded: ctx.degraded.toJSON(),
  };
}

/** A server's persisted form: a copy without its index and detector. */
export function persistedServer(server: ServerRecord): PersistedServer {
  const { hosted: _index, detector: _detector, ...persisted } = server;
  return persisted;
}

/** A region's persisted form: a deep copy with its maps as plain objects. */
export function persistedRegion(r: RegionRecord): PersistedRegion {
  return {
    ...r, backups: [...r.backups], syncing: Object.fromEntries(r.syncing), syncTarget: Object.fromEntries(r.syncTarget),
    appliedSeq: Object.fromEntries(r.appliedSeq),
    formerReplicas: [...r.formerReplicas], lostPrimary: r.lostPrimary && { ...r.lostPrimary },
  };
}

/**
 * Restores servers and regions into an empty context. Everything persisted was durable, so every
 * epoch counts as announced; pending deadlines restart from `nowMs`, since the time spent down is
 * the coordinator's outage, not the servers'. Suspicion is forgotten and judged afresh.
 */
export function importState(ctx: CoreContext, state: CoreState, nowMs: number): CoreState['numbers'] {
  if (state.version !== coreStateVersion) {
    throw new Error(`persisted core state has version ${state.version}; this build reads version ${coreStateVersion}`);
  }
  for (const saved of state.servers) {
    const server: ServerRecord = {
      ...saved, status: saved.status === 'suspect' ? 'alive' : saved.status, lastSeq: saved.lastSeq ?? null, hosted: new Set(),
      detector: new ServerDetector(ctx.config, nowMs),
    };
    ctx.topology.addServer(server);
    ctx.counts.statuses[server.status] += 1;
  }
  for (const saved of state.regions) {
    const region: RegionRecord = {
      ...saved, backups: [...saved.backups], formerReplicas: [...saved.formerReplicas],
      announcedEpoch: saved.epoch,
      deadlineMs: saved.deadlineMs === null ? null : nowMs + Math.max(0, saved.deadlineMs - state.savedAtMs),
      syncing: new Map(Object.entries(saved.syncing).map(([id, d]) => [id as ServerId, nowMs + Math.max(0, d - state.savedAtMs)])),
      syncTarget: replicaMap(saved.syncTarget ?? {}),
      appliedSeq: replicaMap(saved.appliedSeq),
    };
    ctx.topology.addRegion(region);
    ctx.counts.phases[region.phase] += 1;
  }
  return state.numbers;
}

function replicaMap(saved: Readonly<Record<string, number>>): Map<ServerId, number> {
  return new Map(Object.entries(saved) as [ServerId, number][]);
}

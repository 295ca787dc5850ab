/**
 * Change records: the core's persistent state as keyed records, so that a store writes what changed
 * instead of the whole state (Redis's append-only file, etcd's write-ahead log).
 *
 * A record is a key and a JSON value; `null` deletes the key. Servers, regions, alerts, failover
 * records and each player's buffered actions are one record each; the small book-keeping parts
 * (positions and id counters, the alert book's order, failover counts and samples, buffer counters,
 * degraded mode) are one record per part. The parts of the core note what they change (Topology's
 * `changedServers`/`changedRegions`, the alert book, the failover metrics, the action buffer); the
 * tracker here turns those notes into records. Replaying every batch in order over an empty map
 * gives back, through {@link stateFromRecords}, what `exportState` returns, up to the fields that
 * heartbeats refresh without a write (tests/simulation/change-records.test.ts checks this).
 *
 * A new persisted field of a server, region, alert or failover record needs nothing here; a new
 * persisted part of the core needs a record key below, in `take`, `recordsOfState` and
 * `stateFromRecords`. Keep each record well under 1 MiB (a distributed store limits request sizes).
 */
import type { ActionBufferJSON, PlayerBufferJSON } from '../actions/action-buffer.ts';
import type { Alert } from '../health/alerts.ts';
import type { FailoverMetricsJSON, FailoverRecord } from '../health/failover-metrics.ts';
import type { DegradedModeJSON } from '../health/degraded-mode.ts';
import type { CoreContext } from '../failover/context.ts';
import type { PlayerId, RegionId } from '../base/types.ts';
import { takeFromSet } from '../base/take-from-set.ts';
import { coreStateVersion, persistedRegion, persistedServer, type CoreState, type PersistedRegion, type PersistedServer } from './state.ts';

/** One change: the record's new value under its key, or `null` when the record is gone. */
export interface ChangeRecord {
  readonly key: string;
  readonly value: unknown;
}

/** The records changed up to change `seq`: making them durable makes that change durable. */
export interface ChangeBatch {
  readonly seq: number;
  readonly records: readonly ChangeRecord[];
}

/** The record that carries positions, id counters and the time of the write. */
interface MetaRecord {
  readonly version: number;
  readonly savedAtMs: number;
  readonly positions: CoreState['positions'];
  readonly numbers: CoreState['numbers'];
}

/** A buffered player's record names its region, which the key alone does not carry readably. */
type PlayerRecord = PlayerBufferJSON & { readonly regionId: RegionId };

const key = {
  meta: 'meta', degraded: 'degraded', alertBook: 'alerts', metrics: 'metrics', bufferCounters: 'buffer',
  server: (id: string) => `server:${id}`,
  region: (id: string) => `region:${id}`,
  alert: (id: string) => `alert:${id}`,
  failover: (id: string) => `failover:${id}`,
  // Both ids inside a JSON array: ids may contain any character, and two pairs must never share a key.
  player: (regionId: string, playerId: string) => `player:${JSON.stringify([regionId, playerId])}`,
} as const;

/** Turns the core's notes of what changed into change records; one per coordinator. */
export class ChangeTracker {
  // The small parts are compared with what was last handed out, so an unchanged part is not written.
  private lastDegraded = '';
  private lastCounters = '';

  /**
   * Every record changed since the last call, as of now, and forgets the notes: the caller must keep
   * the batch until it is durable (a failed write is retried with the same records).
   */
  take(ctx: CoreContext, nowMs: number, numbers: CoreState['numbers']): ChangeBatch {
    const records = this.takeSome(ctx, Infinity);
    const alerts = ctx.alerts.takeChanges();
    for (const id of alerts.ids) records.push({ key: key.alert(id), value: ctx.alerts.get(id) ?? null });
    if (alerts.order !== null) records.push({ key: key.alertBook, value: alerts.order });
    const metrics = ctx.metrics.takeChanges();
    for (const id of metrics.ids) records.push(failoverRecord(ctx, id));
    if (metrics.summary !== null) records.push({ key: key.metrics, value: metrics.summary });
    const counters = JSON.stringify(ctx.buffer.counters());
    if (counters !== this.lastCounters) records.push({ key: key.bufferCounters, value: JSON.parse(counters) as unknown });
    this.lastCounters = counters;
    const degraded = JSON.stringify(ctx.degraded.toJSON());
    if (degraded !== this.lastDegraded) records.push({ key: key.degraded, value: JSON.parse(degraded) as unknown });
    this.lastDegraded = degraded;
    const { eventSeq, changeSeq } = ctx.outbox.positions();
    const meta: MetaRecord = { version: coreStateVersion, savedAtMs: nowMs, positions: { eventSeq, changeSeq }, numbers: { ...numbers } };
    records.push({ key: key.meta, value: meta });
    return { seq: changeSeq, records };
  }

  /**
   * Part of the next `take`, so that a large change can be copied in slices between turns of the
   * event loop: at most `max` records of changed servers, regions, failover records and buffered
   * players, as of now, taken out of the notes. A record changed again afterwards is noted again and
   * handed out again, so the last record of a key up to the closing `take` holds its value then.
   */
  takeSome(ctx: CoreContext, max: number): ChangeRecord[] {
    const { topology, buffer } = ctx;
    const records: ChangeRecord[] = [];
    for (const id of takeFromSet(topology.changedServers, max)) {
      const server = topology.servers.get(id);
      records.push({ key: key.server(id), value: server === undefined ? null : persistedServer(server) });
    }
    for (const id of takeFromSet(topology.changedRegions, max - records.length)) {
      const region = topology.regions.get(id);
      records.push({ key: key.region(id), value: region === undefined ? null : persistedRegion(region) });
    }
    for (const id of ctx.metrics.takeChangedIds(max - records.length)) records.push(failoverRecord(ctx, id));
    for (const [regionId, playerId] of buffer.takeChangedPlayers(max - records.length)) {
      const player = buffer.playerRecord(regionId, playerId);
      records.push({ key: key.player(regionId, playerId), value: player === null ? null : { regionId, ...player } });
    }
    return records;
  }
}

function failoverRecord(ctx: CoreContext, id: string): ChangeRecord {
  return { key: key.failover(id), value: ctx.metrics.get(id) ?? null };
}

/** A whole state as records (a data file of the previous, whole-document format; tests). */
export function recordsOfState(state: CoreState): ChangeRecord[] {
  const records: ChangeRecord[] = [];
  for (const server of state.servers) records.push({ key: key.server(server.id), value: server });
  for (const region of state.regions) records.push({ key: key.region(region.id), value: region });
  for (const alert of state.alerts.alerts) records.push({ key: key.alert(alert.id), value: alert });
  records.push({ key: key.alertBook, value: { nextId: state.alerts.nextId, resolvedOrder: state.alerts.resolvedOrder } });
  const { records: failovers, ...metrics } = state.metrics;
  for (const record of failovers) records.push({ key: key.failover(record.id), value: record });
  records.push({ key: key.metrics, value: metrics });
  for (const { regionId, players } of state.buffer.regions) {
    for (const player of players) records.push({ key: key.player(regionId, player.playerId), value: { regionId, ...player } });
  }
  records.push({ key: key.bufferCounters, value: state.buffer.counters });
  records.push({ key: key.degraded, value: state.degraded });
  const meta: MetaRecord = { version: state.version, savedAtMs: state.savedAtMs, positions: state.positions, numbers: state.numbers };
  records.push({ key: key.meta, value: meta });
  return records;
}

/**
 * Assembles the state that a map of records (key -> value, deletions applied) describes, or
 * undefined when it holds no `meta` record (nothing was ever written). Values are used as they are:
 * the caller checks the result's shape (src/store/data-file-schema.ts) before the core sees it.
 */
export function stateFromRecords(records: ReadonlyMap<string, unknown>): CoreState | undefined {
  const meta = records.get(key.meta) as MetaRecord | undefined;
  if (meta === undefined) return undefined;
  const servers: PersistedServer[] = [];
  const regions: PersistedRegion[] = [];
  const alerts: Alert[] = [];
  const failovers: FailoverRecord[] = [];
  const players = new Map<RegionId, PlayerBufferJSON[]>();
  for (const [recordKey, value] of records) {
    const colon = recordKey.indexOf(':');
    const kind = colon === -1 ? recordKey : recordKey.slice(0, colon);
    if (kind === 'server') servers.push(value as PersistedServer);
    else if (kind === 'region') regions.push(value as PersistedRegion);
    else if (kind === 'alert') alerts.push(value as Alert);
    else if (kind === 'failover') failovers.push(value as FailoverRecord);
    else if (kind === 'player') addPlayer(players, value as PlayerRecord);
  }
  const alertBook = records.get(key.alertBook) as { nextId: number; resolvedOrder: string[] } | undefined;
  const metrics = records.get(key.metrics) as Omit<FailoverMetricsJSON, 'records'> | undefined;
  return {
    version: meta.version, savedAtMs: meta.savedAtMs, positions: meta.positions, numbers: meta.numbers, servers, regions,
    alerts: { nextId: alertBook?.nextId ?? 1, resolvedOrder: alertBook?.resolvedOrder ?? [], alerts: alerts.sort(byNumber('alert-')) },
    metrics: {
      ...(metrics ?? { nextId: 1, detectionSamples: [], recoverySamples: [], total: 0, completed: 0, failed: 0, falseFailovers: 0 }),
      records: failovers.sort(byNumber('fo-')),
    },
    buffer: bufferOf(players, records.get(key.bufferCounters) as ActionBufferJSON['counters'] | undefined),
    degraded: (records.get(key.degraded) as DegradedModeJSON | undefined) ??
      { level: 'NORMAL', since: meta.savedAtMs, belowSinceMs: null, failures: [] },
  };
}

function addPlayer(players: Map<RegionId, PlayerBufferJSON[]>, record: PlayerRecord): void {
  const { regionId, ...player } = record;
  const list = players.get(regionId);
  if (list === undefined) players.set(regionId, [player]);
  else list.push(player);
}

/** The buffer in its canonical order (regions, then players, by id). */
function bufferOf(players: Map<RegionId, PlayerBufferJSON[]>, counters: ActionBufferJSON['counters'] | undefined): ActionBufferJSON {
  const regions = [...players.entries()].sort(([a], [b]) => compareText(a, b)).map(([regionId, list]) => ({
    regionId, players: list.sort((a, b) => compareText(a.playerId as PlayerId, b.playerId as PlayerId)),
  }));
  return { version: 1, regions, counters: counters ?? { buffered: 0, replayed: 0, expired: 0, rejected: 0, duplicates: 0 } };
}

/** Orders ids `<prefix><n>` by n, which counts up in creation order. */
function byNumber(prefix: string): (a: { id: string }, b: { id: string }) => number {
  return (a, b) => Number(a.id.slice(prefix.length)) - Number(b.id.slice(prefix.length));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Failover history and timing statistics.
 *
 * Each failover is a record from detection to completion (or to giving up). Two durations are
 * sampled: detection (failure detected minus the failed server's last heartbeat) when the failover
 * starts, and recovery (completion minus that last heartbeat) when it completes. The statistics
 * cover every failover ever recorded since the last `reset`, because operators judge the mesh
 * by its whole history; the list of records is bounded by `failoverHistoryLimit` so memory and
 * persisted size stay flat. Records still in progress are never dropped: the coordinator still
 * drives them by id.
 */
import { MinHeap } from '../base/heap.ts';
import { takeFromSet } from '../base/take-from-set.ts';
import { invariantFor, type Invariant } from '../base/invariant.ts';
import type { RegionId, ServerId } from '../base/types.ts';

const invariant: Invariant = invariantFor('failover-metrics invariant violated');

/** One failover of one region. Times are coordinator milliseconds. */
export interface FailoverRecord {
  /** Stable id (`fo-N`), never reused. */
  readonly id: string;
  readonly regionId: RegionId;
  /** The primary that failed; null when the region lost its primary without a known server. */
  readonly failedServerId: ServerId | null;
  /** The backup currently promoted; null until a candidate exists. */
  readonly newPrimaryId: ServerId | null;
  /** Whether the region was critical (recovered first). */
  readonly critical: boolean;
  /** Players in the region when it failed. */
  readonly players: number;
  /** Epoch of the latest promotion. */
  readonly epoch: number;
  /** The failed server's last heartbeat. */
  readonly failedAtMs: number;
  /** When the failure was declared. */
  readonly detectedAtMs: number;
  /** When the current candidate was promoted; null until one is. */
  readonly promotedAtMs: number | null;
  /** When the failover ended: the new primary acknowledged, or (outcome `failed`) it was given up. */
  readonly completedAtMs: number | null;
  /** detectedAtMs - failedAtMs. */
  readonly detectionMs: number;
  /** completedAtMs - failedAtMs for a completed failover; null otherwise. */
  readonly recoveryMs: number | null;
  readonly outcome: 'in_progress' | 'completed' | 'failed';
}

/** What the coordinator knows when a failover starts. */
export type FailoverStart = Pick<FailoverRecord,
  'regionId' | 'failedServerId' | 'newPrimaryId' | 'critical' | 'players' | 'epoch'
  | 'failedAtMs' | 'detectedAtMs' | 'promotedAtMs'>;

/** Distribution of durations in ms; all zeros when `count` is 0. Percentiles are nearest-rank. */
export interface DurationStats {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** Failover counts, history-wide and snake_case because they are served as is over HTTP. */
export interface FailoverCounts {
  readonly total: number;
  readonly completed: number;
  readonly in_progress: number;
  readonly failed: number;
}

/** What {@link FailoverMetrics.summary} returns. */
export interface FailoverSummary {
  readonly failovers: FailoverCounts;
  readonly detection_ms: DurationStats;
  readonly recovery_ms: DurationStats;
  readonly false_failovers: number;
  /** The newest kept records, newest first, at most 50. */
  readonly recent: FailoverRecord[];
}

/** Persisted form of {@link FailoverMetrics}; `fromJSON(toJSON())` restores it exactly. */
export interface FailoverMetricsJSON {
  readonly nextId: number;
  /** Kept records, oldest started first. */
  readonly records: readonly FailoverRecord[];
  readonly detectionSamples: readonly number[];
  readonly recoverySamples: readonly number[];
  readonly total: number;
  readonly completed: number;
  readonly failed: number;
  readonly falseFailovers: number;
}

type MutableRecord = { -readonly [K in keyof FailoverRecord]: FailoverRecord[K] };

const recentLimit = 50;

/** Failover ids are this prefix and a number that counts up in start order. */
const idPrefix = 'fo-';

/** Statistics of a list of durations, in any order. */
export function summarize(values: readonly number[]): DurationStats {
  return statsOfSorted(Float64Array.from(values).sort());
}

function statsOfSorted(sorted: Float64Array): DurationStats {
  const count = sorted.length;
  if (count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count,
    min: sorted[0] ?? 0,
    mean: sum / count,
    p50: nearestRank(sorted, 50),
    p95: nearestRank(sorted, 95),
    p99: nearestRank(sorted, 99),
    max: sorted[count - 1] ?? 0,
  };
}

/** The smallest sample with at least `percent`% of the samples at or below it. */
function nearestRank(sorted: Float64Array, percent: number): number {
  // Integer arithmetic first, so that 95 * 20 / 100 is exactly 19 and not 19.000000000000004.
  const rank = Math.max(1, Math.ceil((percent * sorted.length) / 100));
  return sorted[rank - 1] ?? 0;
}

/**
 * How many of the most recent failovers the duration statistics cover. The state is persisted as
 * one JSON document on every coalesced write, so the samples must be bounded: 10,000 per series is
 * about 200 KB of JSON, and a percentile over the last 10,000 failovers is what an operator needs.
 */
export const statsSampleLimit = 10_000;

/** The most recent samples of one duration, with statistics cached until the next sample. */
class SampleSeries {
  private buffer: number[] = [];
  private cached: DurationStats | null = null;

  push(value: number): void {
    invariant(Number.isFinite(value) && value >= 0, () => `a duration must be finite and >= 0, got ${value}`);
    this.buffer.push(value);
    // Trim in batches so that each push stays O(1) amortised.
    if (this.buffer.length > 2 * statsSampleLimit) this.buffer = this.buffer.slice(-statsSampleLimit);
    this.cached = null;
  }

  /** The samples the statistics cover, oldest first. */
  get values(): number[] {
    return this.buffer.length > statsSampleLimit ? this.buffer.slice(-statsSampleLimit) : this.buffer;
  }

  stats(): DurationStats {
    this.cached ??= summarize(this.values);
    return { ...this.cached };
  }
}

/** Failover records (bounded), counts of every failover, and statistics over the most recent ones. */
export class FailoverMetrics {
  private readonly limit: number;
  /** Kept records by id; Map insertion order is start order. */
  private records = new Map<string, MutableRecord>();
  /** Finished kept records, oldest started first: the ones the history drops when it is full. */
  private finished = new MinHeap<FinishedEntry>(byStartOrder);
  private detection = new SampleSeries();
  private recovery = new SampleSeries();
  private nextId = 1;
  private total = 0;
  private completed = 0;
  private failed = 0;
  private falseFailovers = 0;
  /** Records changed or dropped since {@link takeChanges}, and whether the counts or samples changed. */
  private readonly changedIds = new Set<string>();
  private summaryChanged = false;

  /** @param failoverHistoryLimit most records kept; in-progress records may exceed it. */
  constructor(failoverHistoryLimit: number) {
    invariant(Number.isInteger(failoverHistoryLimit) && failoverHistoryLimit >= 0,
      `failoverHistoryLimit must be an integer >= 0, got ${failoverHistoryLimit}`);
    this.limit = failoverHistoryLimit;
  }

  /**
   * Opens a failover record, samples its detection time and returns the record's id (no copy of
   * the record: a mass failure opens thousands in one tick; `get` reads one).
   */
  start(input: FailoverStart): string {
    invariant(input.detectedAtMs >= input.failedAtMs, 'a failure cannot be detected before the last heartbeat');
    const record: MutableRecord = {
      id: `${idPrefix}${this.nextId}`,
      // Fields are picked one by one so that extra properties of the caller's object never leak in.
      regionId: input.regionId,
      failedServerId: input.failedServerId,
      newPrimaryId: input.newPrimaryId,
      critical: input.critical,
      players: input.players,
      epoch: input.epoch,
      failedAtMs: input.failedAtMs,
      detectedAtMs: input.detectedAtMs,
      promotedAtMs: input.promotedAtMs,
      completedAtMs: null,
      detectionMs: input.detectedAtMs - input.failedAtMs,
      recoveryMs: null,
      outcome: 'in_progress',
    };
    this.nextId += 1;
    this.total += 1;
    this.summaryChanged = true;
    this.keep(record);
    this.detection.push(record.detectionMs);
    this.dropOldFinished();
    return record.id;
  }

  /** Moves a failover to the next candidate after the previous one failed to acknowledge. */
  repromote(id: string, newPrimaryId: ServerId, epoch: number, nowMs: number): FailoverRecord {
    const record = this.inProgressRecord(id);
    invariant(epoch > record.epoch, () => `repromotion of ${id} must raise the epoch above ${record.epoch}, got ${epoch}`);
    this.changedIds.add(id);
    record.newPrimaryId = newPrimaryId;
    record.epoch = epoch;
    record.promotedAtMs = nowMs;
    return { ...record };
  }

  /** Marks a failover done (the new primary acknowledged) and samples its recovery time. */
  complete(id: string, nowMs: number): FailoverRecord {
    const record = this.inProgressRecord(id);
    invariant(record.newPrimaryId !== null, () => `${id} cannot complete without a promoted primary`);
    invariant(nowMs >= record.failedAtMs, () => `${id} cannot complete before its failure`);
    record.completedAtMs = nowMs;
    record.recoveryMs = nowMs - record.failedAtMs;
    record.outcome = 'completed';
    this.summaryChanged = true;
    this.completed += 1;
    this.recovery.push(record.recoveryMs);
    this.finish(record);
    return { ...record };
  }

  /** Gives a failover up because no candidate is left; it yields no recovery sample. */
  fail(id: string, nowMs: number): FailoverRecord {
    const record = this.inProgressRecord(id);
    record.completedAtMs = nowMs;
    record.outcome = 'failed';
    this.summaryChanged = true;
    this.failed += 1;
    this.finish(record);
    return { ...record };
  }

  /** A copy of a kept record, or undefined if it never existed or was dropped. */
  get(id: string): FailoverRecord | undefined {
    const record = this.records.get(id);
    return record === undefined ? undefined : { ...record };
  }

  /** Failovers still running, oldest first. */
  inProgress(): FailoverRecord[] {
    return [...this.records.values()].filter((r) => r.outcome === 'in_progress').map((r) => ({ ...r }));
  }

  /** Counts a server declared failed that later proved alive; returns the new count. */
  recordFalseFailover(): number {
    this.summaryChanged = true;
    this.falseFailovers += 1;
    return this.falseFailovers;
  }

  /** Counts and statistics over every failover since the last reset, plus the newest records. */
  summary(): FailoverSummary {
    const kept = [...this.records.values()];
    return {
      failovers: {
        total: this.total,
        completed: this.completed,
        in_progress: this.total - this.completed - this.failed,
        failed: this.failed,
      },
      detection_ms: this.detection.stats(),
      recovery_ms: this.recovery.stats(),
      false_failovers: this.falseFailovers,
      recent: kept.slice(-recentLimit).reverse().map((r) => ({ ...r })),
    };
  }

  /**
   * Forgets every finished failover, every sample and every counter. Failovers in progress are
   * kept (the coordinator still completes them by id) and count as in progress; ids keep counting
   * so that an id seen before the reset never names a different failover.
   */
  reset(): void {
    const running = [...this.records.values()].filter((r) => r.outcome === 'in_progress');
    for (const id of this.records.keys()) this.changedIds.add(id);
    this.summaryChanged = true;
    this.records = new Map();
    this.finished = new MinHeap(byStartOrder);
    for (const record of running) this.keep(record);
    this.detection = new SampleSeries();
    this.recovery = new SampleSeries();
    this.total = running.length;
    this.completed = 0;
    this.failed = 0;
    this.falseFailovers = 0;
  }

  /** At most `max` of the ids {@link takeChanges} would return, forgotten as they are taken. */
  takeChangedIds(max: number): string[] {
    return takeFromSet(this.changedIds, max);
  }

  /**
   * What changed since the last call, for the core's change records: the ids of records changed or
   * dropped (`get` then returns the record or undefined), and the counts and samples when they
   * changed (null otherwise).
   */
  takeChanges(): { ids: string[]; summary: Omit<FailoverMetricsJSON, 'records'> | null } {
    const ids = this.takeChangedIds(Infinity);
    let summary: Omit<FailoverMetricsJSON, 'records'> | null = null;
    if (this.summaryChanged) {
      const { records: _records, ...rest } = this.toJSON(false);
      summary = rest;
    }
    this.summaryChanged = false;
    return { ids, summary };
  }

  /** Plain-data snapshot for persistence (at most {@link statsSampleLimit} samples per series). */
  toJSON(withRecords = true): FailoverMetricsJSON {
    return {
      nextId: this.nextId,
      records: withRecords ? [...this.records.values()].map((r) => ({ ...r })) : [],
      detectionSamples: [...this.detection.values],
      recoverySamples: [...this.recovery.values],
      total: this.total,
      completed: this.completed,
      failed: this.failed,
      falseFailovers: this.falseFailovers,
    };
  }

  /** Restores metrics saved by {@link toJSON}; inconsistent data is a programmer error and throws. */
  static fromJSON(data: FailoverMetricsJSON, failoverHistoryLimit: number): FailoverMetrics {
    const metrics = new FailoverMetrics(failoverHistoryLimit);
    invariant(Number.isInteger(data.nextId) && data.nextId >= 1, `bad nextId ${data.nextId}`);
    invariant(data.completed + data.failed <= data.total, 'more finished failovers than started ones');
    metrics.nextId = data.nextId;
    for (const saved of data.records) {
      invariant(!metrics.records.has(saved.id), `duplicate failover id ${saved.id}`);
      const record = { ...saved };
      metrics.keep(record);
      if (record.outcome !== 'in_progress') metrics.finish(record);
    }
    const running = metrics.inProgress().length;
    invariant(running === data.total - data.completed - data.failed, 'in-progress records do not match the counts');
    for (const value of data.detectionSamples) metrics.detection.push(value);
    for (const value of data.recoverySamples) metrics.recovery.push(value);
    metrics.total = data.total;
    metrics.completed = data.completed;
    metrics.failed = data.failed;
    metrics.falseFailovers = data.falseFailovers;
    metrics.dropOldFinished();
    return metrics;
  }

  private inProgressRecord(id: string): MutableRecord {
    const record = this.records.get(id);
    invariant(record !== undefined, () => `unknown failover ${id}`);
    invariant(record.outcome === 'in_progress', () => `failover ${id} already ended as ${record.outcome}`);
    return record;
  }

  /** Adds a record to the history, after every record started before it. */
  private keep(record: MutableRecord): void {
    this.records.set(record.id, record);
    this.changedIds.add(record.id);
  }

  /**
   * A kept record has ended: it may now be dropped when the history is full. Ids are `fo-N` with N
   * counting up as failovers start, so N is the start order (no second map keyed by id: a mass
   * failure starts thousands of failovers in one tick).
   */
  private finish(record: MutableRecord): void {
    this.changedIds.add(record.id);
    this.finished.push({ order: Number(record.id.slice(idPrefix.length)), id: record.id });
    this.dropOldFinished();
  }

  /**
   * Drops the oldest started finished records while the history is over its limit. Records in
   * progress are never dropped, so the history may exceed the limit while they run; finished
   * records wait in a heap by start order, which keeps each drop O(log n) even when thousands of
   * failovers are in progress at once (a mass failure).
   */
  private dropOldFinished(): void {
    while (this.records.size > this.limit) {
      const oldest = this.finished.pop();
      if (oldest === undefined) return;
      this.records.delete(oldest.id);
      this.changedIds.add(oldest.id);
    }
  }
}

interface FinishedEntry {
  readonly order: number;
  readonly id: string;
}

function byStartOrder(a: FinishedEntry, b: FinishedEntry): boolean {
  return a.order < b.order;
}

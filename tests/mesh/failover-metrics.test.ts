import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FailoverMetrics, summarize } from '../../mesh/health/failover-metrics.ts';
import { statsSampleLimit } from '../../mesh/health/failover-metrics.ts';
import type { DurationStats, FailoverMetricsJSON, FailoverStart } from '../../mesh/health/failover-metrics.ts';
import { regionId, serverId } from '../../mesh/base/types.ts';

const zero: DurationStats = { count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };

/** 1..100 in a scrambled but fixed order (37 is coprime with 100, so every value appears once). */
const scrambled = Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) + 1);

describe('summarize (nearest-rank percentiles)', () => {
  const cases: [string, number[], DurationStats][] = [
    ['no sample', [], zero],
    ['1 sample', [7], { count: 1, min: 7, mean: 7, p50: 7, p95: 7, p99: 7, max: 7 }],
    ['2 samples', [10, 20], { count: 2, min: 10, mean: 15, p50: 10, p95: 20, p99: 20, max: 20 }],
    ['2 samples, reversed', [20, 10], { count: 2, min: 10, mean: 15, p50: 10, p95: 20, p99: 20, max: 20 }],
    ['3 unsorted samples', [30, 10, 20], { count: 3, min: 10, mean: 20, p50: 20, p95: 30, p99: 30, max: 30 }],
    ['1..100 sorted', Array.from({ length: 100 }, (_, i) => i + 1),
      { count: 100, min: 1, mean: 50.5, p50: 50, p95: 95, p99: 99, max: 100 }],
    ['1..100 unsorted', scrambled, { count: 100, min: 1, mean: 50.5, p50: 50, p95: 95, p99: 99, max: 100 }],
    ['20 samples (95% of 20 is exactly 19)', Array.from({ length: 20 }, (_, i) => i + 1),
      { count: 20, min: 1, mean: 10.5, p50: 10, p95: 19, p99: 20, max: 20 }],
    ['duplicates and numeric (not lexical) order', [100, 9, 9, 1000],
      { count: 4, min: 9, mean: 279.5, p50: 9, p95: 1000, p99: 1000, max: 1000 }],
  ];
  for (const [name, values, expected] of cases) {
    test(name, () => assert.deepEqual(summarize(values), expected));
  }

  test('does not reorder the caller’s array', () => {
    const values = [3, 1, 2];
    summarize(values);
    assert.deepEqual(values, [3, 1, 2]);
  });
});

const startInput = (overrides: Partial<FailoverStart> = {}): FailoverStart => ({
  regionId: regionId('r1'),
  failedServerId: serverId('s1'),
  newPrimaryId: serverId('s2'),
  critical: false,
  players: 12,
  epoch: 2,
  failedAtMs: 1000,
  detectedAtMs: 1400,
  promotedAtMs: 1400,
  ...overrides,
});

describe('FailoverMetrics life cycle', () => {
  test('start opens a record and samples detection time', () => {
    const metrics = new FailoverMetrics(10);
    const id = metrics.start(startInput());
    assert.equal(id, 'fo-1');
    assert.deepEqual(metrics.get(id), {
      id: 'fo-1', regionId: 'r1', failedServerId: 's1', newPrimaryId: 's2', critical: false,
      players: 12, epoch: 2, failedAtMs: 1000, detectedAtMs: 1400, promotedAtMs: 1400,
      completedAtMs: null, detectionMs: 400, recoveryMs: null, outcome: 'in_progress',
    });
    assert.equal(metrics.summary().detection_ms.count, 1);
    assert.equal(metrics.start(startInput()), 'fo-2');
  });

  test('repromote moves to the next candidate; complete samples recovery from the last heartbeat', () => {
    const metrics = new FailoverMetrics(10);
    const id = metrics.start(startInput());
    const moved = metrics.repromote(id, serverId('s3'), 3, 4500);
    assert.equal(moved.newPrimaryId, 's3');
    assert.equal(moved.epoch, 3);
    assert.equal(moved.promotedAtMs, 4500);
    const done = metrics.complete(id, 4600);
    assert.equal(done.outcome, 'completed');
    assert.equal(done.completedAtMs, 4600);
    assert.equal(done.recoveryMs, 3600);
    assert.deepEqual(metrics.summary().recovery_ms, { count: 1, min: 3600, mean: 3600, p50: 3600, p95: 3600, p99: 3600, max: 3600 });
  });

  test('fail ends a failover without a recovery sample', () => {
    const metrics = new FailoverMetrics(10);
    const id = metrics.start(startInput({ newPrimaryId: null, promotedAtMs: null }));
    const failed = metrics.fail(id, 9000);
    assert.equal(failed.outcome, 'failed');
    assert.equal(failed.recoveryMs, null);
    assert.equal(failed.completedAtMs, 9000);
    assert.equal(metrics.summary().recovery_ms.count, 0);
    assert.deepEqual(metrics.inProgress(), []);
  });

  test('programmer errors throw', () => {
    const metrics = new FailoverMetrics(10);
    const id = metrics.start(startInput());
    assert.throws(() => metrics.repromote(id, serverId('s3'), 2, 0), /raise the epoch/);
    metrics.complete(id, 2000);
    assert.throws(() => metrics.complete(id, 3000), /already ended as completed/);
    assert.throws(() => metrics.fail('fo-99', 0), /unknown failover fo-99/);
    assert.throws(() => metrics.start(startInput({ detectedAtMs: 999 })), /before the last heartbeat/);
    const orphan = metrics.start(startInput({ newPrimaryId: null }));
    assert.throws(() => metrics.complete(orphan, 5000), /without a promoted primary/);
  });

  test('returned records are copies', () => {
    const metrics = new FailoverMetrics(10);
    const record = metrics.get(metrics.start(startInput())) as { players: number };
    record.players = 0;
    (metrics.inProgress()[0] as { players: number }).players = 0;
    assert.equal(metrics.get('fo-1')?.players, 12);
  });
});

describe('FailoverMetrics history and summary', () => {
  test('history drops the oldest finished records first and never one in progress', () => {
    const metrics = new FailoverMetrics(3);
    const [first, second] = [metrics.start(startInput()), metrics.start(startInput())];
    metrics.start(startInput());
    metrics.complete(second, 2000);
    metrics.complete(first, 2100);
    const kept = () => metrics.summary().recent.map((r) => r.id).reverse();
    assert.deepEqual(kept(), ['fo-1', 'fo-2', 'fo-3'], 'at the limit nothing is dropped');
    metrics.start(startInput());
    assert.deepEqual(kept(), ['fo-2', 'fo-3', 'fo-4'], 'the oldest started finished record goes first');
    metrics.start(startInput());
    metrics.start(startInput());
    assert.deepEqual(kept(), ['fo-3', 'fo-4', 'fo-5', 'fo-6'], 'running records exceed the limit rather than vanish');
    metrics.fail('fo-5', 3000);
    assert.deepEqual(kept(), ['fo-3', 'fo-4', 'fo-6'], 'a finished record is dropped as soon as one exists');
    assert.deepEqual(metrics.inProgress().map((r) => r.id), ['fo-3', 'fo-4', 'fo-6']);
  });

  test('statistics and counts cover every failover ever, not just the kept history', () => {
    const metrics = new FailoverMetrics(2);
    for (let i = 0; i < 100; i += 1) {
      const id = metrics.start(startInput({ failedAtMs: 0, detectedAtMs: i + 1 }));
      if (i % 10 === 0) metrics.fail(id, 500);
      else if (i < 95) metrics.complete(id, 1000 + i);
    }
    const summary = metrics.summary();
    assert.deepEqual(summary.failovers, { total: 100, completed: 85, in_progress: 5, failed: 10 });
    assert.deepEqual(summary.detection_ms, { count: 100, min: 1, mean: 50.5, p50: 50, p95: 95, p99: 99, max: 100 });
    assert.equal(summary.recovery_ms.count, 85);
    // Five in progress stay although the limit is two; they are the newest, so recent shows them.
    assert.deepEqual(summary.recent.map((r) => r.id), ['fo-100', 'fo-99', 'fo-98', 'fo-97', 'fo-96']);
  });

  test('recent is newest first and at most 50', () => {
    const metrics = new FailoverMetrics(1000);
    for (let i = 0; i < 80; i += 1) metrics.complete(metrics.start(startInput()), 2000);
    const recent = metrics.summary().recent;
    assert.equal(recent.length, 50);
    assert.equal(recent[0]?.id, 'fo-80');
    assert.equal(recent[49]?.id, 'fo-31');
  });

  test('the cached statistics follow every new sample', () => {
    const metrics = new FailoverMetrics(10);
    metrics.start(startInput({ failedAtMs: 0, detectedAtMs: 10 }));
    assert.equal(metrics.summary().detection_ms.max, 10);
    assert.equal(metrics.summary().detection_ms.max, 10);
    metrics.start(startInput({ failedAtMs: 0, detectedAtMs: 30 }));
    assert.deepEqual(metrics.summary().detection_ms, { count: 2, min: 10, mean: 20, p50: 10, p95: 30, p99: 30, max: 30 });
    (metrics.summary().detection_ms as { max: number }).max = -1;
    assert.equal(metrics.summary().detection_ms.max, 30, 'callers cannot corrupt the cache');
  });

  test('many failovers: bounded history and samples, counts over all of them, statistics over the most recent', () => {
    const metrics = new FailoverMetrics(10);
    // The first 15,000 detections take 9,999 ms and must fall out of the statistics window.
    for (let i = 0; i < 15_000; i += 1) {
      metrics.complete(metrics.start(startInput({ failedAtMs: 0, detectedAtMs: 9999 })), 12_000);
    }
    // 7919 is coprime with 5000, so each detection time 0..4999 occurs exactly twice in the window.
    for (let i = 0; i < statsSampleLimit; i += 1) {
      metrics.complete(metrics.start(startInput({ failedAtMs: 0, detectedAtMs: (i * 7919) % 5000 })), 6000);
    }
    const summary = metrics.summary();
    assert.equal(summary.failovers.total, 15_000 + statsSampleLimit);
    assert.deepEqual(summary.detection_ms, { count: statsSampleLimit, min: 0, mean: 2499.5, p50: 2499, p95: 4749, p99: 4949, max: 4999 });
    assert.equal(metrics.toJSON().records.length, 10);
    assert.equal(metrics.toJSON().detectionSamples.length, statsSampleLimit);
    assert.deepEqual(metrics.summary(), summary, 'a second summary without new samples is identical');
  });

  test('false failovers are counted', () => {
    const metrics = new FailoverMetrics(10);
    assert.equal(metrics.recordFalseFailover(), 1);
    assert.equal(metrics.recordFalseFailover(), 2);
    assert.equal(metrics.summary().false_failovers, 2);
  });

  test('reset forgets finished failovers and samples, keeps running ones and the id counter', () => {
    const metrics = new FailoverMetrics(10);
    const running = metrics.start(startInput());
    metrics.complete(metrics.start(startInput()), 5000);
    metrics.recordFalseFailover();
    metrics.reset();
    const summary = metrics.summary();
    assert.deepEqual(summary.failovers, { total: 1, completed: 0, in_progress: 1, failed: 0 });
    assert.equal(summary.detection_ms.count, 0);
    assert.equal(summary.recovery_ms.count, 0);
    assert.equal(summary.false_failovers, 0);
    assert.equal(metrics.complete(running, 6000).outcome, 'completed');
    assert.equal(metrics.start(startInput()), 'fo-3');
    assert.deepEqual(metrics.summary().failovers, { total: 2, completed: 1, in_progress: 1, failed: 0 });
  });
});

describe('FailoverMetrics JSON', () => {
  const build = (): FailoverMetrics => {
    const metrics = new FailoverMetrics(3);
    for (let i = 0; i < 6; i += 1) {
      const id = metrics.start(startInput({ detectedAtMs: 1000 + i * 100, critical: i % 2 === 0 }));
      if (i % 3 === 0) metrics.complete(id, 5000 + i);
      else if (i % 3 === 1) metrics.fail(id, 6000);
    }
    metrics.repromote('fo-6', serverId('s9'), 5, 7000);
    metrics.recordFalseFailover();
    return metrics;
  };

  test('round-trips exactly through JSON text and keeps working', () => {
    const metrics = build();
    const restored = FailoverMetrics.fromJSON(JSON.parse(JSON.stringify(metrics.toJSON())) as FailoverMetricsJSON, 3);
    assert.deepEqual(restored.toJSON(), metrics.toJSON());
    assert.deepEqual(restored.summary(), metrics.summary());
    assert.equal(restored.start(startInput()), 'fo-7');
    assert.equal(restored.complete('fo-6', 8000).recoveryMs, 7000);
  });

  test('after a restore, the oldest started finished records are still the first dropped', () => {
    const metrics = new FailoverMetrics(3);
    const ids = [0, 1, 2].map(() => metrics.start(startInput()));
    metrics.complete(ids[2] as string, 2000);
    metrics.complete(ids[0] as string, 2100);
    const restored = FailoverMetrics.fromJSON(JSON.parse(JSON.stringify(metrics.toJSON())) as FailoverMetricsJSON, 3);
    restored.start(startInput());
    assert.deepEqual(restored.toJSON().records.map((r) => r.id), ['fo-2', 'fo-3', 'fo-4'], 'fo-1 started first, so it goes first');
    restored.start(startInput());
    assert.deepEqual(restored.toJSON().records.map((r) => r.id), ['fo-2', 'fo-4', 'fo-5']);
  });

  test('inconsistent data is rejected loudly', () => {
    const data = build().toJSON();
    assert.throws(() => FailoverMetrics.fromJSON({ ...data, failed: data.failed + 1 }, 3), /in-progress records/);
    assert.throws(() => FailoverMetrics.fromJSON({ ...data, detectionSamples: [-1] }, 3), /duration/);
  });
});

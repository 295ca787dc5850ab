import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DegradedMode, fidelityFor, levelFidelity, targetLevel } from '../../mesh/health/degraded-mode.ts';
import type { DegradedModeConfig, DegradedModeJSON, LevelSample } from '../../mesh/health/degraded-mode.ts';
import { defaultMeshConfig, degradedLevels } from '../../mesh/base/config.ts';
import type { DegradedLevel } from '../../mesh/base/types.ts';

const cooldownMs = 10_000;
const config: DegradedModeConfig = { ...defaultMeshConfig, degradedCooldownMs: cooldownMs };
const rank = (level: DegradedLevel): number => degradedLevels.indexOf(level);

describe('fidelity', () => {
  const cases: [DegradedLevel, boolean, number][] = [
    ['NORMAL', false, 1.0], ['LIGHT', false, 0.75], ['MODERATE', false, 0.5], ['SEVERE', false, 0.25],
    ['NORMAL', true, 1.0], ['LIGHT', true, 1.0], ['MODERATE', true, 0.75], ['SEVERE', true, 0.5],
  ];
  for (const [level, critical, fidelity] of cases) {
    test(`${level}${critical ? ' critical' : ''} runs at ${fidelity}`, () => {
      assert.equal(fidelityFor(level, critical), fidelity);
      if (!critical) assert.equal(levelFidelity[level], fidelity);
    });
  }
});

describe('targetLevel', () => {
  const none = { failuresInWindow: 0, failedServerShare: 0, impairedRegionShare: 0 };
  const cases: [string, Partial<LevelSample>, DegradedLevel, string?][] = [
    ['nothing wrong', {}, 'NORMAL',
      'no metric reaches a degraded threshold (0 failures in the last 60 s, 0% of servers failed, 0% of regions impaired)'],
    // Failures in the window alone: 3 / 6 / 12.
    ['2 failures (just below LIGHT)', { failuresInWindow: 2 }, 'NORMAL'],
    ['3 failures (at LIGHT)', { failuresInWindow: 3 }, 'LIGHT', '3 failures in the last 60 s (LIGHT at 3)'],
    ['4 failures (just above LIGHT)', { failuresInWindow: 4 }, 'LIGHT', '4 failures in the last 60 s (LIGHT at 3)'],
    ['5 failures (just below MODERATE)', { failuresInWindow: 5 }, 'LIGHT'],
    ['6 failures (at MODERATE)', { failuresInWindow: 6 }, 'MODERATE', '6 failures in the last 60 s (MODERATE at 6)'],
    ['7 failures', { failuresInWindow: 7 }, 'MODERATE'],
    ['11 failures', { failuresInWindow: 11 }, 'MODERATE'],
    ['12 failures (at SEVERE)', { failuresInWindow: 12 }, 'SEVERE', '12 failures in the last 60 s (SEVERE at 12)'],
    ['13 failures', { failuresInWindow: 13 }, 'SEVERE'],
    // Failed server share alone: 10% / 20% / 30%, also as the divisions the coordinator computes.
    ['9% failed', { failedServerShare: 0.09 }, 'NORMAL'],
    ['1 of 10 failed', { failedServerShare: 1 / 10 }, 'LIGHT', '10% of servers failed (LIGHT at 10%)'],
    ['11% failed', { failedServerShare: 0.11 }, 'LIGHT'],
    ['19.9% failed', { failedServerShare: 0.199 }, 'LIGHT'],
    ['2 of 10 failed', { failedServerShare: 2 / 10 }, 'MODERATE', '20% of servers failed (MODERATE at 20%)'],
    ['29.9% failed', { failedServerShare: 0.299 }, 'MODERATE'],
    ['3 of 10 failed', { failedServerShare: 3 / 10 }, 'SEVERE', '30% of servers failed (SEVERE at 30%)'],
    ['all failed', { failedServerShare: 1 }, 'SEVERE'],
    // Impaired region share alone: 5% / 15% / 30%.
    ['4.9% impaired', { impairedRegionShare: 0.049 }, 'NORMAL'],
    ['1 of 20 impaired', { impairedRegionShare: 1 / 20 }, 'LIGHT', '5% of regions impaired (LIGHT at 5%)'],
    ['14.9% impaired', { impairedRegionShare: 0.149 }, 'LIGHT'],
    ['3 of 20 impaired', { impairedRegionShare: 3 / 20 }, 'MODERATE', '15% of regions impaired (MODERATE at 15%)'],
    ['12.5% impaired', { impairedRegionShare: 0.125 }, 'LIGHT', '12.5% of regions impaired (LIGHT at 5%)'],
    ['6 of 20 impaired', { impairedRegionShare: 6 / 20 }, 'SEVERE'],
    // Combinations: the highest level wins, and only the metrics reaching it are named.
    ['LIGHT failures, MODERATE servers', { failuresInWindow: 3, failedServerShare: 0.2 }, 'MODERATE',
      '20% of servers failed (MODERATE at 20%)'],
    ['two metrics at MODERATE', { failuresInWindow: 6, failedServerShare: 0.2, impairedRegionShare: 0.05 }, 'MODERATE',
      '6 failures in the last 60 s (MODERATE at 6) and 20% of servers failed (MODERATE at 20%)'],
    ['all at SEVERE', { failuresInWindow: 12, failedServerShare: 0.3, impairedRegionShare: 0.3 }, 'SEVERE',
      '12 failures in the last 60 s (SEVERE at 12) and 30% of servers failed (SEVERE at 30%) and 30% of regions impaired (SEVERE at 30%)'],
    ['just below everywhere', { failuresInWindow: 2, failedServerShare: 0.099, impairedRegionShare: 0.049 }, 'NORMAL'],
    ['one metric is enough', { failuresInWindow: 0, failedServerShare: 0, impairedRegionShare: 0.3 }, 'SEVERE'],
    ['1 failure is singular', { failuresInWindow: 1 }, 'NORMAL',
      'no metric reaches a degraded threshold (1 failure in the last 60 s, 0% of servers failed, 0% of regions impaired)'],
  ];
  for (const [name, sample, level, reason] of cases) {
    test(`${name} -> ${level}`, () => {
      const target = targetLevel({ ...none, ...sample }, config);
      assert.equal(target.level, level);
      if (reason !== undefined) assert.equal(target.reason, reason);
    });
  }

  test('bad samples are programmer errors', () => {
    assert.throws(() => targetLevel({ ...none, failedServerShare: Number.NaN }, config), /failedServerShare/);
    assert.throws(() => targetLevel({ ...none, failuresInWindow: -1 }, config), /failuresInWindow/);
  });
});

/** One evaluation of a script: time, failed-server share, expected level, expected change. */
type Step = [atMs: number, failedShare: number, level: DegradedLevel, change?: string];

const S = 0.3;
const M = 0.2;
const L = 0.1;
const N = 0;

function runScript(steps: readonly Step[], mode = new DegradedMode(config)): DegradedMode {
  for (const [atMs, share, level, change] of steps) {
    const result = mode.evaluate({ failedServerShare: share, impairedRegionShare: 0 }, atMs);
    const label = `at ${atMs} ms with share ${share}`;
    assert.equal(result.level, level, label);
    assert.equal(mode.level, level, label);
    const seen = result.changed === null ? undefined : `${result.changed.from}->${result.changed.to}`;
    assert.equal(seen, change, label);
  }
  return mode;
}

describe('DegradedMode hysteresis', () => {
  const scripts: [string, Step[]][] = [
    ['up is immediate and jumps straight to the target', [
      [0, N, 'NORMAL'], [1, S, 'SEVERE', 'NORMAL->SEVERE'],
    ]],
    ['up by one level at a time when the target rises step by step', [
      [0, L, 'LIGHT', 'NORMAL->LIGHT'], [1, M, 'MODERATE', 'LIGHT->MODERATE'], [2, S, 'SEVERE', 'MODERATE->SEVERE'],
    ]],
    ['SEVERE to NORMAL takes three cool-downs, one level each', [
      [0, S, 'SEVERE', 'NORMAL->SEVERE'], [1000, N, 'SEVERE'], [10_999, N, 'SEVERE'],
      [11_000, N, 'MODERATE', 'SEVERE->MODERATE'], [20_999, N, 'MODERATE'],
      [21_000, N, 'LIGHT', 'MODERATE->LIGHT'], [30_999, N, 'LIGHT'],
      [31_000, N, 'NORMAL', 'LIGHT->NORMAL'], [99_000, N, 'NORMAL'],
    ]],
    ['down stops at the target and stays there', [
      [0, S, 'SEVERE', 'NORMAL->SEVERE'], [1, L, 'SEVERE'], [10_001, L, 'MODERATE', 'SEVERE->MODERATE'],
      [20_001, L, 'LIGHT', 'MODERATE->LIGHT'], [90_000, L, 'LIGHT'],
    ]],
    ['no flapping: a metric oscillating around a threshold faster than the cool-down holds the level', [
      [0, L, 'LIGHT', 'NORMAL->LIGHT'],
      ...Array.from({ length: 30 }, (_, i): Step => [2000 * (i + 1), i % 2 === 0 ? N : L, 'LIGHT']),
    ]],
    ['no flapping between MODERATE and LIGHT either', [
      [0, M, 'MODERATE', 'NORMAL->MODERATE'],
      ...Array.from({ length: 30 }, (_, i): Step => [9999 * (i + 1), i % 2 === 0 ? L : M, 'MODERATE']),
    ]],
    ['the cool-down restarts when the target comes back up to the level', [
      [0, S, 'SEVERE', 'NORMAL->SEVERE'], [1000, N, 'SEVERE'], [6000, S, 'SEVERE'],
      [7000, N, 'SEVERE'], [16_999, N, 'SEVERE'], [17_000, N, 'MODERATE', 'SEVERE->MODERATE'],
    ]],
    ['a rise that stays below the level does not restart the cool-down', [
      [0, S, 'SEVERE', 'NORMAL->SEVERE'], [1000, N, 'SEVERE'], [6000, M, 'SEVERE'],
      [8000, N, 'SEVERE'], [11_000, N, 'MODERATE', 'SEVERE->MODERATE'],
    ]],
    ['a rise during a cool-down goes up at once', [
      [0, M, 'MODERATE', 'NORMAL->MODERATE'], [1000, N, 'MODERATE'], [5000, S, 'SEVERE', 'MODERATE->SEVERE'],
      [6000, N, 'SEVERE'], [15_999, N, 'SEVERE'], [16_000, N, 'MODERATE', 'SEVERE->MODERATE'],
    ]],
    ['after a step down the next cool-down starts at the step, not at the first drop', [
      [0, S, 'SEVERE', 'NORMAL->SEVERE'], [0, N, 'SEVERE'], [10_000, N, 'MODERATE', 'SEVERE->MODERATE'],
      [10_000, N, 'MODERATE'], [19_999, N, 'MODERATE'], [20_000, N, 'LIGHT', 'MODERATE->LIGHT'],
    ]],
    ['coarse evaluations: the cool-down starts at the first evaluation below the level', [
      [0, L, 'LIGHT', 'NORMAL->LIGHT'], [4000, N, 'LIGHT'], [8000, N, 'LIGHT'], [12_000, N, 'LIGHT'],
      [16_000, N, 'NORMAL', 'LIGHT->NORMAL'],
    ]],
  ];
  for (const [name, steps] of scripts) test(name, () => void runScript(steps));

  test('since is the time of the last change and the reasons explain it', () => {
    const mode = new DegradedMode(config, 500);
    assert.equal(mode.since, 500);
    const up = mode.evaluate({ failedServerShare: S, impairedRegionShare: 0 }, 1000);
    assert.equal(mode.since, 1000);
    assert.deepEqual(up.changed, { from: 'NORMAL', to: 'SEVERE', direction: 'up', reason: '30% of servers failed (SEVERE at 30%)' });
    mode.evaluate({ failedServerShare: L, impairedRegionShare: 0 }, 2000);
    const down = mode.evaluate({ failedServerShare: L, impairedRegionShare: 0 }, 12_000);
    assert.equal(mode.since, 12_000);
    assert.equal(down.changed?.direction, 'down');
    assert.equal(down.changed?.reason, 'below SEVERE for 10 s: 10% of servers failed (LIGHT at 10%)');
    assert.equal(down.target.level, 'LIGHT');
  });

  test('with a zero cool-down the level still steps down only one level per evaluation', () => {
    const mode = new DegradedMode({ ...config, degradedCooldownMs: 0 });
    runScript([
      [0, S, 'SEVERE', 'NORMAL->SEVERE'], [1, N, 'MODERATE', 'SEVERE->MODERATE'],
      [1, N, 'LIGHT', 'MODERATE->LIGHT'], [2, N, 'NORMAL', 'LIGHT->NORMAL'],
    ], mode);
  });
});

describe('DegradedMode failure window', () => {
  test('a failure exactly failureWindowMs old still counts; one ms older it is evicted', () => {
    const mode = new DegradedMode(config);
    mode.recordFailure(1000);
    assert.equal(mode.failuresInWindow(1000), 1);
    assert.equal(mode.failuresInWindow(61_000), 1);
    assert.equal(mode.failuresInWindow(61_001), 0);
  });

  test('recorded failures drive the level through evaluate', () => {
    const mode = new DegradedMode(config);
    const shares = { failedServerShare: 0, impairedRegionShare: 0 };
    for (const at of [0, 100, 200]) mode.recordFailure(at);
    const result = mode.evaluate(shares, 300);
    assert.equal(result.level, 'LIGHT');
    assert.equal(result.changed?.reason, '3 failures in the last 60 s (LIGHT at 3)');
    // The first failure leaves the window at 60 001 ms; the cool-down then takes 10 s.
    assert.equal(mode.evaluate(shares, 60_001).target.level, 'NORMAL');
    assert.equal(mode.evaluate(shares, 70_000).level, 'LIGHT');
    assert.equal(mode.evaluate(shares, 70_001).level, 'NORMAL');
  });

  test('many failures: the queue is compacted and the count stays right', () => {
    const mode = new DegradedMode(config);
    for (let i = 0; i < 10_000; i += 1) mode.recordFailure(i);
    assert.equal(mode.failuresInWindow(10_000 + 60_000 - 5000), 5000);
    assert.equal(mode.toJSON().failures.length, 5000);
    for (let i = 0; i < 10; i += 1) mode.recordFailure(200_000 + i);
    assert.equal(mode.failuresInWindow(200_010), 10);
  });

  test('failures recorded out of order are a programmer error', () => {
    const mode = new DegradedMode(config);
    mode.recordFailure(5000);
    assert.throws(() => mode.recordFailure(4999), /recorded after/);
  });
});

describe('DegradedMode JSON', () => {
  test('round-trips exactly in the middle of a cool-down and then behaves identically', () => {
    const original = runScript([[0, S, 'SEVERE', 'NORMAL->SEVERE'], [1000, N, 'SEVERE']]);
    original.recordFailure(1500);
    const restored = DegradedMode.fromJSON(JSON.parse(JSON.stringify(original.toJSON())) as DegradedModeJSON, config);
    assert.deepEqual(restored.toJSON(), original.toJSON());
    assert.deepEqual(restored.toJSON(), { level: 'SEVERE', since: 0, belowSinceMs: 1000, failures: [1500] });
    const rest: Step[] = [[10_999, N, 'SEVERE'], [11_000, N, 'MODERATE', 'SEVERE->MODERATE']];
    runScript(rest, original);
    runScript(rest, restored);
    assert.deepEqual(restored.toJSON(), original.toJSON());
  });

  test('an unknown level is rejected', () => {
    const data = { level: 'PANIC', since: 0, belowSinceMs: null, failures: [] } as unknown as DegradedModeJSON;
    assert.throws(() => DegradedMode.fromJSON(data, config), /unknown degraded level PANIC/);
  });
});

describe('DegradedMode properties', () => {
  // Shares in whole percent so that samples land exactly on thresholds often.
  const share = fc.integer({ min: 0, max: 40 }).map((p) => p / 100);
  const input = fc.record({
    dtMs: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 3 * cooldownMs })),
    failures: fc.integer({ min: 0, max: 4 }),
    failedServerShare: share,
    impairedRegionShare: share,
  });

  test('never lags an increase and never drops more than one level per cool-down', () => {
    fc.assert(fc.property(fc.array(input, { maxLength: 200 }), (inputs) => {
      const mode = new DegradedMode(config);
      let nowMs = 0;
      let belowStart: number | null = null; // independent model of the running cool-down
      for (const step of inputs) {
        nowMs += step.dtMs;
        for (let i = 0; i < step.failures; i += 1) mode.recordFailure(nowMs);
        const before = { level: mode.level, since: mode.since };
        const result = mode.evaluate(step, nowMs);
        const [was, now, wanted] = [rank(before.level), rank(result.level), rank(result.target.level)];
        assert.ok(now >= wanted, 'the level is never below the target');
        if (now > was) assert.equal(now, wanted, 'going up jumps straight to the target');
        if (wanted >= was) belowStart = null;
        else belowStart ??= nowMs;
        if (now < was) {
          assert.equal(was - now, 1, 'down by exactly one level');
          assert.ok(nowMs - before.since >= cooldownMs, 'at most one step down per cool-down');
          assert.ok(belowStart !== null && nowMs - belowStart >= cooldownMs, 'target below for a full cool-down');
          belowStart = wanted < now ? nowMs : null;
        }
        assert.equal(result.changed !== null, now !== was, 'changed reports exactly the changes');
      }
    }), { numRuns: 300 });
  });

  test('once the faults stop, the mesh returns to NORMAL after the window and three cool-downs', () => {
    fc.assert(fc.property(fc.array(input, { maxLength: 50 }), (inputs) => {
      const mode = new DegradedMode(config);
      let nowMs = 0;
      for (const step of inputs) {
        nowMs += step.dtMs;
        for (let i = 0; i < step.failures; i += 1) mode.recordFailure(nowMs);
        mode.evaluate(step, nowMs);
      }
      const quiet = { failedServerShare: 0, impairedRegionShare: 0 };
      const end = nowMs + config.failureWindowMs + 3 * cooldownMs + 1000;
      for (let t = nowMs + 100; t <= end; t += 100) mode.evaluate(quiet, t);
      assert.equal(mode.level, 'NORMAL');
    }), { numRuns: 100 });
  });
});

/**
 * The checkers must be able to fail: synthetic cases for the critical-first ordering checker (the
 * simulator's core always orders correctly, so the property alone would never show it failing).
 * The other checkers were shown to fail by mutating the core at run time (see the test report).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { FailoverRecord } from '../../mesh/health/failover-metrics.ts';
import { criticalOrderingProblems } from '../../mesh/simulation/checkers.ts';
import type { RegionId, ServerId } from '../../mesh/base/types.ts';

const record = (regionId: string, critical: boolean, detectedAtMs: number, recoveryMs: number): FailoverRecord => ({
  id: `fo-${regionId}`, regionId: regionId as RegionId, failedServerId: 'a' as ServerId, newPrimaryId: 'b' as ServerId, critical,
  players: 0, epoch: 2, failedAtMs: detectedAtMs - 1000, detectedAtMs, promotedAtMs: detectedAtMs, completedAtMs: detectedAtMs - 1000 + recoveryMs,
  detectionMs: 1000, recoveryMs, outcome: 'completed',
});

describe('criticalOrderingProblems', () => {
  test('accepts critical regions promoted first and recovered no later', () => {
    const records = [record('c', true, 1000, 2000), record('n', false, 1000, 2500)];
    assert.deepEqual(criticalOrderingProblems(records, new Map([['c' as RegionId, 1000], ['n' as RegionId, 1100]])), []);
  });

  test('flags a critical region promoted after a non-critical one detected in the same tick', () => {
    // m, promoted last, keeps the slowest promotion non-critical: only the overtaking is flagged.
    const records = [record('c', true, 1000, 2000), record('n', false, 1000, 2500), record('m', false, 1000, 2600)];
    const problems = criticalOrderingProblems(records, new Map([['c' as RegionId, 1200], ['n' as RegionId, 1100], ['m' as RegionId, 1500]]));
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /critical c .* promoted after non-critical n/);
  });

  test('accepts a critical region detected later than a non-critical one and promoted later', () => {
    const records = [record('c', true, 1500, 2000), record('n', false, 1000, 2500)];
    assert.deepEqual(criticalOrderingProblems(records, new Map([['c' as RegionId, 1500], ['n' as RegionId, 1000]])), []);
  });

  test('flags a slowest critical promotion, from when its region could be promoted, above the slowest non-critical one', () => {
    // c was detected after n (no overtaking), but waited 500 ms to be promoted where n waited 200.
    const records = [record('c', true, 1500, 3000), record('n', false, 1000, 2500)];
    const problems = criticalOrderingProblems(records, new Map([['c' as RegionId, 2000], ['n' as RegionId, 1200]]));
    assert.deepEqual(problems, ['slowest critical promotion 500 ms after its region could be promoted exceeds slowest non-critical 200 ms']);
  });

  test('counts a promotion from the end of the lost primary\'s lease, rounded up to the tick, not from its acknowledgement', () => {
    // c's lease ended 90 ms later than n's, so it was promoted a tick later: both at their first possible tick.
    const records = [record('c', true, 1000, 3280), record('n', false, 1000, 3208)];
    const promotions = new Map([['c' as RegionId, 2800], ['n' as RegionId, 2700]]);
    const leases = new Map([['c' as RegionId, 2710], ['n' as RegionId, 2661]]);
    assert.deepEqual(criticalOrderingProblems(records, promotions, new Set(), leases, 100), []);
    assert.equal(criticalOrderingProblems(records, new Map([...promotions, ['c' as RegionId, 2900]]), new Set(), leases, 100).length, 1,
      'a tick later than it could have been is flagged');
  });

  test('leaves out a critical region that waited for its only backup to be judged, and only that region', () => {
    // c waited (its backup was suspect) and is both promoted after n and the slowest; d did not wait.
    const records = [record('c', true, 1000, 3000), record('d', true, 1000, 2000), record('n', false, 1000, 2500)];
    const promotions = new Map([['c' as RegionId, 1400], ['d' as RegionId, 1000], ['n' as RegionId, 1000]]);
    assert.equal(criticalOrderingProblems(records, promotions).length, 2, 'without the exemption both rules flag c');
    assert.deepEqual(criticalOrderingProblems(records, promotions, new Set(['c' as RegionId])), []);
    const lateD = new Map([...promotions, ['d' as RegionId, 1200]]);
    assert.match(criticalOrderingProblems(records, lateD, new Set(['c' as RegionId]))[0] ?? '', /critical d .* promoted after non-critical n/);
  });

  test('a non-critical region promoted while the critical one still waited for its lost primary\'s lease has not overtaken it', () => {
    const records = [record('c', true, 1000, 2000), record('n', false, 1000, 2500)];
    const promotions = new Map([['c' as RegionId, 1300], ['n' as RegionId, 1100]]);
    assert.deepEqual(criticalOrderingProblems(records, promotions, new Set(), new Map([['c' as RegionId, 1300]])), []);
    const problems = criticalOrderingProblems(records, promotions, new Set(), new Map([['c' as RegionId, 1100]]));
    assert.match(problems[0] ?? '', /critical c .* promoted after non-critical n/, 'promoted once c could have been');
  });
});

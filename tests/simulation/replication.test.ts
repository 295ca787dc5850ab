/**
 * Property 3, two backups restored wherever capacity allows. Servers crash one by one (5-50% of the
 * fleet over 10 s, capacities from tight to roomy, 2-5 zones). While they are down, every region
 * that is not unavailable must have an acknowledged primary and its full confirmed backups unless
 * no usable server with room is left for it (the checker looks for such a server region by region).
 * Then the crashed servers restart empty: with the whole fleet's capacity back, every recoverable
 * region must have every replica again (coverage 1.0 over the regions that are not unavailable).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fcParams, show } from './harness.ts';
import { replicationArb, runReplication } from './runs.ts';
import { knownBugs } from './known-bugs.ts';

describe('re-replication', () => {
  const lostState: string[] = [];

  test('backups are restored wherever capacity allows, and everywhere once capacity returns (40 runs)', () => {
    let starvedRuns = 0;
    let lowest = 1;
    fc.assert(fc.property(replicationArb, (s) => {
      const found = runReplication(s);
      assert.deepEqual(found.safety, [], `safety violated in ${show(s)}`);
      lostState.push(...found.lostState.map((p) => `${p} in ${show(s)}`));
      assert.deepEqual(found.problems, [], `re-replication went wrong in ${show(s)}`);
      if (found.starved > 0) starvedRuns++;
      lowest = Math.min(lowest, found.coverageDown);
    }), fcParams(40));
    console.log(`[re-replication] runs where capacity ran out while servers were down: ${starvedRuns}; lowest coverage then: ${lowest.toFixed(3)}; coverage after restarts: 1.0 in every run`);
  });

  test('no region is served again after every server holding its state was lost', { todo: knownBugs.revivedWithoutState }, () => {
    assert.deepEqual(lostState.slice(0, 5), [], `${lostState.length} regions served without their state`);
  });
});

/**
 * Property 2, mass failure: 30% of the servers of a 1,000-region mesh crash at the same instant,
 * with players buffering actions during the failovers and safety checked after every tick.
 * - Every region whose primary crashed and that still has a confirmed backup completes its failover
 *   with recovery <= 5 s (from the failed primary's last heartbeat to the new primary's ack).
 * - Every region that kept its primary keeps it and gets its backups back (time reported).
 * - Critical regions no later than the rest: (a) no critical region is promoted in a later tick than
 *   a non-critical region whose failure was detected in the same tick as the critical one's or later;
 *   (b) the slowest critical promotion, counted from the first tick at which its region could be
 *   promoted (detected, and its lost primary's lease over), is no later than the slowest
 *   non-critical one (acknowledgements follow each promoted server's own heartbeat). A critical
 *   region whose failover waited for the detector is left out of both, since priority cannot hurry
 *   it: one that had to wait for a suspect backup to be judged (no backup could be promoted yet),
 *   and one whose promoted backup had crashed too and was declared failed later.
 * - Every region that lost all its replicas is unavailable with a critical alert and is never
 *   served again (it has no state left to serve).
 * Few runs: each simulates 500 servers.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeStats, fcParams, show } from './harness.ts';
import { multiFailureArb, runMultiFailure } from './runs.ts';
import { knownBugs } from './known-bugs.ts';

describe('multi failure: 30% of the servers of a 1,000-region mesh crash at once', () => {
  const recovery: number[] = [];
  const rereplication: number[] = [];
  const revived: string[] = [];
  const lineage: string[] = [];
  let lostAll = 0;

  test('regions with a surviving replica recover within 5 s, critical ones first (4 runs)', () => {
    fc.assert(fc.property(multiFailureArb, (s) => {
      const found = runMultiFailure(s);
      assert.deepEqual(found.safety, [], `safety violated in ${show(s)}`);
      assert.deepEqual(found.problems, [], `mass failure went wrong in ${show(s)}`);
      recovery.push(...found.recovery);
      rereplication.push(...found.rereplication);
      lostAll += found.lostAll;
      revived.push(...found.revived.map((p) => `${p} in ${show(s)}`));
      lineage.push(...found.lostState.map((p) => `${p} in ${show(s)}`));
    }), fcParams(4));
    console.log(`[multi failure] ${describeStats('recovery of failed-over regions', recovery).line}`);
    console.log(`[multi failure] ${describeStats('crash to full backups, regions that kept their primary', rereplication).line}`);
  });

  test('regions that lost every replica stay unavailable with a critical alert, never served again', { todo: knownBugs.revivedWithoutState }, () => {
    console.log(`[multi failure] regions that lost every replica: ${lostAll}; not left unavailable: ${revived.length}; ` +
      `served by a live server without their state (lineage checker): ${lineage.length}`);
    assert.deepEqual(lineage.slice(0, 10), [], `${lineage.length} regions were served again without their state`);
    assert.deepEqual(revived.slice(0, 10), [], `${revived.length} regions lost every replica but were not left unavailable`);
  });
});

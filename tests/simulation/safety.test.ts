/**
 * Property 4, safety after every step. Random fault schedules (crash and restart, partition, slow
 * heartbeats, flapping, a whole zone, a random fraction, a region's primary) while players keep
 * submitting actions to the regions that fail over, with small buffers (2-30 actions per player,
 * 1-10 s) so that the bounds are reached. After every tick: at most one primary per region per
 * epoch (recorded, announced, and believed by the servers), epochs never decrease, phase and status
 * counters match the records, buffered == replayed + expired + pending, no player above the
 * per-player bound. On every heartbeat: a server claiming primary with an old epoch, or of a region
 * it no longer leads, is answered demoted. On every replay: no action handed out twice, after its
 * acknowledgement or after its expiry. At the end: every accepted action is acknowledged, expired
 * or pending (exactly one), and the players' ledger saw nothing applied twice or never accepted.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fcParams, show } from './harness.ts';
import { knownBugs } from './known-bugs.ts';
import { faultsArb, runFaultsThenHeal, type FaultsSpec } from './runs.ts';

describe('safety under faults with players acting', () => {
  const lostState: string[] = [];

  test('every invariant holds after every tick, every action accounted for (60 runs)', () => {
    let accepted = 0;
    let rejected = 0;
    let expired = 0;
    const scenarios = faultsArb({ maxRegions: 40, windowMs: 20_000, maxFaults: 6, players: true });
    // The first three of the runs are fixed scenarios (fast-check's sample of seed 2: one expires
    // 108 actions, another reaches the per-player bound 36 times), so that the coverage checks at
    // the end do not depend on the random draw: about one draw of 60 runs in 40 expired nothing.
    const covering = fc.sample(scenarios, { seed: 2, numRuns: 3 }).map((s): [FaultsSpec] => [s]);
    fc.assert(fc.property(scenarios, (s) => {
      const found = runFaultsThenHeal(s);
      assert.deepEqual(found.safety, [], `safety violated in ${show(s)}`);
      lostState.push(...found.lostState.map((p) => `${p} in ${show(s)}`));
      assert.deepEqual(found.problems.filter((p) => p.startsWith('action') || p.includes('applied')), [],
        `actions lost or duplicated in ${show(s)}`);
      accepted += found.accepted;
      rejected += found.rejected;
      expired += found.expired;
    }), { ...fcParams(60), examples: covering });
    console.log(`[safety] actions accepted: ${accepted}; expired: ${expired}; refused with buffer_full (bound reached): ${rejected}`);
    assert.ok(rejected > 0, 'the per-player bound was never reached: the workload does not exercise it');
    assert.ok(expired > 0, 'no action ever expired: the workload does not exercise expiry');
  });

  test('no region is served again after every server holding its state was lost', { todo: knownBugs.revivedWithoutState }, () => {
    assert.deepEqual(lostState.slice(0, 5), [], `${lostState.length} regions served without their state`);
  });
});

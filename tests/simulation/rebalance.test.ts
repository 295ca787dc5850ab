/**
 * Primaries are spread over zones and servers (issue 16, point 9), checked over seeded runs of the
 * rebalance scenario (rebalance-run.ts): balance after setup, with servers down and after healing;
 * safety, actions and liveness; no failover record or failure alert for planned hand-offs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fcParams } from './harness.ts';
import { rebalanceSpecArb, runRebalance } from './rebalance-run.ts';

test('primaries stay balanced over zones and servers after setup, failures and healing (40 runs, lease checked)', () => {
  fc.assert(fc.property(rebalanceSpecArb, (s) => {
    const found = runRebalance(s);
    assert.deepEqual(found.safety, []);
    assert.deepEqual(found.lostState, []);
    assert.deepEqual(found.problems, []);
  }), fcParams(40));
});

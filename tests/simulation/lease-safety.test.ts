/**
 * At most one primary serves a region at any virtual instant, not only per epoch: random schedules
 * of primaries partitioned from the coordinator and their peers but reachable by players,
 * coordinator stalls (some longer than the lease), wall-clock steps either way, and the older
 * faults (crashes, partitions, slow links, a zone, a fraction), all from one seed, while simulated
 * servers honour their leases. Checked on every applied reply (mesh/simulation/lease-checker.ts),
 * with the safety checker after every tick; every wall-clock step must put the coordinator in TILT
 * at the next tick. A failing run prints its spec (seed included); keep it in regression-seeds.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fcParams, show } from './harness.ts';
import { leaseSpecArb, runLeaseScenario } from './lease-runs.ts';

describe('primary lease: one serving primary per region at every instant', () => {
  test('isolated primaries, coordinator stalls, wall-clock steps and other faults (150 runs)', () => {
    let checks = 0;
    fc.assert(fc.property(leaseSpecArb, (s) => {
      const found = runLeaseScenario(s);
      assert.deepEqual(found.problems, [], `lease violated in ${show(s)}`);
      checks += found.checks;
    }), fcParams(150));
    assert.ok(checks > 1000, `the lease checker ran (${checks} serving checks)`);
  });
});

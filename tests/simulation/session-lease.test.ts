/**
 * The primary lease with sessions: at most one primary serves a region at any virtual instant when
 * primaries hold the short session lease (`sessionLeaseMs`, renewed over the session every
 * `sessionLeaseRenewalIntervalMs`) instead of the heartbeat's. The scenarios of lease-safety.test.ts
 * (primaries cut off from the coordinator and their peers but reachable by players, coordinator
 * stalls, wall-clock steps, crashes, partitions, slow links, a zone, a fraction), with every
 * simulated server holding a session (mesh/simulation/sessions.ts) and sessions cut at random
 * meanwhile: one server's now and then, every one at once rarely. Checked on every applied reply,
 * push and renewal (LeaseChecker), with the safety checker after every tick. A failing run prints
 * its spec (seed included): replay it with runLeaseScenario and keep it in session-regression-seeds.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { SimRun } from '../../mesh/simulation/scenario.ts';
import { fcParams, show } from './harness.ts';
import { leaseSpecArb, runLeaseScenario } from './lease-runs.ts';

/**
 * Cuts sessions at random after every tick: one server's with 2% chance, every one with 0.1%; and
 * the session of a server cut off from the coordinator and its peers (an isolated primary, whom
 * players still reach) with 20%, as a proxy that resets a connection it can no longer reach would.
 * Then the coordinator sees a close and peers that lost the server: a crash as far as it can tell,
 * detected within a few hundred milliseconds, so only the session lease keeps the old primary from
 * serving beside the new one.
 */
function cutSessionsAtRandom(run: SimRun): void {
  run.onTick((nowMs) => {
    const sessions = run.fleet.sessions;
    if (sessions === null || run.coordinatorDown) return;
    if (run.workload.chance(0.02)) sessions.cut(nowMs, [run.pick(run.servers)]);
    else if (run.workload.chance(0.001)) sessions.cut(nowMs, undefined, run.workload.int(0, 1_500));
    for (const server of run.fleet.servers.values()) {
      if (server.up && !server.reachable && sessions.isOpen(server.id) && run.workload.chance(0.2)) sessions.cut(nowMs, [server.id]);
    }
  });
}

describe('primary lease with sessions: one serving primary per region at every instant', () => {
  test('session leases under isolated primaries, stalls, wall-clock steps, other faults and session cuts (60 runs)', () => {
    let checks = 0;
    fc.assert(fc.property(leaseSpecArb, (s) => {
      const found = runLeaseScenario(s, { sessions: {} }, cutSessionsAtRandom);
      assert.deepEqual(found.problems, [], `lease violated with sessions in ${show(s)}`);
      checks += found.checks;
    }), fcParams(60));
    assert.ok(checks > 1000, `the lease checker ran (${checks} serving checks)`);
  });
});

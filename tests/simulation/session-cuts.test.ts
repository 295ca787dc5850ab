/**
 * Issue 17 in the simulator, healthy servers whose sessions are cut: no false failover. A closed
 * session without a leave is evidence, not proof: the server is suspect at once, but its replication
 * peers still hear it, so nothing confirms a crash, and it reconnects with jittered exponential
 * back-off (clients/ts MeshSession) and heartbeats at once (mesh/simulation/sessions.ts).
 *
 * 1. Every session cut at once, one to three times (the coordinator drops them all, or a proxy in
 *    between restarts and refuses connections for up to 1.5 s), in random meshes: no failover, no
 *    server declared failed, every session open again; safety after every tick and the lease on
 *    every reply, push and renewal.
 *    The coordinator's process itself dying and restarting closes every session too.
 * 2. At least 1,000 simulated server-hours of healthy running under the standard network model
 *    with random cuts of single sessions and, now and then, of every session at once: no failover,
 *    no server declared failed (runSessionQuiet says what it leaves out to stay affordable).
 * A failing run prints its spec (seed included): replay it and keep it in regression-seeds.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fcParams, show } from './harness.ts';
import { coordinatorRestartArb, runCoordinatorRestart, runSessionCuts, runSessionQuiet, sessionCutArb, sessionQuietArb } from './session-runs.ts';

/** Server-hours per run of property 2, and runs: at least 1,000 server-hours in all. */
const quietServerHours = 250;
const quietRuns = 4;

describe('sessions cut while every server stays healthy', () => {
  test('every session cut at once, by the coordinator or a restarting proxy: nothing fails over (25 runs)', () => {
    let closes = 0;
    fc.assert(fc.property(sessionCutArb, (s) => {
      const found = runSessionCuts(s);
      assert.deepEqual(found.safety, [], `safety or lease violated in ${show(s)}`);
      assert.deepEqual(found.problems, [], `false failover in ${show(s)}`);
      closes += found.closes;
    }), fcParams(25));
    console.log(`[session cuts] ${closes} closed sessions seen by the coordinator, 0 failovers`);
  });

  test('the coordinator\'s process dies and restarts (every session closes with it): nothing fails over (10 runs)', () => {
    fc.assert(fc.property(coordinatorRestartArb, (s) => {
      const found = runCoordinatorRestart(s);
      assert.deepEqual([...found.safety, ...found.lostState], [], `safety violated in ${show(s)}`);
      assert.deepEqual(found.problems, [], `false failover in ${show(s)}`);
    }), fcParams(10));
  });

  test(`no failover in >= 1,000 simulated server-hours with random session cuts (${quietRuns} runs x ${quietServerHours} server-hours)`, () => {
    const started = performance.now();
    let serverHours = 0;
    let cuts = 0;
    let massCuts = 0;
    let suspicions = 0;
    fc.assert(fc.property(sessionQuietArb(quietServerHours), (s) => {
      const found = runSessionQuiet(s);
      assert.deepEqual(found.problems, [], `false failover in ${show(s)}`);
      serverHours += found.serverHours;
      cuts += found.cuts;
      massCuts += found.massCuts;
      suspicions += found.suspicions;
    }), fcParams(quietRuns));
    console.log(`[session cuts] 0 failovers over ${serverHours.toFixed(1)} simulated server-hours with ${cuts} single cuts and ` +
      `${massCuts} cuts of every session (${suspicions} suspicions, none confirmed), in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    assert.ok(serverHours >= 1000 || process.env.SIM_RUNS_FACTOR !== undefined, `only ${serverHours.toFixed(1)} server-hours simulated`);
  });
});

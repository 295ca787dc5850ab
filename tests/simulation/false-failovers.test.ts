/**
 * Property 6, zero false failovers under the standard network model (1% independent heartbeat
 * loss, 2 ms + exponential(10 ms) delay capped at 250 ms) and no injected fault: no server is ever
 * declared failed, so there is no failover at all, over at least 100 simulated server-hours per CI
 * run (the benchmark runs 1,000).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fcParams, show } from './harness.ts';
import { quietArb, runQuiet } from './runs.ts';

describe('no false failovers', () => {
  test('no failover in >= 100 simulated server-hours without faults (4 runs x 26 server-hours)', () => {
    let serverHours = 0;
    let suspicions = 0;
    fc.assert(fc.property(quietArb(26), (s) => {
      const found = runQuiet(s);
      assert.deepEqual(found.safety, [], `safety violated in ${show(s)}`);
      assert.deepEqual(found.problems, [], `false failover in ${show(s)}`);
      serverHours += found.serverHours;
      suspicions += found.suspicions;
    }), fcParams(4));
    console.log(`[false failovers] 0 failovers and 0 false failovers over ${serverHours.toFixed(1)} simulated server-hours ` +
      `(${suspicions} suspicions, none confirmed)`);
    assert.ok(serverHours >= 100 || process.env.SIM_RUNS_FACTOR !== undefined, `only ${serverHours.toFixed(1)} server-hours simulated`);
  });
});

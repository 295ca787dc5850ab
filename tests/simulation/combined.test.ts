/**
 * The combined property (issue 16): every fault kind the simulator has, drawn from one seed, in at
 * least 300 seeded scenarios per `npm test` run: server crashes and restarts, partitions, slow and
 * flapping links, a zone or a fraction of the fleet, a region's primary, the coordinator itself
 * crashing in the middle of failovers and restarting from its last durable state, or being restored
 * from an older one by an operator, the coordinator stalling, its wall clock stepping either way,
 * primaries cut off from the coordinator alone, and its writes slowed down or failing (for up to
 * 12 s, across promotion deadlines). Players act all along, with small buffers.
 *
 * Checked after every tick (SafetyChecker): one primary per region per epoch (recorded, announced,
 * believed), no fencing token a server holds ever decreases (across restarts and restores), the
 * reply to a heartbeat never names a lower epoch than the one claimed, counters and buffer bounds;
 * on every applied reply (LeaseChecker), no two servers serve one region at the same instant, given
 * servers honour their leases. With storage faults (DurabilityChecker): no 202 before the durable
 * records hold the action, no action answered 202 gone after a restart from the durable state, and
 * no promotion aborted against a server that was healthy while the coordinator ran.
 * At the end: every action answered as accepted and durable is acknowledged, expired or pending
 * (across restarts from the last durable state: nothing acknowledged is lost), no event id was
 * published twice across restarts, and the mesh healed within the bound after the last fault.
 *
 * Small meshes and short virtual time keep the 300 runs in CI's budget. A failure prints the spec
 * (with its seed) and fast-check's seed and path; replay with SIM_SEED=<seed> SIM_PATH=<path>, and
 * add the spec to regression-seeds.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { combinedFaultPlanArb, fcParams, show, storeFaultKinds, timeFaultKinds } from './harness.ts';
import { runFaultsThenHeal, type FaultsSpec } from './runs.ts';

/** Scenarios of the combined property: small meshes, up to five faults over 15 s. */
export const combinedArb: fc.Arbitrary<FaultsSpec> = fc.record({
  seed: fc.noShrink(fc.integer({ min: 1, max: 2 ** 31 - 1 })),
  regions: fc.integer({ min: 4, max: 12 }),
  zones: fc.integer({ min: 2, max: 4 }),
  serverCapacity: fc.integer({ min: 3, max: 8 }),
  spareServers: fc.integer({ min: 0, max: 2 }),
  players: fc.integer({ min: 1, max: 3 }),
  actionsPerSecond: fc.integer({ min: 1, max: 8 }),
  bufferPerPlayer: fc.integer({ min: 2, max: 20 }),
  bufferAgeMs: fc.integer({ min: 1000, max: 8000 }),
  faults: combinedFaultPlanArb(15_000, 5),
});

describe('combined faults, coordinator crashes and restores included', () => {
  test('every invariant holds after every tick, across restarts and restores (300 runs)', () => {
    const done = { crashes: 0, restores: 0, accepted: 0, timeFaults: 0, leaseChecks: 0, storeRuns: 0, failedWrites: 0, answered: 0, aborts: 0, longWaits: 0 };
    const isTimeFault = (kind: string) => (timeFaultKinds as readonly string[]).includes(kind);
    const isStoreFault = (kind: string) => (storeFaultKinds as readonly string[]).includes(kind);
    const started = performance.now();
    fc.assert(fc.property(combinedArb, (s) => {
      const found = runFaultsThenHeal(s);
      assert.deepEqual(found.safety, [], `safety violated in ${show(s)}`);
      assert.deepEqual(found.problems, [], `guarantees broken in ${show(s)}`);
      done.crashes += found.coordinatorFaults.crashes;
      done.restores += found.coordinatorFaults.restores;
      done.accepted += found.accepted;
      done.timeFaults += s.faults.filter((f) => isTimeFault(f.kind)).length;
      done.leaseChecks += found.leaseChecks;
      if (s.faults.some((f) => isStoreFault(f.kind))) done.storeRuns += 1;
      done.failedWrites += found.storage.failedWrites;
      done.answered += found.storage.answered;
      done.aborts += found.storage.abortsJudged;
      done.longWaits += found.storage.longWaits;
    }), fcParams(300));
    console.log(`[combined] coordinator crashes: ${done.crashes}; restores of older states: ${done.restores}; ` +
      `stalls, wall-clock steps and cut-off primaries: ${done.timeFaults}; lease checks: ${done.leaseChecks}; actions accepted: ${done.accepted}`);
    console.log(`[combined] runs with storage faults: ${done.storeRuns}; failed writes: ${done.failedWrites}; ` +
      `202s checked against the durable records: ${done.answered}; promotions that waited on the disk past their deadline: ${done.longWaits}; ` +
      `aborted promotions judged: ${done.aborts}; ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.ok(done.crashes > 0 && done.restores > 0, 'the runs crashed and restored the coordinator');
    assert.ok(done.timeFaults > 0 && done.leaseChecks > 0, 'the runs stalled the coordinator, stepped its clock or cut primaries off, and checked leases');
    assert.ok(done.storeRuns > 0 && done.failedWrites > 0 && done.answered > 0, 'the runs failed writes and checked 202s against the durable records');
    assert.ok(done.longWaits > 0, 'some promotion waited on failing writes longer than its acknowledgement deadline');
  });
});

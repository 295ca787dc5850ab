/**
 * The change records the core hands out are the whole truth: replaying every batch in order over an
 * empty map gives back the state `exportState` returns, after every tick of seeded runs with crashes,
 * partitions, zone outages, players acting and actions expiring, and after operator commands. A
 * change that a part of the core forgets to note fails here, before a restart would lose it.
 */
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import fc from 'fast-check';
import type { Coordinator } from '../../mesh/core/coordinator.ts';
import { recordsOfState, stateFromRecords, type ChangeBatch } from '../../mesh/core/change-records.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { comparableState } from './comparable-state.ts';
import { SimRun } from '../../mesh/simulation/scenario.ts';
import { regionId, serverId } from '../../mesh/base/types.ts';
import { applyFaultPlans, fcParams, show } from './harness.ts';
import { faultsArb } from './runs.ts';

/** The records replayed so far, as a store would hold them. */
class Replica {
  readonly records = new Map<string, unknown>();

  apply(batch: ChangeBatch): void {
    for (const { key, value } of batch.records) {
      if (value === null) this.records.delete(key);
      else this.records.set(key, structuredClone(value));
    }
  }
}

function assertReplicaMatches(coordinator: Coordinator, replica: Replica, nowMs: number, context: string): void {
  replica.apply(coordinator.takeChanges(nowMs));
  const replayed = stateFromRecords(replica.records);
  assert.ok(replayed, 'no meta record after a take');
  assert.deepStrictEqual(comparableState(replayed), comparableState(coordinator.exportState(nowMs)), context);
}

describe('change records', () => {
  test('replayed after every tick, equal the exported state under seeded faults and players', () => {
    fc.assert(fc.property(faultsArb({ maxRegions: 30, windowMs: 20_000, maxFaults: 4, players: true }), (s) => {
      const run = new SimRun({
        seed: s.seed, regions: s.regions, zones: s.zones, serverCapacity: s.serverCapacity, spareServers: s.spareServers,
        criticalRegions: 1, playersPerRegion: 5,
        config: { actionBufferMaxPerPlayer: s.bufferPerPlayer, actionBufferMaxAgeMs: s.bufferAgeMs, resolvedAlertsLimit: 3, failoverHistoryLimit: 4 },
        fleet: { playersPerRegion: s.players, actionsPerSecond: s.actionsPerSecond },
      });
      const replica = new Replica();
      run.onTick((nowMs) => assertReplicaMatches(run.coordinator, replica, nowMs, `${show(s)} at ${nowMs} ms`));
      run.advanceTo(5_000);
      const healAt = applyFaultPlans(run, s.faults, 5_000);
      run.advanceTo(Math.min(healAt, 60_000) + 15_000);
    }), fcParams(25));
  });

  it('follow operator commands: region updates, alert acknowledgements, registrations and the test mesh reset', () => {
    const run = new SimRun({ seed: 7, regions: 12, zones: 3 });
    const replica = new Replica();
    const c = run.coordinator;
    run.advanceTo(2_000);
    assertReplicaMatches(c, replica, 2_000, 'after setup');
    c.updateRegion(regionId('region-3'), { critical: true, players: 42 });
    c.registerServer({ id: 'real-1', address: '127.0.0.1:9000', zone: 'zone-1', capacity: 4 }, 2_000);
    c.createRegions([{ id: 'real-region', players: 1, critical: false, backups: 0 }], 2_000);
    c.submitAction(regionId('real-region'), { playerId: 'p' as never, seq: 1, payload: { x: 1 } }, 2_000);
    assertReplicaMatches(c, replica, 2_000, 'after commands');
    run.inject({ target: { serverId: serverId(c.records().regions.get(regionId('region-1'))?.primary ?? 'none') }, mode: 'crash', durationMs: 60_000 }, 2_000);
    run.advanceTo(12_000);
    assertReplicaMatches(c, replica, 12_000, 'after a failover');
    assert.ok(c.listAlerts({ state: 'open' }).length > 0, 'the crash raised an alert');
    for (const alert of c.listAlerts({ state: 'open' })) c.acknowledgeAlert(alert.id, 12_000, 'operator');
    assertReplicaMatches(c, replica, 12_000, 'after acknowledgements');
    c.resetTestMesh(12_000);
    assertReplicaMatches(c, replica, 12_000, 'after the reset');
    assert.ok(replica.records.has('server:real-1') && !replica.records.has('region:region-3'), 'reset deleted the simulated records only');
  });

  it('of a whole state assemble it again (the previous whole-document format)', () => {
    const run = new SimRun({ seed: 3, regions: 8, zones: 3, fleet: { playersPerRegion: 2, actionsPerSecond: 5 } });
    run.advanceTo(3_000);
    const exported = run.coordinator.exportState(3_000);
    const assembled = stateFromRecords(new Map(recordsOfState(exported).map((r) => [r.key, r.value])));
    assert.deepStrictEqual(comparableState(assembled as CoreState), comparableState(exported));
  });
});

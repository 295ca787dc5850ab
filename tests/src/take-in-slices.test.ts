/**
 * Taking a write's change records in slices, with the core running between them: the batch must
 * still be exactly the state at its seq (each key with its value at the closing take), or a restart
 * would load a state that never existed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stateFromRecords } from '../../mesh/core/change-records.ts';
import { comparableState } from '../simulation/comparable-state.ts';
import { SimRun } from '../../mesh/simulation/scenario.ts';
import { takeInSlices, type ChangeSource } from '../../src/take-in-slices.ts';
import { encodeBatch } from '../../src/store/store.ts';

describe('takeInSlices', () => {
  it('with ticks between its slices, hands out each key once, as of the closing take', async () => {
    const run = new SimRun({ seed: 11, regions: 400, zones: 3, serverCapacity: 5 });
    const replica = new Map<string, unknown>();
    // What a store keeps: each record's JSON bytes as the take serialised them, parsed as a restart would.
    const apply = (records: ReadonlyMap<string, Buffer | null>) => {
      for (const [key, json] of records) {
        if (json === null) replica.delete(key);
        else replica.set(key, JSON.parse(json.toString()));
      }
    };
    run.advanceTo(2_000);
    apply(encodeBatch(run.coordinator.takeChanges(2_000)).records);
    run.inject({ target: { zone: 'zone-1' }, mode: 'crash', durationMs: 60_000 }, 2_000);
    let now = 2_000;
    let longest = 0;
    let steps = 0;
    const sizes: string[] = [];
    // The core runs a tick at every step of the take, as it would between slices in the service.
    const source: ChangeSource = {
      takeSomeChanges: (max) => {
        steps += 1;
        now += 100;
        run.advanceTo(now);
        return run.coordinator.takeSomeChanges(max);
      },
      takeChanges: (nowMs) => run.coordinator.takeChanges(nowMs),
    };
    for (let write = 0; write < 200 && now < 10_000; write += 1) {
      const stepsBefore = steps;
      const batch = await takeInSlices(source, () => now, { sliceMs: 0, stepRecords: 32 });
      sizes.push(`${batch.records.size}/${steps - stepsBefore}`);
      longest = Math.max(longest, steps - stepsBefore);
      apply(batch.records);
      assert.equal(batch.seq, run.coordinator.changeSeq());
      const replayed = stateFromRecords(replica);
      assert.ok(replayed);
      assert.deepStrictEqual(comparableState(replayed), comparableState(run.coordinator.exportState(now)), `after write ${write}`);
    }
    assert.ok(longest >= 10, `the longest take ran over ${longest} ticks (records/steps per write: ${sizes.join(' ')})`);
    assert.ok(run.coordinator.metrics().failovers.completed > 0, 'failovers happened while the takes ran');
  });
});

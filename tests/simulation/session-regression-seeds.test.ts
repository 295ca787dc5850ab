/**
 * Regression seeds of the session properties (session-failure.test.ts, session-cuts.test.ts): every
 * scenario that failed while sessions were added to the simulator, replayed exactly on every run,
 * each with the check that failed (kept apart from regression-seeds.test.ts, which other simulator
 * work extends at the same time).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { runSessionCuts, runSessionFailure } from './session-runs.ts';

describe('session regression seeds', () => {
  test('a crash whose peers reported after a quicker close is confirmed by them, not by the 500 ms silence path ' +
    '(declared 778 ms after the crash before the fix, 178 ms after; a peer sighting is dated from its report\'s arrival)', () => {
    const found = runSessionFailure({ seed: 63, regions: 101, zones: 3, spareServers: 1, warmupMs: 6500, offsetMs: 22, mode: 'crash' });
    assert.deepEqual([...found.problems, ...found.safety, ...found.lostState], []);
    assert.ok(found.failureToDetection.length > 0 && found.failureToDetection.every((ms) => ms <= 300),
      `crash to declaration ${found.failureToDetection.join(', ')} ms`);
  });

  test('a primary that went silent is not held back by a lease granted in the push sent when it turned suspect ' +
    '(recovery 424 ms after detection before pushes asked for no lease, 30 ms after)', () => {
    const found = runSessionFailure({ seed: 2147483646, regions: 11, zones: 5, spareServers: 3, warmupMs: 23613, offsetMs: 782, mode: 'partition' });
    assert.deepEqual([...found.problems, ...found.safety, ...found.lostState], []);
    const gaps = found.recovery.map((ms, i) => ms - (found.detection[i] as number));
    assert.ok(gaps.length > 0 && gaps.every((ms) => ms <= 100), `recovery - detection ${gaps.join(', ')} ms`);
  });

  test('every session cut again 60 ms after a first cut, while some servers were still in their handshake: ' +
    'every server reconnects (simulator bug: a close that raced the handshake left the server believing it connected)', () => {
    const found = runSessionCuts({ seed: 5, regions: 100, zones: 3, spareServers: 0, warmupMs: 10_000,
      cuts: [{ gapMs: 1, refusedForMs: 0 }, { gapMs: 60, refusedForMs: 0 }] });
    assert.deepEqual([...found.problems, ...found.safety, ...found.lostState], []);
  });

  test('every session cut three times within 1.5 s, two of them refused by a restarting proxy for over a second: ' +
    'nobody fails over (reconnect back-off grew to seconds, past the failure timeout; it is now capped at a heartbeat interval)', () => {
    const found = runSessionCuts({ seed: 25, regions: 95, zones: 3, spareServers: 0, warmupMs: 5000,
      cuts: [{ gapMs: 1, refusedForMs: 1025 }, { gapMs: 2, refusedForMs: 0 }, { gapMs: 1536, refusedForMs: 1267 }] });
    assert.deepEqual([...found.problems, ...found.safety, ...found.lostState], []);
  });
});

/**
 * The real ticker over the real host, with the process's clocks replaced by ones the test can step:
 * a wall-clock step either way must not stop the ticks (the core runs on the monotonic clock), must
 * put the coordinator in TILT with an alert and a log line, and detection must work again after it.
 * On the old clock (the core on `Date.now()`), a step back of 60 s gave no tick for 59 s.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testMeshConfig } from '../../mesh/base/config.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { regionId } from '../../mesh/base/types.ts';
import { createLogger } from '../../src/logger.ts';
import { RunningMesh } from '../../src/mesh-host.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { monotonicClock, type TimeSources } from '../../src/system-clock.ts';
import { startTicker } from '../../src/ticker.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds, checking every 20 ms, for at most `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (condition()) return true;
    await sleep(20);
  }
  return condition();
}

describe('wall-clock steps under the real ticker', () => {
  test('a 60 s step back and a 60 s step forward: ticks go on, TILT is entered, alerted and logged, detection resumes', async () => {
    let wallOffsetMs = 0;
    const sources: TimeSources = { monotonicMs: () => performance.now(), wallMs: () => Date.now() + wallOffsetMs };
    const lines: string[] = [];
    const log = createLogger({ level: 'info', sink: { write: (line) => lines.push(line) } });
    const config = { ...testMeshConfig, tiltRecoveryMs: 300 };
    const host = await RunningMesh.open({
      config, clock: monotonicClock(sources), wallMs: sources.wallMs, store: new MemoryStore(), seed: 5, log,
    });
    assert.ok((await host.setupTest({ regions: 6, zones: 3, spareServers: 3 })).ok);
    let ticks = 0;
    const tick = host.coordinator.tick.bind(host.coordinator);
    host.coordinator.tick = (nowMs) => {
      ticks += 1;
      tick(nowMs);
    };
    const errors: unknown[] = [];
    const ticker = startTicker(() => host.tick(), 20, (error) => errors.push(error));
    try {
      assert.ok(await until(() => ticks >= 3, 2_000), 'the ticker runs');
      const tiltAlerts = () => host.coordinator.listAlerts().filter((a) => a.dedupKey === 'coordinator-tilt');

      for (const stepMs of [-60_000, 60_000]) {
        const before = ticks;
        const alertsBefore = tiltAlerts().length;
        wallOffsetMs += stepMs;
        assert.ok(await until(() => host.coordinator.status(host.now()).tilt, 1_000), `TILT after a ${stepMs} ms step`);
        const alert = tiltAlerts()[0];
        assert.equal(tiltAlerts().length, alertsBefore + 1, 'one TILT alert per step');
        assert.match(alert?.message ?? '', new RegExp(`stepped ${stepMs < 0 ? 'back' : 'forward'} by (59\\d{3}|60\\d{3}) ms`));
        assert.ok(await until(() => ticks >= before + 5, 1_500), `ticks go on after a ${stepMs} ms step (${ticks - before})`);
        assert.ok(await until(() => !host.coordinator.status(host.now()).tilt, 2_000), 'TILT ends after tiltRecoveryMs');
        const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.msg === 'wall clock stepped');
        assert.ok(logged.some((r) => Math.sign(Number(r.stepMs)) === Math.sign(stepMs) && Math.abs(Number(r.stepMs)) >= 59_000),
          JSON.stringify(logged));
      }

      // Detection works again: a crashed primary is declared failed and its region fails over.
      const crashed = host.injectFailure({ target: { regionId: regionId('region-1'), role: 'primary' }, mode: 'crash' });
      assert.ok(crashed.ok);
      const victim = crashed.value.serverIds[0];
      assert.ok(victim !== undefined);
      assert.ok(await until(() => host.coordinator.server(victim)?.status === 'failed', 8_000), 'the crash is detected');
      assert.deepEqual(errors, []);
    } finally {
      ticker.stop();
    }
  });
});

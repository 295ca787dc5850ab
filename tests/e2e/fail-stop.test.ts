/**
 * Fail-stop with the real process: a tick that violates an invariant stops the service with a
 * non-zero exit and a logged reason, instead of logging and running on from a half-updated state;
 * started again on the same data directory (as its supervisor would), it comes back from the last
 * durable state. The violation comes from the test-only hook MESH_TEST_INVARIANT_VIOLATION_AT_MS
 * (src/test-hooks.ts), which only a manual-clock service honours.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eScratch } from './scratch.ts';
import { call, expectJson, sleep, spawnService, startService, stopService } from './service-process.ts';

const { freshDir } = e2eScratch('mesh-failstop-');

describe('fail-stop', () => {
  test('a violated invariant in a tick: exit 70 with the reason logged; a restart resumes from the durable state', async () => {
    const dir = await freshDir();
    const args = ['--clock', 'manual', '--port', '0', '--data-dir', dir];
    const service = await startService(args, { env: { MESH_TEST_INVARIANT_VIOLATION_AT_MS: '5000' } });
    expectJson('setupTestMesh', await call(service.url, 'POST', '/mesh/setup_test', { body: { regions: 6, zones: 3 } }), 201);
    expectJson('advanceTestTime', await call(service.url, 'POST', '/mesh/test/advance_time', { body: { ms: 3000 } }), 200);
    const before = expectJson('getMeshStatus', await call(service.url, 'GET', '/mesh/status'), 200);

    // The tick at 5 000 ms violates an invariant: the request fails and the process stops.
    await call(service.url, 'POST', '/mesh/test/advance_time', { body: { ms: 3000 } }).catch(() => undefined);
    const exit = await Promise.race([service.exited, sleep(20_000).then(() => ({ code: null, signal: 'still running' }))]);
    assert.equal(exit.code, 70, service.output());
    const stopped = service.output().split('\n').filter((line) => line.includes('"decision":"fail-stop"'));
    assert.equal(stopped.length, 1, service.output());
    assert.match(stopped[0] ?? '', /injected violation at 5000 ms/);

    const again = await startService(args);
    const after = expectJson('getMeshStatus', await call(again.url, 'GET', '/mesh/status'), 200);
    assert.deepEqual(after.regions, before.regions, 'the regions as they were durable');
    assert.equal(after.servers.total, before.servers.total);
    await stopService(again, 'SIGTERM');
  });

  test('the hook is refused on the system clock: the service does not start', async () => {
    const { exited, output } = spawnService(['--port', '0', '--store', 'memory'], { MESH_TEST_INVARIANT_VIOLATION_AT_MS: '5000' });
    const exit = await exited;
    assert.equal(exit.code, 2);
    assert.match(output(), /honoured only with --clock manual/);
  });
});

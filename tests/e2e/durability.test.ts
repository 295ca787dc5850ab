/**
 * Durability of the real process on a real disk: SIGKILL at random moments while registrations are
 * acknowledged (log appends) and while the log is folded into snapshots (a tiny log threshold makes
 * that happen every few writes), 50 times on one data directory: every 201 ever answered is there
 * after each restart, and the service restarts every time. Then a data directory that runs out of
 * space mid-run (a small tmpfs filled up): writes fail, `/readyz` is 503 and the alert is critical,
 * and once space is back the ticker's retry makes everything durable without any new request.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, expectJson, killAll, sleep, startService, stopService, waitFor, type ServiceProcess } from './service-process.ts';

const mounts: string[] = [];
after(async () => {
  await killAll();
  for (const dir of mounts) execFileSync('umount', [dir]);
});

const freshDir = () => mkdtempSync(join(tmpdir(), 'mesh-durability-'));

/** Removes the data-dir lock of a process the test killed (it cannot renew it any more). */
function dropLockOfDeadProcess(dir: string): void {
  rmSync(join(dir, 'mesh.lock'), { recursive: true, force: true });
  rmSync(join(dir, 'mesh.lock.owner'), { force: true });
}

/** Registers servers as fast as answers come back, 4 in flight, until `stop`; returns the acknowledged ids. */
async function registerUntil(service: ServiceProcess, stop: { done: boolean }): Promise<string[]> {
  const acked: string[] = [];
  const worker = async () => {
    while (!stop.done) {
      const res = await call(service.url, 'POST', '/mesh/servers', { body: { address: '127.0.0.1:7000', zone: 'z' } }).catch(() => null);
      if (res?.status === 201) acked.push(res.body.server_id as string);
      else if (res !== null && res.status !== 503) throw new Error(`unexpected ${res.status}: ${JSON.stringify(res.body)}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return acked;
}

describe('durability of the real process', () => {
  test('SIGKILL at random moments during appends and snapshot rewrites: 0 acknowledged registrations lost in 50 trials', { timeout: 600_000 }, async () => {
    const dir = freshDir();
    const env = { MESH_LOG_MAX_RECORDS: '40' };
    const acknowledged: string[] = [];
    for (let trial = 0; trial < 50; trial += 1) {
      const service = await startService(['--port', '0', '--data-dir', dir], { env });
      const listed = expectJson('listServers', await call(service.url, 'GET', '/mesh/servers'), 200).servers as { server_id: string }[];
      const present = new Set(listed.map((s) => s.server_id));
      const lost = acknowledged.filter((id) => !present.has(id));
      assert.deepEqual(lost, [], `trial ${trial}: acknowledged registrations lost after the restart`);
      const stop = { done: false };
      const registering = registerUntil(service, stop);
      // Random moments: a kill lands during an append, an fsync or a snapshot being written.
      await sleep(50 + Math.floor(Math.random() * 250));
      service.child.kill('SIGKILL');
      const exit = await service.exited;
      assert.equal(exit.signal, 'SIGKILL');
      stop.done = true;
      acknowledged.push(...await registering);
      dropLockOfDeadProcess(dir);
    }
    assert.ok(acknowledged.length >= 200, `${acknowledged.length} registrations acknowledged in all`);
    const last = await startService(['--port', '0', '--data-dir', dir], { env });
    const listed = expectJson('listServers', await call(last.url, 'GET', '/mesh/servers'), 200).servers as { server_id: string }[];
    assert.deepEqual(acknowledged.filter((id) => !listed.some((s) => s.server_id === id)), []);
    assert.deepEqual(await stopService(last, 'SIGTERM'), { code: 0, signal: null });
  });

  test('a data directory that runs out of space: 503 and a critical alert while it lasts, durable by retry once space is back', { timeout: 120_000 }, async () => {
    const dir = freshDir();
    // A tmpfs of its own, so that filling it cannot touch anything else; the test runs as root in CI.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
    mounts.push(dir);
    const service = await startService(['--port', '0', '--data-dir', dir]);
    expectJson('registerServer', await call(service.url, 'POST', '/mesh/servers', { body: { address: '127.0.0.1:7300', zone: 'z' } }), 201);
    expectJson('createRegion', await call(service.url, 'POST', '/mesh/regions', { body: { region_id: 'before' } }), 201);
    const filler = join(dir, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(8 * 1024 * 1024));
    } catch (error) {
      assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    // The log's last page may still take a few records: create regions until a write needs a new page.
    const during: string[] = [];
    let refused = null;
    for (let i = 0; i < 40 && refused === null; i += 1) {
      during.push(`during-${i}`);
      const res = await call(service.url, 'POST', '/mesh/regions', { body: { region_id: `during-${i}` } });
      if (res.status === 503) refused = res;
      else expectJson('createRegion', res, 201);
    }
    assert.ok(refused, 'a write failed once the disk was full');
    expectJson('createRegion', refused, 503);
    const notReady = await call(service.url, 'GET', '/readyz');
    assert.equal(notReady.status, 503);
    assert.match(notReady.body.detail, /ENOSPC/);
    const alerts = expectJson('listAlerts', await call(service.url, 'GET', '/mesh/alerts?state=open'), 200).alerts as { title: string; severity: string }[];
    assert.ok(alerts.some((a) => a.severity === 'critical' && /Persisting the mesh state fails/.test(a.title)), JSON.stringify(alerts));
    rmSync(filler);
    // No request that changes anything from here on: the ticker's retry must do it.
    await waitFor('ready again', async () => ((await call(service.url, 'GET', '/readyz')).status === 200 ? true : undefined), { timeoutMs: 15_000, intervalMs: 200 });
    assert.deepEqual(await stopService(service, 'SIGKILL'), { code: null, signal: 'SIGKILL' });
    dropLockOfDeadProcess(dir);
    const restarted = await startService(['--port', '0', '--data-dir', dir]);
    const regions = expectJson('listRegions', await call(restarted.url, 'GET', '/mesh/regions'), 200).regions as { region_id: string }[];
    assert.deepEqual(regions.map((r) => r.region_id).sort(), ['before', ...during].sort(), 'the 503 was "may or may not be durable"; the retry made it durable');
    const open = expectJson('listAlerts', await call(restarted.url, 'GET', '/mesh/alerts?state=open'), 200).alerts as { title: string }[];
    assert.ok(!open.some((a) => /Persisting the mesh state fails/.test(a.title)), 'resolved, and the resolution is durable');
    assert.match(restarted.output() + service.output(), /persisting the mesh state failed; retrying with back-off/);
    assert.deepEqual(await stopService(restarted, 'SIGTERM'), { code: 0, signal: null });
  });
});

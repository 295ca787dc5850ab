/**
 * `npm start` as users run it: its `prestart` step (`npm run build`) bundles src/ into
 * dist/main.mjs with esbuild, and plain node, with no TypeScript loader, serves from the bundle.
 * The other end-to-end tests start the sources through tsx; this one proves the shipped artifact:
 * it builds, finds openapi.yaml and its packages from dist/, answers as the contract says, takes a
 * server's heartbeat and stops cleanly on SIGTERM. (Only this file writes dist/.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { call, expectJson, killAll, repoRoot, startService, stopService } from './service-process.ts';

after(killAll);

describe('the npm start bundle', () => {
  test('builds, serves the contract, takes a heartbeat and exits 0 on SIGTERM', async () => {
    const build = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}\n${build.stderr}`);
    assert.ok(existsSync(join(repoRoot, 'dist', 'main.mjs')), 'dist/main.mjs was written');

    const service = await startService(['--port', '0', '--store', 'memory'], { entry: ['dist/main.mjs'] });
    expectJson('getMeshStatus', await call(service.url, 'GET', '/mesh/status'), 200);
    const contract = await call(service.url, 'GET', '/openapi.yaml');
    assert.equal(contract.status, 200);
    assert.match(String(contract.body), /^openapi: 3\.1/);

    const registered = expectJson('registerServer', await call(service.url, 'POST', '/mesh/servers', {
      body: { address: '127.0.0.1:7301', zone: 'zone-a', capacity: 4 },
    }), 201);
    const reply = expectJson('sendHeartbeat', await call(service.url, 'POST', `/mesh/servers/${registered.server_id}/heartbeat`, {
      headers: { authorization: `Bearer ${registered.token}` },
      body: { incarnation: 'start-test#1', seq: 1, players: 0, regions: [], peers: [] },
    }), 200);
    assert.equal(reply.server_id, registered.server_id);
    assert.equal(reply.status, 'alive');

    const exit = await stopService(service, 'SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, service.output());
  });
});

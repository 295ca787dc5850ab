/**
 * `npm start` as users run it: its `prestart` step (`npm run build`) bundles src/ into
 * dist/main.mjs with esbuild, and plain node, with no TypeScript loader, serves from the bundle.
 * The other end-to-end tests start the sources through tsx; this one proves the shipped artifact:
 * it builds, starts with the node options of the start script, finds openapi.yaml and its packages from dist/,
 * answers as the contract says, takes a server's heartbeat and stops cleanly on SIGTERM. (Only
 * this file writes dist/.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { call, expectJson, killAll, repoRoot, startService, stopService } from './service-process.ts';

after(killAll);

/** The node options `npm start` passes (`node <options> dist/main.mjs`). */
function startScriptNodeOptions(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [command, ...words] = scripts.start.split(/\s+/);
  assert.equal(command, 'node', `the start script runs node: ${scripts.start}`);
  assert.equal(words.at(-1), 'dist/main.mjs', `the start script runs the bundle: ${scripts.start}`);
  return words.slice(0, -1);
}

/** The JSON log records of a service's output so far (complete lines only). */
function logRecords(output: string): Record<string, unknown>[] {
  return output.split('\n').slice(0, -1).filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the npm start bundle', () => {
  test('builds, serves the contract, takes a heartbeat and exits 0 on SIGTERM', async () => {
    const build = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}\n${build.stderr}`);
    assert.ok(existsSync(join(repoRoot, 'dist', 'main.mjs')), 'dist/main.mjs was written');

    const service = await startService(['--port', '0', '--store', 'memory'],
      { entry: [...startScriptNodeOptions(), 'dist/main.mjs'] });
    const log = logRecords(service.output());
    assert.ok(log.some((r) => r.msg === 'mesh coordinator ready'), `the ready line is logged:\n${service.output()}`);
    // A fresh service starts with an empty mesh and no failure on record.
    const status = expectJson('getMeshStatus', await call(service.url, 'GET', '/mesh/status'), 200);
    assert.equal(status.servers.total, 0);
    assert.equal(status.regions.total, 0);
    const metrics = expectJson('getFailoverMetrics', await call(service.url, 'GET', '/mesh/failover_metrics'), 200);
    assert.equal(metrics.failovers.total, 0);
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

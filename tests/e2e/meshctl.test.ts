/**
 * meshctl, the real CLI (`bin/meshctl.mjs`), against the real service process: every command with
 * tables and with --json, exit codes (0, 1 refused, 2 usage, 3 unreachable), MESH_URL and
 * MESH_ADMIN_TOKEN, --test-api off; and the service's signed alert webhooks reaching a local
 * receiver that fails twice and then recovers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { verifyWebhook } from '../../src/webhooks.ts';
import { killAll, repoRoot, startService, stopService, waitFor } from './service-process.ts';

after(killAll);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `meshctl args` with only the given MESH_* variables; bounded in time. */
function meshctl(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('MESH_')));
  const child = spawn(process.execPath, ['bin/meshctl.mjs', ...args], { cwd: repoRoot, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => child.once('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  }));
}

function expectOk(run: Run, what: string): string {
  assert.equal(run.code, 0, `${what}: exit ${run.code}\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

/** A webhook receiver that answers 500 to its first `failures` requests. */
async function receiver(failures: number) {
  const received: { headers: IncomingHttpHeaders; body: string; status: number }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => {
      const status = received.length < failures ? 500 : 204;
      received.push({ headers: req.headers, body, status });
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`, received };
}

describe('meshctl against the real service', { timeout: 180_000 }, () => {
  test('status, setup-test, watch, simulate-failure, replication, metrics, alerts, drain, reset; webhooks signed and retried', async () => {
    const secret = 'e2e-webhook-secret';
    const hook = await receiver(2);
    const service = await startService(['--port', '0', '--store', 'memory'], {
      env: { MESH_ALERT_WEBHOOK_URLS: hook.url, MESH_ALERT_WEBHOOK_SECRET: secret},
    });
    const env = { MESH_URL: service.url };

    assert.match(expectOk(await meshctl(['status'], env), 'status'), /^status:\s+healthy$/m);
    assert.match(expectOk(await meshctl(['setup-test', '--regions', '6', '--zones', '3', '--critical', '1', '--spare', '3'], env), 'setup-test'), /created 6 regions on \d+ servers/);
    const regions = JSON.parse(expectOk(await meshctl(['--json', 'regions'], env), 'regions --json')) as { regions: { region_id: string; primary: { server_id: string } | null }[] };
    assert.equal(regions.regions.length, 6);
    const table = expectOk(await meshctl(['regions'], env), 'regions');
    assert.match(table, /^REGION\s+STATE\s+EPOCH\s+PRIMARY/m);
    assert.match(table, /^region-1\s+active\s+1\s+sim-/m);
    const primary = await waitFor('region-1 to have an acknowledged primary', async () => {
      const view = JSON.parse(expectOk(await meshctl(['--json', 'replication', 'region-1'], env), 'replication')) as { primary: { server_id: string; acknowledged: boolean } | null };
      return view.primary?.acknowledged ? view.primary.server_id : undefined;
    }, { timeoutMs: 15_000, intervalMs: 300 });

    const watching = meshctl(['watch', '--count', '1', '--json'], env);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const injected = expectOk(await meshctl(['simulate-failure', '--region', 'region-1', '--role', 'primary'], env), 'simulate-failure');
    assert.match(injected, new RegExp(`injected crash \\(fault-\\d+\\) on ${primary}`));
    const watched = await watching;
    const event = JSON.parse(expectOk(watched, 'watch').trim()) as { type: string; seq: number };
    assert.ok(typeof event.type === 'string' && event.seq > 0, watched.stdout);

    const after = await waitFor('region-1 to fail over', async () => {
      const view = JSON.parse(expectOk(await meshctl(['--json', 'replication', 'region-1'], env), 'replication')) as { epoch: number; state: string; primary: { server_id: string } | null };
      return view.epoch >= 2 && view.state === 'active' && view.primary?.server_id !== primary ? view : undefined;
    }, { timeoutMs: 20_000, intervalMs: 400 });
    assert.notEqual(after.primary?.server_id, primary);
    assert.match(expectOk(await meshctl(['replication', 'region-1'], env), 'replication'), /last failover: fo-\d+ completed, detection \d+ ms, recovery \d+ ms/);

    const metrics = expectOk(await meshctl(['metrics'], env), 'metrics');
    assert.match(metrics, /^failovers:\s+\d+ total, [1-9]\d* completed/m);
    assert.match(metrics, /^detection\s+[1-9]/m);
    assert.match(expectOk(await meshctl(['metrics', '--prometheus'], env), 'metrics --prometheus'), /^mesh_failovers_total\{outcome="completed"\} [1-9]/m);

    const alerts = JSON.parse(expectOk(await meshctl(['--json', 'alerts'], env), 'alerts')) as { alerts: { id: string; dedup_key: string }[] };
    const failed = alerts.alerts.find((a) => a.dedup_key === `server-failed:${primary}`);
    assert.ok(failed, JSON.stringify(alerts));
    assert.match(expectOk(await meshctl(['alerts'], env), 'alerts'), new RegExp(`^${failed.id}\\s+warning\\s+open`, 'm'));
    assert.match(expectOk(await meshctl(['alerts', 'ack', failed.id], env), 'alerts ack'), new RegExp(`acknowledged ${failed.id}`));
    assert.match(expectOk(await meshctl(['alerts'], env), 'alerts'), new RegExp(`^${failed.id}\\s+warning\\s+acked by loopback`, 'm'));
    const unknown = await meshctl(['alerts', 'ack', 'alert-999'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /meshctl: 404 .*alert-999/);

    const servers = expectOk(await meshctl(['servers'], env), 'servers');
    const other = /^(sim-\d+)\s+zone-\d\s+alive/m.exec(servers)?.[1];
    assert.ok(other, servers);
    assert.match(expectOk(await meshctl(['servers', 'drain', other], env), 'servers drain'), new RegExp(`${other} is draining`));

    // The webhook receiver failed twice; the notifications still arrived, signed, in order.
    const delivered = await waitFor('the server-failed alert at the webhook', async () => {
      const ok = hook.received.filter((r) => r.status === 204).map((r) => ({ ...r, json: JSON.parse(r.body) as { type: string; alert: { dedup_key: string } } }));
      return ok.some((r) => r.json.type === 'alert_raised' && r.json.alert.dedup_key === `server-failed:${primary}`) ? ok : undefined;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    assert.equal(hook.received.filter((r) => r.status === 500).length, 2);
    assert.equal(hook.received[0]?.headers['x-mesh-webhook-id'], hook.received[2]?.headers['x-mesh-webhook-id'], 'a retry keeps its delivery id');
    for (const r of delivered) {
      assert.ok(verifyWebhook({
        secret, body: r.body, timestamp: r.headers['x-mesh-webhook-timestamp'] as string,
        signature: r.headers['x-mesh-webhook-signature'] as string, nowSeconds: Math.floor(Date.now() / 1000),
      }));
    }

    assert.match(expectOk(await meshctl(['reset'], env), 'reset'), /test mesh removed/);
    assert.match(expectOk(await meshctl(['--url', service.url, 'status']), '--url'), /^regions:\s+0 total/m);
    await stopService(service, 'SIGTERM');

    const gone = await meshctl(['status'], env);
    assert.equal(gone.code, 3);
    assert.match(gone.stderr, new RegExp(`cannot reach the coordinator at ${service.url}.*ECONNREFUSED`));
    const usage = await meshctl(['simulate-failure', '--mode', 'explode'], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /explode/);
  });

  test('MESH_ADMIN_TOKEN is sent on admin commands; --test-api off refuses the test commands', async () => {
    const token = 'meshctl-test-token-'.padEnd(40, '7');
    const service = await startService(['--port', '0', '--store', 'memory', '--test-api', 'off'], { env: { MESH_ADMIN_TOKEN: token } });
    const env = { MESH_URL: service.url };
    const without = await meshctl(['alerts', 'ack', 'alert-1'], env);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /meshctl: 401 /);
    const withToken = await meshctl(['alerts', 'ack', 'alert-1'], { ...env, MESH_ADMIN_TOKEN: token });
    assert.equal(withToken.code, 1);
    assert.match(withToken.stderr, /meshctl: 404 .*alert-1/, 'past authentication: the alert does not exist');
    const reset = await meshctl(['reset'], { ...env, MESH_ADMIN_TOKEN: token });
    assert.equal(reset.code, 1);
    assert.match(reset.stderr, /test API, which this service runs without/);
    assert.ok(!service.output().includes(token), 'the token never reaches the log');
    assert.match(service.output(), /"decision":"auth-refused"/);
    await stopService(service, 'SIGTERM');
  });
});

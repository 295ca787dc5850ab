/**
 * What operators see of the real core on a manual clock: one log line per decision (and none per
 * heartbeat), Prometheus metrics that agree with the core's own views, and refusals logged without
 * the token that was refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import { testMeshConfig } from '../../mesh/base/config.ts';
import { ManualClock } from '../../mesh/base/ports.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { regionId } from '../../mesh/base/types.ts';
import { createLogger } from '../../src/logger.ts';
import { RunningMesh } from '../../src/mesh-host.ts';
import { Observability } from '../../src/observability.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { contract } from '../api/harness.ts';

type Line = Record<string, unknown>;

async function observedMesh() {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', sink: { write: (line) => lines.push(line) } });
  const clock = new ManualClock(0);
  const host = await RunningMesh.open({ config: testMeshConfig, clock, store: new MemoryStore(), seed: 11, log });
  const observed = new Observability({ alertWebhookUrls: [], alertWebhookSecret: undefined }, log);
  observed.attach(host);
  const records = (): Line[] => lines.map((line) => JSON.parse(line) as Line);
  return { host, clock, observed, records };
}

/** The value of one sample line of the exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('decision log and metrics over the real core', () => {
  test('a crashed primary: failed with evidence, failover started and completed with durations, backup assigned, alert raised; no heartbeat lines', async () => {
    const { host, observed, records } = await observedMesh();
    assert.ok((await host.setupTest({ regions: 6, zones: 3, criticalRegions: 1, spareServers: 3, heartbeatLoss: 0 })).ok);
    await host.advance(5_000);
    assert.deepEqual(records().filter((r) => r.decision !== 'backup-assigned'), [], 'a healthy mesh logs no decision, and no heartbeat');

    const crashed = host.injectFailure({ target: { regionId: regionId('region-1'), role: 'primary' }, mode: 'crash' });
    assert.ok(crashed.ok);
    const victim = crashed.value.serverIds[0];
    await host.advance(15_000);
    const log = records();
    const byDecision = (decision: string) => log.filter((r) => r.decision === decision);

    const failed = byDecision('failed');
    assert.equal(failed.length, 1, JSON.stringify(log));
    assert.equal(failed[0]?.serverId, victim);
    assert.ok(['peer_confirmed', 'timeout'].includes(String(failed[0]?.evidence)));
    assert.ok(Number(failed[0]?.silenceMs) > 0, JSON.stringify(failed[0]));
    assert.equal(failed[0]?.level, 'warn');

    const metrics = host.coordinator.metrics();
    const started = byDecision('failover-started');
    const completed = byDecision('failover-completed');
    assert.ok(started.length >= 1 && started.some((r) => r.regionId === 'region-1'));
    assert.equal(completed.length, metrics.failovers.completed);
    for (const line of started) assert.ok(Number(line.detectionMs) > 0 && line.failedServerId === victim, JSON.stringify(line));
    for (const line of completed) assert.ok(Number(line.recoveryMs) >= Number(started[0]?.detectionMs), JSON.stringify(line));
    assert.ok(byDecision('backup-assigned').length >= 1, 'backup assigned');
    assert.ok(byDecision('alert-raised').some((r) => r.dedupKey === `server-failed:${victim}`), 'alert raised');
    assert.ok(log.every((r) => !/heartbeat/i.test(String(r.msg))), 'no line per heartbeat');

    const text = await observed.metrics.render();
    assert.equal(sample(text, 'mesh_failovers_total{outcome="completed"}'), metrics.failovers.completed);
    assert.equal(sample(text, 'mesh_failover_detection_seconds_count'), new Set(started.map((r) => r.failoverId)).size);
    assert.equal(sample(text, 'mesh_failover_recovery_seconds_count'), completed.length);
    const victimZone = host.coordinator.server(victim!)?.zone;
    assert.equal(sample(text, `mesh_servers{zone="${victimZone}",status="failed"}`), 1);
    assert.equal(sample(text, 'mesh_regions{state="active"}'), 6);
    assert.equal(sample(text, 'mesh_expedited_heartbeat_servers'), host.coordinator.heartbeatCadence.wantingCount);
    assert.equal(sample(text, 'mesh_alerts_open{severity="warning"}'), host.coordinator.listAlerts({ state: 'open', severity: 'warning' }).length);
    assert.ok(sample(text, 'nodejs_eventloop_lag_seconds') !== undefined, 'default process metrics are there');
    observed.close();
  });

  test('HTTP requests are measured by route template; an auth refusal is logged without any token', async () => {
    const { host, observed, records } = await observedMesh();
    const adminToken = 'admin-secret-token-0123456789';
    const app = createApp({
      host, adminToken, contract: contract(), logError: () => {}, observeRequest: observed.observeRequest, metrics: observed.metrics,
    });
    const server = app.callback();
    await request(server).get('/mesh/replication/nowhere').expect(404);
    const refused = await request(server).post('/mesh/reset').set('authorization', 'Bearer wrong-token-abcdef');
    assert.equal(refused.status, 403);
    await request(server).post('/mesh/reset').expect(401);
    const scrape = await request(server).get('/metrics').expect(200);
    assert.match(String(scrape.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(scrape.text, 'http_request_duration_seconds_count{method="GET",route="/mesh/replication/{region_id}",status_code="404"}'), 1);
    assert.equal(sample(scrape.text, 'http_request_duration_seconds_count{method="POST",route="/mesh/reset",status_code="403"}'), 1);

    const refusals = records().filter((r) => r.decision === 'auth-refused');
    assert.deepEqual(refusals.map((r) => [r.status, r.method, r.route]), [[403, 'POST', '/mesh/reset'], [401, 'POST', '/mesh/reset']]);
    assert.ok(refusals.every((r) => typeof r.detail === 'string' && r.remoteAddress !== undefined));
    const all = JSON.stringify(records());
    assert.ok(!all.includes(adminToken) && !all.includes('wrong-token-abcdef'), 'no token in the log');
    observed.close();
  });
});

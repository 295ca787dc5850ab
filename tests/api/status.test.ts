import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { DEFAULT_CONTRACT_PATH } from '../../api/openapi.ts';
import { expectResponse, testApp } from './harness.ts';
import { handler } from './fixtures.ts';

describe('GET /healthz and GET /openapi.yaml', () => {
  test('healthz answers ok', async () => {
    const t = await testApp();
    const body = expectResponse('getHealth', await request(handler(t)).get('/healthz'), 200);
    assert.deepEqual(body, { status: 'ok', coordinator: { role: 'standalone', self_url: null, leader_url: null, term: null } });
  });

  test('the contract is served byte for byte as application/yaml', async () => {
    const t = await testApp();
    const res = await request(handler(t)).get('/openapi.yaml').buffer(true).parse((r, done) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => { text += c; });
      r.on('end', () => done(null, text));
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/yaml/);
    assert.equal(res.body, readFileSync(DEFAULT_CONTRACT_PATH, 'utf8'));
  });
});

describe('GET /mesh/status', () => {
  test('an empty mesh is healthy, on the manual clock, at its time', async () => {
    const t = await testApp({ startMs: 12_345 });
    const body = expectResponse('getMeshStatus', await request(handler(t)).get('/mesh/status'), 200);
    assert.equal(body.status, 'healthy');
    assert.equal(body.degraded_level, 'NORMAL');
    assert.equal(body.fidelity, 1);
    assert.deepEqual(body.servers, { total: 0, alive: 0, suspect: 0, failed: 0, draining: 0 });
    assert.deepEqual(body.regions, { total: 0, active: 0, failing_over: 0, under_replicated: 0, unavailable: 0 });
    assert.equal(body.clock, 'manual');
    assert.equal(body.now, 12_345);
    assert.equal(body.tilt, false);
  });

  test('counts follow the mesh, and a failure makes it unhealthy', async () => {
    const t = await testApp();
    const setup = expectResponse('setupTestMesh', await request(handler(t)).post('/mesh/setup_test').send({ regions: 4, spare_servers: 3, heartbeat_loss: 0 }), 201);
    await request(handler(t)).post('/mesh/test/advance_time').send({ ms: 2000 });
    let body = expectResponse('getMeshStatus', await request(handler(t)).get('/mesh/status'), 200);
    assert.equal(body.servers.total, setup.servers.length);
    assert.equal(body.servers.alive, setup.servers.length);
    assert.equal(body.regions.total, 4);
    assert.equal(body.regions.active, 4);
    assert.equal(body.now, 2000);
    await request(handler(t)).post('/mesh/simulate_failure').send({ server_id: setup.servers[0] });
    await request(handler(t)).post('/mesh/test/advance_time').send({ ms: 6000 });
    body = expectResponse('getMeshStatus', await request(handler(t)).get('/mesh/status'), 200);
    assert.equal(body.servers.failed, 1);
    // Two of four regions failed over inside the failure window: a small mesh degrades a lot.
    assert.notEqual(body.status, 'healthy');
    assert.notEqual(body.degraded_level, 'NORMAL');
    assert.ok(body.fidelity < 1);
  });
});

describe('GET /mesh/failover_metrics', () => {
  test('before any failover every statistic is zero', async () => {
    const t = await testApp();
    const body = expectResponse('getFailoverMetrics', await request(handler(t)).get('/mesh/failover_metrics'), 200);
    assert.deepEqual(body.failovers, { total: 0, completed: 0, in_progress: 0, failed: 0 });
    assert.deepEqual(body.detection_ms, { count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 });
    assert.deepEqual(body.recent, []);
    assert.equal(body.replication_coverage, 1);
  });

  test('recent_limit bounds the list; milliseconds are whole numbers', async () => {
    const t = await testApp();
    await request(handler(t)).post('/mesh/setup_test').send({ regions: 4, spare_servers: 3, heartbeat_loss: 0 });
    await request(handler(t)).post('/mesh/test/advance_time').send({ ms: 2000 });
    // Primaries are spread one per server; zone-1 (sim-1, sim-4, sim-7) leads two of the four regions.
    await request(handler(t)).post('/mesh/simulate_failure').send({ zone: 'zone-1' });
    await request(handler(t)).post('/mesh/test/advance_time').send({ ms: 6000 });
    const all = expectResponse('getFailoverMetrics', await request(handler(t)).get('/mesh/failover_metrics'), 200);
    assert.ok(all.recent.length >= 2, 'zone-1 led at least two regions');
    for (const stats of [all.detection_ms, all.recovery_ms]) {
      for (const value of Object.values(stats)) assert.ok(Number.isInteger(value), `${String(value)} is whole`);
    }
    const one = expectResponse('getFailoverMetrics', await request(handler(t)).get('/mesh/failover_metrics?recent_limit=1'), 200);
    assert.deepEqual(one.recent, all.recent.slice(0, 1));
    const none = expectResponse('getFailoverMetrics', await request(handler(t)).get('/mesh/failover_metrics?recent_limit=0'), 200);
    assert.deepEqual(none.recent, []);
    assert.deepEqual(none.failovers, all.failovers, 'the limit does not change the aggregates');
  });

  test('a bad recent_limit is a 400 problem naming the parameter', async () => {
    const t = await testApp();
    for (const bad of ['-1', '1001', 'ten', '1.5', '']) {
      const res = await request(handler(t)).get(`/mesh/failover_metrics?recent_limit=${bad}`);
      const body = expectResponse('getFailoverMetrics', res, 400);
      assert.equal(body.errors[0].path, 'query/recent_limit', bad);
    }
    const twice = await request(handler(t)).get('/mesh/failover_metrics?recent_limit=1&recent_limit=2');
    expectResponse('getFailoverMetrics', twice, 400);
  });

  test('undeclared query parameters are ignored', async () => {
    const t = await testApp();
    expectResponse('getFailoverMetrics', await request(handler(t)).get('/mesh/failover_metrics?colour=blue'), 200);
  });
});

describe('GET /mesh/replication/{region_id}', () => {
  test('shows the primary, the backups and no failover for a fresh region', async () => {
    const t = await testApp();
    await request(handler(t)).post('/mesh/setup_test').send({ regions: 2, critical_regions: 1, players_per_region: 40, heartbeat_loss: 0 });
    await request(handler(t)).post('/mesh/test/advance_time').send({ ms: 1500 });
    const body = expectResponse('getRegionReplication', await request(handler(t)).get('/mesh/replication/region-1'), 200);
    assert.equal(body.region_id, 'region-1');
    assert.equal(body.epoch, 1);
    assert.equal(body.state, 'active');
    assert.equal(body.critical, true);
    assert.equal(body.players, 40);
    assert.equal(body.primary.acknowledged, true);
    assert.equal(body.backups.length, 2);
    assert.equal(body.last_failover, null);
    const other = expectResponse('getRegionReplication', await request(handler(t)).get('/mesh/replication/region-2'), 200);
    assert.equal(other.critical, false);
    assert.ok(body.priority > other.priority, 'the critical region recovers first');
  });

  test('an unknown region is a 404 problem; a malformed id a 400', async () => {
    const t = await testApp();
    const missing = expectResponse('getRegionReplication', await request(handler(t)).get('/mesh/replication/castle-south'), 404);
    assert.match(missing.detail, /castle-south/);
    assert.equal(missing.instance, '/mesh/replication/castle-south');
    const bad = expectResponse('getRegionReplication', await request(handler(t)).get('/mesh/replication/bad%20id!'), 400);
    assert.equal(bad.errors[0].path, 'path/region_id');
    const long = expectResponse('getRegionReplication', await request(handler(t)).get(`/mesh/replication/${'r'.repeat(65)}`), 400);
    assert.equal(long.errors[0].path, 'path/region_id');
  });
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import { testMeshConfig } from '../../mesh/base/config.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { createLogger } from '../../src/logger.ts';
import { RunningMesh } from '../../src/mesh-host.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { expectResponse, storedState, testApp, type TestApp } from './harness.ts';
import { handler, register, unchanged } from './fixtures.ts';

const post = (t: TestApp, path: string, body?: unknown) => request(handler(t)).post(path).send(body as object);

async function withMesh(spec: Record<string, unknown> = { regions: 4, spare_servers: 3, heartbeat_loss: 0 }) {
  const t = await testApp();
  const setup = expectResponse('setupTestMesh', await post(t, '/mesh/setup_test', spec), 201);
  return { t, setup: setup as { regions: string[]; servers: string[] } };
}

describe('POST /mesh/setup_test', () => {
  test('creates simulated servers spread over zones and regions with a primary and two backups', async () => {
    const { t, setup } = await withMesh({ regions: 5, zones: 3, spare_servers: 2, critical_regions: 2, players_per_region: 25 });
    assert.deepEqual(setup.regions, ['region-1', 'region-2', 'region-3', 'region-4', 'region-5']);
    const servers = t.host.coordinator.servers();
    assert.equal(servers.length, setup.servers.length);
    assert.ok(servers.every((s) => s.simulated));
    assert.deepEqual(new Set(servers.map((s) => s.zone)), new Set(['zone-1', 'zone-2', 'zone-3']));
    const regions = t.host.coordinator.regions();
    assert.equal(regions.filter((r) => r.critical).length, 2);
    for (const region of regions) {
      assert.notEqual(region.primary, null);
      assert.equal(region.backups.length, 2);
      assert.equal(region.players, 25);
    }
    assert.ok((await storedState(t.store))?.servers.some((s) => s.simulated), 'the test mesh is on disk when 201 is answered');
  });

  test('100 regions over 3 zones: primaries spread evenly over zones and over the 50 servers (issue 16, point 9)', async () => {
    const { t } = await withMesh({ regions: 100, zones: 3 });
    const listed = expectResponse('listServers', await request(handler(t)).get('/mesh/servers'), 200) as
      { servers: { server_id: string; zone: string; primaries: number }[] };
    assert.equal(listed.servers.length, 50);
    const perZone = new Map<string, number>();
    for (const s of listed.servers) perZone.set(s.zone, (perZone.get(s.zone) ?? 0) + s.primaries);
    assert.deepEqual([...perZone.values()].sort(), [33, 33, 34], 'within one region of 100 / 3 per zone');
    const most = Math.max(...listed.servers.map((s) => s.primaries));
    assert.ok(most <= Math.ceil(100 / 50) + 1, `a server leads ${most} regions`);
    assert.equal(listed.servers.filter((s) => s.primaries > 0).length, 50, 'every server leads some region');
  });

  test('defaults: two backups per region, three zones', async () => {
    const { t } = await withMesh({ regions: 1 });
    const [region] = t.host.coordinator.regions();
    assert.equal(region?.backups.length, 2);
    assert.equal(region?.players, 10);
  });

  test('a small test mesh has backups + 2 servers, so that it heals from any one crash', async () => {
    const { t, setup } = await withMesh({ regions: 5, heartbeat_loss: 0 });
    assert.equal(setup.servers.length, 4, 'two backups per region: at least four servers');
    expectResponse('simulateFailure', await post(t, '/mesh/simulate_failure', { server_id: setup.servers[0] }), 202);
    await t.host.advance(30_000);
    const regions = t.host.coordinator.regions();
    assert.deepEqual(regions.map((r) => r.state), regions.map(() => 'active'), 'every region is whole again');
    assert.ok(regions.every((r) => r.primary?.serverId !== setup.servers[0] && !r.backups.some((b) => b.serverId === setup.servers[0])),
      'the crashed server holds nothing');
  });

  test('a second test mesh is a 409 problem and changes nothing', async () => {
    const { t } = await withMesh({ regions: 2 });
    const res = await unchanged(t, () => post(t, '/mesh/setup_test', { regions: 3 }));
    const body = expectResponse('setupTestMesh', res, 409);
    assert.equal(body.type, 'https://mesh-coordinator.dev/problems/test-mesh-exists');
  });

  test('bad input is a 400 problem naming the field and changes nothing', async () => {
    const t = await testApp();
    const cases: [unknown, string][] = [
      [{}, 'body/regions'],
      [{ regions: 0 }, 'body/regions'],
      [{ regions: 10_001 }, 'body/regions'],
      [{ regions: '3' }, 'body/regions'],
      [{ regions: 2.5 }, 'body/regions'],
      [{ regions: 3, colour: 'red' }, 'body/colour'],
      [{ regions: 3, backups_per_region: 9 }, 'body/backups_per_region'],
      [{ regions: 3, zones: 0 }, 'body/zones'],
      [{ regions: 3, heartbeat_loss: 1 }, 'body/heartbeat_loss'],
      [{ regions: 3, heartbeat_loss: -0.1 }, 'body/heartbeat_loss'],
      [{ regions: 3, critical_regions: 4 }, 'body/critical_regions'],
      [{ regions: 3, server_capacity: 0 }, 'body/server_capacity'],
      [{ regions: 10_000, backups_per_region: 8, server_capacity: 1 }, 'body'],
      [[{ regions: 3 }], 'body'],
    ];
    for (const [body, path] of cases) {
      const res = await unchanged(t, () => post(t, '/mesh/setup_test', body));
      const problem = expectResponse('setupTestMesh', res, 400);
      assert.ok(problem.errors.some((e: { path: string }) => e.path === path), `${JSON.stringify(body)}: ${JSON.stringify(problem.errors)}`);
    }
  });
});

describe('POST /mesh/reset', () => {
  test('removes the test mesh, its history and metrics, and keeps self-registered servers', async () => {
    const { t, setup } = await withMesh();
    const own = await register(t, { address: '10.0.0.9:7777', zone: 'zone-1' });
    await post(t, '/mesh/test/advance_time', { ms: 2000 });
    await post(t, '/mesh/simulate_failure', { server_id: setup.servers[0] });
    await post(t, '/mesh/test/advance_time', { ms: 6000 });
    assert.ok(t.host.coordinator.metrics().failovers.total > 0);
    const body = expectResponse('resetTestMesh', await post(t, '/mesh/reset'), 200);
    assert.deepEqual(body, { status: 'reset' });
    assert.deepEqual(t.host.coordinator.servers().map((s) => s.serverId), [own.id]);
    assert.equal(t.host.coordinator.regions().length, 0);
    assert.equal(t.host.coordinator.metrics().failovers.total, 0);
    const saved = await storedState(t.store);
    assert.deepEqual(saved?.servers.map((s) => s.id), [own.id], 'the reset is on disk when 200 is answered');
    expectResponse('setupTestMesh', await post(t, '/mesh/setup_test', { regions: 1 }), 201);
  });

  test('resetting without a test mesh is fine', async () => {
    const t = await testApp();
    expectResponse('resetTestMesh', await post(t, '/mesh/reset'), 200);
  });
});

describe('POST /mesh/simulate_failure', () => {
  test('each target form is accepted with a 202 that names the servers hit', async () => {
    const { t, setup } = await withMesh({ regions: 6, zones: 3, spare_servers: 6, heartbeat_loss: 0 });
    const byServer = expectResponse('simulateFailure', await post(t, '/mesh/simulate_failure', { server_id: setup.servers[5] }), 202);
    assert.deepEqual(byServer.server_ids, [setup.servers[5]]);
    assert.equal(byServer.mode, 'crash');
    assert.equal(byServer.ends_at, null);
    assert.equal(byServer.injected_at, 0);
    const primary = t.host.coordinator.replication('region-2' as never)?.primary?.serverId;
    const byRegion = expectResponse('simulateFailure', await post(t, '/mesh/simulate_failure',
      { region_id: 'region-2', role: 'primary', mode: 'partition', duration_ms: 8000 }), 202);
    assert.deepEqual(byRegion.server_ids, [primary]);
    assert.equal(byRegion.ends_at, 8000);
    const byZone = expectResponse('simulateFailure', await post(t, '/mesh/simulate_failure', { zone: 'zone-3', mode: 'slow', duration_ms: 1000, delay_ms: 500 }), 202);
    const zone3 = t.host.coordinator.servers().filter((s) => s.zone === 'zone-3').map((s) => s.serverId);
    assert.deepEqual([...byZone.server_ids].sort(), [...zone3].sort());
    const byFraction = expectResponse('simulateFailure', await post(t, '/mesh/simulate_failure', { fraction: 0.25, mode: 'flap', duration_ms: 6000 }), 202);
    assert.ok(byFraction.server_ids.length >= 1);
    assert.notEqual(byFraction.failure_id, byZone.failure_id);
  });

  test('bad input is a 400 problem and injects nothing', async () => {
    const { t, setup } = await withMesh();
    const cases: unknown[] = [
      {},
      { server_id: setup.servers[0], zone: 'zone-1' },
      { region_id: 'region-1' },
      { role: 'primary' },
      { region_id: 'region-1', role: 'leader' },
      { fraction: 0 },
      { fraction: 1.5 },
      { fraction: '0.5' },
      { server_id: setup.servers[0], mode: 'explode' },
      { server_id: setup.servers[0], mode: 'partition' },
      { server_id: setup.servers[0], mode: 'crash', delay_ms: 100 },
      { server_id: setup.servers[0], duration_ms: 0 },
      { server_id: setup.servers[0], duration_ms: 600_001 },
      { server_id: setup.servers[0], colour: 'red' },
      { server_id: 'not valid!' },
    ];
    for (const body of cases) {
      const res = await unchanged(t, () => post(t, '/mesh/simulate_failure', body));
      expectResponse('simulateFailure', res, 400);
    }
  });

  test('an unknown target is a 404 problem and injects nothing', async () => {
    const { t } = await withMesh();
    for (const body of [{ server_id: 'sim-999' }, { region_id: 'castle-south', role: 'primary' }, { zone: 'zone-9' }]) {
      const res = await unchanged(t, () => post(t, '/mesh/simulate_failure', body));
      expectResponse('simulateFailure', res, 404);
    }
    const empty = await testApp();
    expectResponse('simulateFailure', await unchanged(empty, () => post(empty, '/mesh/simulate_failure', { fraction: 0.5 })), 404);
  });
});

describe('POST /mesh/test/advance_time', () => {
  test('advances the manual clock and answers the new time', async () => {
    const t = await testApp({ startMs: 1000 });
    const body = expectResponse('advanceTestTime', await post(t, '/mesh/test/advance_time', { ms: 2500 }), 200);
    assert.deepEqual(body, { now: 3500 });
    assert.equal(t.clock.now(), 3500);
    const status = expectResponse('getMeshStatus', await request(handler(t)).get('/mesh/status'), 200);
    assert.equal(status.now, 3500);
  });

  test('bad input is a 400 problem and time does not move', async () => {
    const t = await testApp();
    for (const body of [{}, { ms: 0 }, { ms: -5 }, { ms: 3_600_001 }, { ms: '5' }, { ms: 1.5 }, { ms: 5, extra: 1 }]) {
      expectResponse('advanceTestTime', await post(t, '/mesh/test/advance_time', body), 400);
      assert.equal(t.clock.now(), 0);
    }
  });

  test('under the system clock it answers 404 exactly as an unknown path does', async () => {
    const store = new MemoryStore();
    const log = createLogger({ level: 'error', sink: { write: () => true } });
    const host = await RunningMesh.open({ config: testMeshConfig, clock: { now: () => Date.now() }, store, seed: 1, log });
    const app = createApp({ host, adminToken: 'admin-token', logError: () => {} });
    const advance = await request(app.callback()).post('/mesh/test/advance_time').send({ ms: 1000 });
    const unknown = await request(app.callback()).post('/mesh/test/no_such_thing').send({ ms: 1000 });
    expectResponse('advanceTestTime', advance, 404);
    assert.equal(advance.status, unknown.status);
    assert.equal(advance.headers['content-type'], unknown.headers['content-type']);
    assert.deepEqual({ ...advance.body, detail: undefined, instance: undefined }, { ...unknown.body, detail: undefined, instance: undefined });
    assert.equal(advance.body.detail, 'No operation POST /mesh/test/advance_time.');
    const status = await request(app.callback()).get('/mesh/status');
    assert.equal(status.body.clock, 'system');
    app.closeStreams();
  });
});

describe('scenario over HTTP in virtual time', () => {
  test('a failed primary is replaced within 4 s: new primary, higher epoch, two backups', async () => {
    const { t, setup } = await withMesh({ regions: 4, zones: 3, spare_servers: 3, heartbeat_loss: 0 });
    expectResponse('advanceTestTime', await post(t, '/mesh/test/advance_time', { ms: 2000 }), 200);
    const region = setup.regions[0];
    const before = expectResponse('getRegionReplication', await request(handler(t)).get(`/mesh/replication/${region}`), 200);
    assert.equal(before.state, 'active');
    const failure = expectResponse('simulateFailure', await post(t, '/mesh/simulate_failure', { region_id: region, role: 'primary' }), 202);
    assert.deepEqual(failure.server_ids, [before.primary.server_id]);
    expectResponse('advanceTestTime', await post(t, '/mesh/test/advance_time', { ms: 6000 }), 200);

    const metrics = expectResponse('getFailoverMetrics', await request(handler(t)).get('/mesh/failover_metrics'), 200);
    assert.ok(metrics.failovers.completed >= 1);
    assert.equal(metrics.failovers.in_progress, 0);
    assert.ok(metrics.recovery_ms.max <= 4000, `recovery ${metrics.recovery_ms.max} ms`);
    const record = metrics.recent.find((r: { region_id: string }) => r.region_id === region);
    assert.equal(record.outcome, 'completed');
    assert.equal(record.failed_server_id, before.primary.server_id);
    assert.equal(metrics.false_failovers, 0);

    const after = expectResponse('getRegionReplication', await request(handler(t)).get(`/mesh/replication/${region}`), 200);
    assert.notEqual(after.primary.server_id, before.primary.server_id);
    assert.equal(after.primary.acknowledged, true);
    assert.ok(after.epoch > before.epoch);
    assert.equal(after.backups.length, 2);
    assert.ok(after.backups.every((b: { server_id: string }) => b.server_id !== before.primary.server_id));
    assert.equal(after.last_failover.id, record.id);
    assert.deepEqual(t.errors, []);
  });
});

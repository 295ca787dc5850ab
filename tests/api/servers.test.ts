import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { contract, expectResponse, storedState, testApp, type TestApp } from './harness.ts';
import { beat, handler, register, sendBeat, unchanged, type Registered } from './fixtures.ts';

const A = { address: '10.0.0.1:7777', zone: 'zone-a' };
const B = { address: '10.0.0.2:7777', zone: 'zone-b' };
const C = { address: '10.0.0.3:7777', zone: 'zone-c' };

const get = (t: TestApp, path: string) => request(handler(t)).get(path);
const advance = async (t: TestApp, ms: number) => expectResponse('advanceTestTime', await request(handler(t)).post('/mesh/test/advance_time').send({ ms }), 200);

describe('POST /mesh/servers', () => {
  test('registers a server: 201 with its id, a token, the interval and a Location; on disk when answered', async () => {
    const t = await testApp({ startMs: 5000 });
    const res = await request(handler(t)).post('/mesh/servers').send({ ...A, capacity: 8, name: 'godot-eu-1' });
    const body = expectResponse('registerServer', res, 201);
    assert.equal(res.headers.location, `/mesh/servers/${body.server_id}`);
    assert.equal(body.heartbeat_interval_ms, 1000);
    assert.match(body.token, /^[A-Za-z0-9_-]{43}$/);
    const view = expectResponse('getServer', await get(t, res.headers.location), 200);
    assert.deepEqual(view, {
      server_id: body.server_id, name: 'godot-eu-1', address: A.address, zone: A.zone, capacity: 8, status: 'alive',
      status_changed_at: 5000, simulated: false, registered_at: 5000, last_heartbeat_at: null, players: 0, primaries: 0, backups: 0,
    });
    const saved = await storedState(t.store);
    assert.ok(saved?.servers.some((s) => s.id === body.server_id), 'the registration is durable before the 201');
  });

  test('capacity defaults to 16; ids and tokens are distinct', async () => {
    const t = await testApp();
    const a = await register(t, A);
    const b = await register(t, { address: '[::1]:7777', zone: 'zone-a' });
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.token, b.token);
    assert.equal(t.host.coordinator.server(a.id as never)?.capacity, 16);
  });

  test('bad input is a 400 problem naming the field and registers nothing', async () => {
    const t = await testApp();
    const cases: [unknown, string][] = [
      [{ zone: 'a' }, 'body/address'],
      [{ address: '10.0.0.1:7777' }, 'body/zone'],
      [{ ...A, capacity: 0 }, 'body/capacity'],
      [{ ...A, capacity: 10_001 }, 'body/capacity'],
      [{ ...A, capacity: '16' }, 'body/capacity'],
      [{ ...A, capacity: 2.5 }, 'body/capacity'],
      [{ ...A, address: 'no port here' }, 'body/address'],
      [{ ...A, address: 42 }, 'body/address'],
      [{ ...A, zone: '' }, 'body/zone'],
      [{ ...A, name: '' }, 'body/name'],
      [{ ...A, colour: 'red' }, 'body/colour'],
      [{ ...A, server_id: 'mine' }, 'body/server_id'],
    ];
    for (const [body, path] of cases) {
      const res = await unchanged(t, () => request(handler(t)).post('/mesh/servers').send(body as object));
      const problem = expectResponse('registerServer', res, 400);
      assert.ok(problem.errors.some((e: { path: string }) => e.path === path), `${JSON.stringify(body)}: ${JSON.stringify(problem.errors)}`);
    }
    assert.equal(t.host.coordinator.servers().length, 0);
  });
});

describe('GET /mesh/servers and /mesh/servers/{server_id}', () => {
  test('lists servers in natural id order, optionally by status', async () => {
    const t = await testApp();
    const ids: string[] = [];
    for (let i = 0; i < 11; i++) ids.push((await register(t, { address: `10.0.0.${i + 1}:7777`, zone: 'a' })).id);
    await request(handler(t)).post(`/mesh/servers/${ids[3]}/leave`);
    const all = expectResponse('listServers', await get(t, '/mesh/servers'), 200);
    assert.deepEqual(all.servers.map((s: { server_id: string }) => s.server_id), ids);
    const draining = expectResponse('listServers', await get(t, '/mesh/servers?status=draining'), 200);
    assert.deepEqual(draining.servers.map((s: { server_id: string }) => s.server_id), [ids[3]]);
    const failed = expectResponse('listServers', await get(t, '/mesh/servers?status=failed'), 200);
    assert.deepEqual(failed.servers, []);
  });

  test('a bad status filter is a 400; an unknown server a 404; a malformed id a 400', async () => {
    const t = await testApp();
    const bad = expectResponse('listServers', await get(t, '/mesh/servers?status=sleeping'), 400);
    assert.equal(bad.errors[0].path, 'query/status');
    const missing = expectResponse('getServer', await get(t, '/mesh/servers/srv-404'), 404);
    assert.match(missing.detail, /srv-404/);
    expectResponse('getServer', await get(t, '/mesh/servers/white%20space'), 400);
  });
});

describe('POST /mesh/servers/{server_id}/heartbeat', () => {
  test('a heartbeat is answered with the assignment and never touches the disk', async () => {
    const t = await testApp();
    const a = await register(t, A);
    await advance(t, 700);
    await t.store.flush();
    const writes = t.store.writes();
    const res = await sendBeat(t, a, beat({ seq: 1, players: 12 }));
    const body = expectResponse('sendHeartbeat', res, 200);
    assert.deepEqual(body, {
      server_id: a.id, status: 'alive', degraded_level: 'NORMAL', fidelity: 1, heartbeat_interval_ms: 1000, regions: [], demoted: [], lease_ms: 0,
    });
    for (let i = 0; i < 20; i++) expectResponse('sendHeartbeat', await sendBeat(t, a, beat({ seq: i + 2, players: 12 })), 200);
    await t.store.flush();
    assert.equal(t.store.writes(), writes, 'heartbeats caused no write');
    const view = expectResponse('getServer', await get(t, `/mesh/servers/${a.id}`), 200);
    assert.equal(view.last_heartbeat_at, 700);
    assert.equal(view.players, 12);
  });

  test('bad bodies are 400 problems and change nothing', async () => {
    const t = await testApp();
    const a = await register(t, A);
    await advance(t, 500);
    const region = { region_id: 'castle', role: 'backup', epoch: 1, applied_seq: 3 };
    const cases: unknown[] = [
      {},
      beat({ incarnation: undefined }),
      beat({ incarnation: '' }),
      beat({ incarnation: 'x'.repeat(65) }),
      beat({ players: -1 }),
      beat({ players: 'many' }),
      beat({ players: 10_000_001 }),
      beat({ regions: 'castle' }),
      beat({ regions: [{ ...region, role: 'leader' }] }),
      beat({ regions: [{ ...region, epoch: -1 }] }),
      beat({ regions: [{ ...region, applied_seq: 1.5 }] }),
      beat({ regions: [{ ...region, extra: true }] }),
      beat({ regions: [{ region_id: 'castle' }] }),
      beat({ peers: [{ server_id: 'srv-2', silent_for_ms: -1 }] }),
      beat({ peers: [{ server_id: 'srv-2' }] }),
      beat({ seq: -1 }),
      beat({ colour: 'red' }),
    ];
    for (const body of cases) {
      const res = await unchanged(t, () => sendBeat(t, a, body));
      expectResponse('sendHeartbeat', res, 400);
    }
    assert.equal(t.host.coordinator.server(a.id as never)?.lastHeartbeatAtMs, null, 'no rejected heartbeat was applied');
  });

  test('claims about unknown regions and non-peers are ignored, not errors', async () => {
    const t = await testApp();
    const a = await register(t, A);
    const res = await sendBeat(t, a, beat({
      regions: [{ region_id: 'nowhere', role: 'primary', epoch: 9, applied_seq: 1 }], peers: [{ server_id: 'srv-77', silent_for_ms: 10 }],
    }));
    const body = expectResponse('sendHeartbeat', res, 200);
    assert.deepEqual(body.regions, []);
    assert.deepEqual(body.demoted, []);
  });

  test('a heartbeat dropped by an injected fault is a 503 problem with Retry-After', async () => {
    const t = await testApp();
    const a = await register(t, A);
    expectResponse('simulateFailure', await request(handler(t)).post('/mesh/simulate_failure')
      .send({ server_id: a.id, mode: 'partition', duration_ms: 5000 }), 202);
    const res = await sendBeat(t, a, beat());
    assert.equal(res.status, 503);
    assert.equal(res.headers['retry-after'], '1');
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.ok(contract().validateSchema('Problem', res.body).ok);
    assert.equal(res.body.type, 'https://mesh-coordinator.dev/problems/heartbeat-dropped');
    assert.equal(res.body.retry_after_ms, 1000);
    await advance(t, 5100);
    expectResponse('sendHeartbeat', await sendBeat(t, a, beat()), 200);
  });

  test('a server that has left is told so with a 409', async () => {
    const t = await testApp();
    const a = await register(t, A);
    expectResponse('leaveServer', await request(handler(t)).post(`/mesh/servers/${a.id}/leave`).set('Authorization', `Bearer ${a.token}`), 202);
    await advance(t, 200);
    assert.equal(t.host.coordinator.server(a.id as never)?.status, 'left');
    const body = expectResponse('sendHeartbeat', await unchanged(t, () => sendBeat(t, a, beat())), 409);
    assert.equal(body.type, 'https://mesh-coordinator.dev/problems/server-left');
  });
});

describe('POST /mesh/servers/{server_id}/leave', () => {
  test('starts draining (202), is idempotent, hands regions off without a failover, then the server has left', async () => {
    const t = await testApp();
    const servers = [await register(t, A), await register(t, B), await register(t, C), await register(t, { ...A, address: '10.0.0.4:7777' })];
    assert.ok(t.host.coordinator.createRegions([{ id: 'castle' }], t.host.now()).ok);
    await t.host.durable(t.host.flush());
    const primary = t.host.coordinator.replication('castle' as never)?.primary?.serverId;
    const leaver = servers.find((s) => s.id === primary) as Registered;
    const first = expectResponse('leaveServer', await request(handler(t)).post(`/mesh/servers/${leaver.id}/leave`).set('Authorization', `Bearer ${leaver.token}`), 202);
    assert.deepEqual(first, { server_id: leaver.id, status: 'draining' });
    assert.equal((await storedState(t.store))?.servers.find((s) => s.id === leaver.id)?.status, 'draining', 'on disk when answered');
    expectResponse('leaveServer', await request(handler(t)).post(`/mesh/servers/${leaver.id}/leave`).set('Authorization', `Bearer ${leaver.token}`), 202);
    // Everyone keeps heartbeating and follows its assignment until the leaver holds nothing.
    const replies = new Map<string, any>();
    for (let i = 0; i < 20 && t.host.coordinator.server(leaver.id as never)?.status !== 'left'; i++) {
      for (const s of servers) {
        const claims = (replies.get(s.id)?.regions ?? []).map((r: any) => ({ region_id: r.region_id, role: r.role, epoch: r.epoch, applied_seq: 5 }));
        const res = await sendBeat(t, s, beat({ regions: claims }));
        if (res.status === 200) replies.set(s.id, expectResponse('sendHeartbeat', res, 200));
      }
      await advance(t, 250);
    }
    assert.equal(t.host.coordinator.server(leaver.id as never)?.status, 'left');
    const replication = expectResponse('getRegionReplication', await get(t, '/mesh/replication/castle'), 200);
    assert.notEqual(replication.primary.server_id, leaver.id);
    assert.equal(expectResponse('getFailoverMetrics', await get(t, '/mesh/failover_metrics'), 200).failovers.total, 0, 'a planned hand-off is not a failover');
    const again = expectResponse('leaveServer', await unchanged(t, () => request(handler(t)).post(`/mesh/servers/${leaver.id}/leave`)), 409);
    assert.equal(again.type, 'https://mesh-coordinator.dev/problems/server-left');
  });

  test('an unknown server is a 404, a failed one a 409, a body a 400', async () => {
    const t = await testApp();
    expectResponse('leaveServer', await request(handler(t)).post('/mesh/servers/srv-404/leave'), 404);
    const a = await register(t, A);
    expectResponse('leaveServer', await unchanged(t, () => request(handler(t)).post(`/mesh/servers/${a.id}/leave`).send({ now: true })), 400);
    assert.ok(t.host.coordinator.createRegions([{ id: 'solo', backups: 0 }], t.host.now()).ok);
    await advance(t, 10_000);
    assert.equal(t.host.coordinator.server(a.id as never)?.status, 'failed');
    const failed = expectResponse('leaveServer', await unchanged(t, () => request(handler(t)).post(`/mesh/servers/${a.id}/leave`)), 409);
    assert.equal(failed.type, 'https://mesh-coordinator.dev/problems/server-failed');
  });
});

describe('heartbeat protocol with self-registered servers', () => {
  test('backups report a silent primary; the promoted backup leads at epoch 2 and the old primary is demoted', async () => {
    const t = await testApp();
    const servers = [await register(t, A), await register(t, B), await register(t, C)];
    const created = t.host.coordinator.createRegions([{ id: 'castle', players: 30 }], t.host.now());
    assert.ok(created.ok);
    await t.host.durable(t.host.flush());
    const replies = new Map<string, any>();
    const claimsOf = (s: Registered) => (replies.get(s.id)?.regions ?? [])
      .map((r: any) => ({ region_id: r.region_id, role: r.role, epoch: r.epoch, applied_seq: 40 }));
    const heartbeat = async (s: Registered, peers: unknown[] = []) => {
      const body = expectResponse('sendHeartbeat', await sendBeat(t, s, beat({ regions: claimsOf(s), peers })), 200);
      replies.set(s.id, body);
      return body;
    };

    for (let i = 0; i < 3; i++) {
      for (const s of servers) await heartbeat(s);
      await advance(t, 1000);
    }
    const before = expectResponse('getRegionReplication', await get(t, '/mesh/replication/castle'), 200);
    assert.equal(before.epoch, 1);
    assert.equal(before.state, 'active');
    const oldPrimary = servers.find((s) => s.id === before.primary.server_id) as Registered;
    const backups = servers.filter((s) => s !== oldPrimary);
    assert.equal(replies.get(oldPrimary.id).regions[0].role, 'primary');

    // The primary goes silent; its backups keep heartbeating and say they no longer hear it.
    let silentFor = 0;
    for (let i = 0; i < 16; i++) {
      silentFor += 250;
      for (const s of backups) await heartbeat(s, [{ server_id: oldPrimary.id, silent_for_ms: silentFor }]);
      await advance(t, 250);
    }
    const promoted = backups.find((s) => replies.get(s.id).regions[0]?.role === 'primary');
    assert.ok(promoted, 'one backup was told it is the primary');
    const assignment = replies.get(promoted.id).regions[0];
    assert.equal(assignment.region_id, 'castle');
    assert.equal(assignment.epoch, 2);
    assert.equal(assignment.primary.server_id, promoted.id);
    const other = backups.find((s) => s !== promoted) as Registered;
    assert.equal(replies.get(other.id).regions[0].role, 'backup');
    assert.equal(replies.get(other.id).regions[0].primary.server_id, promoted.id, 'the other backup replicates from the new primary');
    const after = expectResponse('getRegionReplication', await get(t, '/mesh/replication/castle'), 200);
    assert.equal(after.primary.server_id, promoted.id);
    assert.equal(after.primary.acknowledged, true, 'the promoted backup acknowledged by claiming primary at epoch 2');
    assert.equal(after.epoch, 2);
    assert.equal(expectResponse('getServer', await get(t, `/mesh/servers/${oldPrimary.id}`), 200).status, 'failed');

    // The old primary comes back still believing it leads at epoch 1: it is fenced.
    const stale = expectResponse('sendHeartbeat', await sendBeat(t, oldPrimary, beat({
      regions: [{ region_id: 'castle', role: 'primary', epoch: 1, applied_seq: 40 }],
    })), 200);
    assert.deepEqual(stale.demoted, [{ region_id: 'castle', epoch: 2 }]);
    assert.ok(!stale.regions.some((r: any) => r.region_id === 'castle' && r.role === 'primary'));
    const metrics = expectResponse('getFailoverMetrics', await get(t, '/mesh/failover_metrics'), 200);
    assert.equal(metrics.failovers.completed, 1);
    assert.equal(metrics.recent[0].failed_server_id, oldPrimary.id);
    assert.equal(metrics.recent[0].new_primary_id, promoted.id);
    assert.deepEqual(t.errors, []);
  });
});

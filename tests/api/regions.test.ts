import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { testMeshConfig } from '../../mesh/base/config.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { expectResponse } from './harness.ts';
import { MeshFixture } from './mesh-fixture.ts';

const ADMIN = 'regions-admin-token';

/** Three servers in zones a, b, c and one region on them, everyone heartbeating. */
async function meshWithRegion(options: Parameters<typeof MeshFixture.create>[0] = {}) {
  const f = await MeshFixture.create(options);
  f.register(['s1', 's2', 's3']);
  const auth = options.adminToken ? { Authorization: `Bearer ${options.adminToken}` } : {};
  const res = await f.http.post('/mesh/regions').set(auth).send({ region_id: 'castle', critical: true, players: 40 });
  expectResponse('createRegion', res, 201);
  f.adopt('castle');
  await f.run(3000);
  return f;
}

describe('POST /mesh/regions', () => {
  test('creates a region on three zones, durably, and answers 201 with Location', async () => {
    const f = await MeshFixture.create();
    f.register(['s1', 's2', 's3']);
    const res = await f.http.post('/mesh/regions').send({ region_id: 'castle-north', critical: true, players: 120 });
    const body = expectResponse('createRegion', res, 201);
    assert.equal(res.headers.location, '/mesh/regions/castle-north');
    assert.equal(body.region_id, 'castle-north');
    assert.equal(body.epoch, 1);
    assert.equal(body.state, 'active');
    assert.equal(body.critical, true);
    assert.equal(body.players, 120);
    assert.equal(body.actions_pending, 0);
    assert.equal(body.backups.length, 2);
    const ids = [body.primary.server_id, ...body.backups.map((b: { server_id: string }) => b.server_id)].sort();
    assert.deepEqual(ids, ['s1', 's2', 's3']);
    assert.match(body.primary.address, /^10\.0\.\d\.1:7777$/);
    assert.ok(f.allDurable(), 'the region was answered before it was on disk');
  });

  test('picks an id and fills the defaults when the body is empty', async () => {
    const f = await MeshFixture.create();
    f.register(['s1', 's2', 's3']);
    const body = expectResponse('createRegion', await f.http.post('/mesh/regions').send({}), 201);
    assert.match(body.region_id, /^region-\d+$/);
    assert.equal(body.critical, false);
    assert.equal(body.players, 0);
  });

  test('a taken id is a 409 and changes nothing', async () => {
    const f = await meshWithRegion();
    const res = await f.unchanged(() => f.http.post('/mesh/regions').send({ region_id: 'castle' }));
    const problem = expectResponse('createRegion', res, 409);
    assert.equal(problem.type, 'https://mesh-coordinator.dev/problems/duplicate-region');
  });

  test('no free capacity is a 409 (no_capacity) and changes nothing', async () => {
    const f = await MeshFixture.create();
    const none = await f.unchanged(() => f.http.post('/mesh/regions').send({ region_id: 'lonely' }));
    assert.equal(expectResponse('createRegion', none, 409).type, 'https://mesh-coordinator.dev/problems/no-capacity');
    f.register(['s1'], 1);
    expectResponse('createRegion', await f.http.post('/mesh/regions').send({ region_id: 'one' }), 201);
    const full = await f.unchanged(() => f.http.post('/mesh/regions').send({ region_id: 'two' }));
    expectResponse('createRegion', full, 409);
  });

  test('bad input is a 4xx problem and changes nothing', async () => {
    const f = await MeshFixture.create();
    f.register(['s1', 's2', 's3']);
    const cases: { name: string; send: () => Promise<import('supertest').Response>; status: number; field?: string }[] = [
      { name: 'malformed JSON', status: 400, send: () => f.http.post('/mesh/regions').set('Content-Type', 'application/json').send('{"region_id": "x",') },
      { name: 'a JSON string', status: 400, send: () => f.http.post('/mesh/regions').set('Content-Type', 'application/json').send('"castle"') },
      { name: 'an array', status: 400, send: () => f.http.post('/mesh/regions').send([{ region_id: 'x' }]) },
      { name: 'critical as a string', status: 400, field: 'body/critical', send: () => f.http.post('/mesh/regions').send({ critical: 'yes' }) },
      { name: 'players as a string', status: 400, field: 'body/players', send: () => f.http.post('/mesh/regions').send({ players: '5' }) },
      { name: 'players fractional', status: 400, field: 'body/players', send: () => f.http.post('/mesh/regions').send({ players: 1.5 }) },
      { name: 'players negative', status: 400, field: 'body/players', send: () => f.http.post('/mesh/regions').send({ players: -1 }) },
      { name: 'players too many', status: 400, field: 'body/players', send: () => f.http.post('/mesh/regions').send({ players: 10_000_001 }) },
      { name: 'an unknown field', status: 400, field: 'body/backups', send: () => f.http.post('/mesh/regions').send({ region_id: 'x', backups: 5 }) },
      { name: 'an id with spaces', status: 400, field: 'body/region_id', send: () => f.http.post('/mesh/regions').send({ region_id: 'bad id!' }) },
      { name: 'an id too long', status: 400, field: 'body/region_id', send: () => f.http.post('/mesh/regions').send({ region_id: 'r'.repeat(65) }) },
      { name: 'an empty id', status: 400, field: 'body/region_id', send: () => f.http.post('/mesh/regions').send({ region_id: '' }) },
      { name: 'an oversized body', status: 413, send: () => f.http.post('/mesh/regions').send({ region_id: 'x', pad: 'p'.repeat(17 * 1024) }) },
      { name: 'a text body', status: 415, send: () => f.http.post('/mesh/regions').set('Content-Type', 'text/plain').send('region_id=x') },
    ];
    for (const c of cases) {
      const res = await f.unchanged(c.send);
      const problem = expectResponse('createRegion', res, c.status);
      if (c.field) assert.ok(problem.errors.some((e: { path: string }) => e.path === c.field), `${c.name}: ${JSON.stringify(problem.errors)}`);
    }
    assert.equal(f.host.coordinator.regions().length, 0);
  });

  test('with an admin token: 401 without it, 403 with a wrong one or a server token', async () => {
    const f = await MeshFixture.create({ adminToken: ADMIN });
    f.register(['s1', 's2', 's3']);
    const none = await f.unchanged(() => f.http.post('/mesh/regions').send({ region_id: 'x' }));
    expectResponse('createRegion', none, 401);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const wrong = await f.unchanged(() => f.http.post('/mesh/regions').set('Authorization', 'Bearer nope').send({ region_id: 'x' }));
    expectResponse('createRegion', wrong, 403);
    const server = await f.unchanged(() => f.http.post('/mesh/regions').set(f.as('s1')).send({ region_id: 'x' }));
    expectResponse('createRegion', server, 403);
    const ok = await f.http.post('/mesh/regions').set('Authorization', `Bearer ${ADMIN}`).send({ region_id: 'x' });
    expectResponse('createRegion', ok, 201);
  });

  test('a failed write answers 503 instead of 201', async () => {
    let failing = false;
    const store = new MemoryStore({ beforeWrite: () => { if (failing) throw new Error('disk full'); } });
    const f = await MeshFixture.create({ store });
    f.register(['s1', 's2', 's3']);
    await f.run(100);
    failing = true;
    const res = await f.http.post('/mesh/regions').send({ region_id: 'castle' });
    assert.equal(res.status, 503);
    assert.match(String(res.headers['content-type']), /application\/problem\+json/);
    assert.equal(res.body.type, 'https://mesh-coordinator.dev/problems/not-durable');
    assert.match(res.body.detail, /may not survive a restart/);
    assert.doesNotMatch(res.body.detail, /disk full/);
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(res.headers.location, undefined);
  });
});

describe('GET /mesh/regions', () => {
  test('lists every region ordered by id, and filters by state', async () => {
    const f = await MeshFixture.create();
    f.register(['s1', 's2', 's3']);
    for (const id of ['zeta', 'r-10', 'alpha', 'r-2']) expectResponse('createRegion', await f.http.post('/mesh/regions').send({ region_id: id }), 201);
    const all = expectResponse('listRegions', await f.http.get('/mesh/regions'), 200);
    assert.deepEqual(all.regions.map((r: { region_id: string }) => r.region_id), ['alpha', 'r-2', 'r-10', 'zeta']);
    const active = expectResponse('listRegions', await f.http.get('/mesh/regions?state=active'), 200);
    assert.equal(active.regions.length, 4);
    const failing = expectResponse('listRegions', await f.http.get('/mesh/regions?state=failing_over'), 200);
    assert.deepEqual(failing.regions, []);
  });

  test('an unknown state or a repeated parameter is a 400', async () => {
    const f = await MeshFixture.create();
    expectResponse('listRegions', await f.http.get('/mesh/regions?state=broken'), 400);
    expectResponse('listRegions', await f.http.get('/mesh/regions?state=active&state=unavailable'), 400);
  });

  test('shows the promoted backup and the buffered actions while a region fails over', async () => {
    const f = await meshWithRegion();
    const { promoted, epoch } = await f.failPrimary('castle');
    expectResponse('submitAction', await f.http.post('/mesh/regions/castle/actions').send({ player_id: 'p1', seq: 1, payload: {} }), 202);
    const list = expectResponse('listRegions', await f.http.get('/mesh/regions?state=failing_over'), 200);
    assert.equal(list.regions.length, 1);
    assert.equal(list.regions[0].primary.server_id, promoted);
    assert.equal(list.regions[0].epoch, epoch);
    assert.equal(list.regions[0].actions_pending, 1);
  });
});

describe('PATCH /mesh/regions/{region_id}', () => {
  test('changes critical and players, durably', async () => {
    const f = await meshWithRegion();
    const body = expectResponse('updateRegion', await f.http.patch('/mesh/regions/castle').send({ critical: false, players: 80 }), 200);
    assert.equal(body.critical, false);
    assert.equal(body.players, 80);
    assert.equal(body.region_id, 'castle');
    assert.ok(f.allDurable());
    const one = expectResponse('updateRegion', await f.http.patch('/mesh/regions/castle').send({ players: 7 }), 200);
    assert.equal(one.players, 7);
    assert.equal(one.critical, false);
  });

  test('bad input and unknown regions are 4xx problems that change nothing', async () => {
    const f = await meshWithRegion({ adminToken: ADMIN });
    const admin = { Authorization: `Bearer ${ADMIN}` };
    const patch = (path: string) => f.http.patch(path).set(admin);
    const cases: [() => Promise<import('supertest').Response>, number][] = [
      [() => patch('/mesh/regions/castle').send({}), 400],
      [() => patch('/mesh/regions/castle').send({ critical: 1 }), 400],
      [() => patch('/mesh/regions/castle').send({ players: -3 }), 400],
      [() => patch('/mesh/regions/castle').send({ players: 10_000_001 }), 400],
      [() => patch('/mesh/regions/castle').send({ players: 3, epoch: 9 }), 400],
      [() => patch('/mesh/regions/castle').set('Content-Type', 'application/json').send('{players: 3}'), 400],
      [() => patch('/mesh/regions/bad%20id').send({ players: 3 }), 400],
      [() => patch('/mesh/regions/atlantis').send({ players: 3 }), 404],
      [() => patch('/mesh/regions/castle').send({ players: 3, pad: 'x'.repeat(20_000) }), 413],
      [() => patch('/mesh/regions/castle').set('Content-Type', 'text/plain').send('players=3'), 415],
      [() => f.http.patch('/mesh/regions/castle').send({ players: 3 }), 401],
      [() => f.http.patch('/mesh/regions/castle').set('Authorization', 'Bearer wrong').send({ players: 3 }), 403],
    ];
    for (const [send, status] of cases) expectResponse('updateRegion', await f.unchanged(send), status);
  });
});

describe('GET /mesh/regions/{region_id}/route', () => {
  test('answers at once with the primary and backups of a healthy region', async () => {
    const f = await meshWithRegion();
    const body = expectResponse('getRegionRoute', await f.http.get('/mesh/regions/castle/route'), 200);
    assert.equal(body.region_id, 'castle');
    assert.equal(body.epoch, 1);
    assert.equal(body.state, 'active');
    assert.ok(body.primary);
    assert.equal(body.backups.length, 2);
    assert.equal(body.retry_after_ms, undefined);
  });

  test('answers at once when the known epoch is already behind', async () => {
    const f = await meshWithRegion();
    const started = Date.now();
    const body = expectResponse('getRegionRoute', await f.http.get('/mesh/regions/castle/route?wait_ms=5000&known_epoch=0'), 200);
    assert.equal(body.epoch, 1);
    assert.ok(Date.now() - started < 1000);
  });

  test('answers at once without known_epoch, whatever wait_ms says', async () => {
    const f = await meshWithRegion();
    const started = Date.now();
    expectResponse('getRegionRoute', await f.http.get('/mesh/regions/castle/route?wait_ms=5000'), 200);
    assert.ok(Date.now() - started < 1000);
  });

  test('during a failover: no primary yet, the new epoch, and when to ask again', async () => {
    const f = await meshWithRegion();
    const { epoch } = await f.failPrimary('castle');
    const body = expectResponse('getRegionRoute', await f.http.get('/mesh/regions/castle/route'), 200);
    assert.equal(body.state, 'failing_over');
    assert.equal(body.epoch, epoch);
    assert.equal(body.primary, null);
    assert.equal(body.retry_after_ms, testMeshConfig.heartbeatIntervalMs);
  });

  test('a long-poll started before the failover completes answers with the new epoch as soon as it does', async () => {
    const f = await meshWithRegion();
    const subscribed = watchSubscriptions(f);
    const { promoted, epoch } = await f.failPrimary('castle');
    assert.equal(epoch, 2);
    const started = Date.now();
    const pending = f.http.get('/mesh/regions/castle/route?wait_ms=5000&known_epoch=1').then((res) => res);
    await subscribed.first;
    // Time moves on while the request waits; the promoted backup then acknowledges.
    await f.run(500);
    f.acknowledgePromotion(promoted, 'castle');
    const res = await pending;
    const body = expectResponse('getRegionRoute', res, 200);
    assert.equal(body.epoch, 2);
    assert.equal(body.primary.server_id, promoted);
    assert.notEqual(body.state, 'failing_over');
    assert.equal(body.retry_after_ms, undefined);
    assert.ok(Date.now() - started < 4000, 'the long-poll waited for its timeout instead of the failover');
    assert.equal(subscribed.active(), 0, 'the long-poll left its subscription behind');
  });

  test('a long-poll with nothing new answers after wait_ms with the same epoch', async () => {
    const f = await meshWithRegion();
    const subscribed = watchSubscriptions(f);
    const started = Date.now();
    const body = expectResponse('getRegionRoute', await f.http.get('/mesh/regions/castle/route?wait_ms=200&known_epoch=1'), 200);
    const waited = Date.now() - started;
    assert.equal(body.epoch, 1);
    assert.ok(body.primary);
    assert.ok(waited >= 190 && waited < 2000, `waited ${waited} ms`);
    assert.equal(subscribed.count(), 1);
    assert.equal(subscribed.active(), 0);
  });

  test('a client that disconnects during a long-poll leaves no subscription or timer behind', async () => {
    const f = await meshWithRegion();
    const subscribed = watchSubscriptions(f);
    const aborted = f.http.get('/mesh/regions/castle/route?wait_ms=30000&known_epoch=1').timeout(150).then(
      () => assert.fail('the request should have been aborted'), (error: { timeout?: number }) => error);
    await subscribed.first;
    assert.equal(subscribed.active(), 1);
    const error = await aborted;
    assert.ok(error.timeout);
    await waitFor(() => subscribed.active() === 0);
    assert.equal(subscribed.active(), 0);
  });

  test('bad parameters are 400 and an unknown region 404', async () => {
    const f = await meshWithRegion();
    for (const query of ['wait_ms=30001', 'wait_ms=-1', 'wait_ms=soon', 'wait_ms=1.5', 'known_epoch=-1', 'known_epoch=x', 'wait_ms=1&wait_ms=2']) {
      expectResponse('getRegionRoute', await f.http.get(`/mesh/regions/castle/route?${query}`), 400);
    }
    expectResponse('getRegionRoute', await f.http.get('/mesh/regions/bad%20id/route'), 400);
    expectResponse('getRegionRoute', await f.http.get('/mesh/regions/atlantis/route'), 404);
    expectResponse('getRegionRoute', await f.http.get('/mesh/regions/atlantis/route?wait_ms=5000&known_epoch=1'), 404);
  });
});

/** Counts subscriptions to the host's events; `first` resolves when the next one is made. */
function watchSubscriptions(f: MeshFixture) {
  const host = f.host;
  const original = host.subscribe.bind(host);
  let made = 0;
  let live = 0;
  let signal: () => void = () => {};
  const first = new Promise<void>((resolve) => { signal = resolve; });
  host.subscribe = (listener) => {
    made++;
    live++;
    signal();
    const unsubscribe = original(listener);
    let done = false;
    return () => {
      if (!done) { done = true; live--; }
      return unsubscribe();
    };
  };
  return { first, count: () => made, active: () => live };
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

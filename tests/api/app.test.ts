import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import type { MeshHost } from '../../api/deps.ts';
import { hashToken } from '../../api/auth.ts';
import { contract, expectResponse, storedState, testApp } from './harness.ts';
import { beat, handler, register, sendBeat, unchanged } from './fixtures.ts';

const ADMIN = 'the-admin-token-for-tests';

function assertProblem(res: request.Response, status: number): Record<string, any> {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const checked = contract().validateSchema('Problem', res.body);
  assert.ok(checked.ok, JSON.stringify(checked));
  assert.equal(res.body.status, status);
  return res.body;
}

describe('routing', () => {
  test('an unknown path is a 404 problem naming the method and path', async () => {
    const t = await testApp();
    const res = await request(handler(t)).get('/mesh/nothing-here');
    const body = assertProblem(res, 404);
    assert.equal(body.type, 'https://mesh-coordinator.dev/problems/not-found');
    assert.equal(body.instance, '/mesh/nothing-here');
    assert.match(body.detail, /GET \/mesh\/nothing-here/);
  });

  test('a known path with a wrong method is a 405 problem with Allow', async () => {
    const t = await testApp();
    const res = await request(handler(t)).delete('/mesh/status');
    const body = assertProblem(res, 405);
    assert.equal(body.type, 'https://mesh-coordinator.dev/problems/method-not-allowed');
    assert.deepEqual(String(res.headers.allow).split(', ').sort(), ['GET', 'HEAD']);
    const post = await request(handler(t)).put('/mesh/setup_test').send({ regions: 1 });
    assertProblem(post, 405);
    assert.equal(post.headers.allow, 'POST');
    assert.equal(t.host.coordinator.servers().length, 0, 'the wrong method created nothing');
  });

  test('a method the service does not implement is a 501 problem', async () => {
    const t = await testApp();
    const server = http.createServer(handler(t)).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/mesh/status`, { method: 'PURGE' });
      assert.equal(res.status, 501);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const body = await res.json() as Record<string, unknown>;
      assert.equal(body.type, 'https://mesh-coordinator.dev/problems/not-implemented');
      assert.ok(contract().validateSchema('Problem', body).ok);
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });

  test('OPTIONS lists the allowed methods', async () => {
    const t = await testApp();
    const res = await request(handler(t)).options('/mesh/servers');
    assert.equal(res.status, 200);
    assert.deepEqual(String(res.headers.allow).split(', ').sort(), ['GET', 'HEAD', 'POST']);
  });
});

describe('request bodies', () => {
  test('malformed JSON is a 400 problem and changes nothing', async () => {
    const t = await testApp();
    const res = await unchanged(t, () => request(handler(t)).post('/mesh/servers')
      .set('Content-Type', 'application/json').send('{"address": "10.0.0.1:7777", "zone":'));
    const body = expectResponse('registerServer', res, 400);
    assert.equal(body.type, 'https://mesh-coordinator.dev/problems/malformed-json');
  });

  test('a JSON scalar at the top is a 400 problem', async () => {
    const t = await testApp();
    const res = await unchanged(t, () => request(handler(t)).post('/mesh/setup_test')
      .set('Content-Type', 'application/json').send('3'));
    expectResponse('setupTestMesh', res, 400);
  });

  test('a body that is not JSON is a 415 problem and changes nothing', async () => {
    const t = await testApp();
    const res = await unchanged(t, () => request(handler(t)).post('/mesh/servers')
      .set('Content-Type', 'text/plain').send('address=10.0.0.1:7777'));
    const body = expectResponse('registerServer', res, 415);
    assert.match(body.detail, /text\/plain/);
    const form = await request(handler(t)).post('/mesh/setup_test').type('form').send({ regions: 3 });
    expectResponse('setupTestMesh', form, 415);
  });

  test('a body over the 16 KiB default limit is a 413 problem and changes nothing', async () => {
    const t = await testApp();
    const res = await unchanged(t, () => request(handler(t)).post('/mesh/servers')
      .send({ address: '10.0.0.1:7777', zone: 'a', name: 'x'.repeat(17 * 1024) }));
    const body = expectResponse('registerServer', res, 413);
    assert.match(body.detail, /16384 bytes/);
  });

  test('heartbeats have a larger limit (1 MiB): 20 KiB passes, 1.1 MiB does not', async () => {
    const t = await testApp();
    const s = await register(t, { address: '10.0.0.1:7777', zone: 'a' });
    const peers = Array.from({ length: 400 }, (_, i) => ({ server_id: `peer-${i}`, silent_for_ms: i }));
    expectResponse('sendHeartbeat', await sendBeat(t, s, beat({ peers })), 200);
    const huge = Array.from({ length: 18_000 }, (_, i) => ({ server_id: `peer-with-a-long-name-${i}`, silent_for_ms: i * 1000 }));
    expectResponse('sendHeartbeat', await sendBeat(t, s, beat({ peers: huge })), 413);
  });

  test('a body on an operation that takes none is a 400 problem', async () => {
    const t = await testApp();
    const res = await request(handler(t)).post('/mesh/reset').send({ everything: true });
    const body = expectResponse('resetTestMesh', res, 400);
    assert.equal(body.errors[0].path, 'body');
  });
});

describe('admin authentication with MESH_ADMIN_TOKEN set', () => {
  test('missing token 401 with a challenge, wrong token 403, right token 2xx', async () => {
    const t = await testApp({ adminToken: ADMIN });
    const missing = await unchanged(t, () => request(handler(t)).post('/mesh/setup_test').send({ regions: 1 }));
    expectResponse('setupTestMesh', missing, 401);
    assert.match(String(missing.headers['www-authenticate']), /^Bearer realm=/);
    const wrong = await unchanged(t, () => request(handler(t)).post('/mesh/setup_test')
      .set('Authorization', 'Bearer not-the-token').send({ regions: 1 }));
    expectResponse('setupTestMesh', wrong, 403);
    const right = await request(handler(t)).post('/mesh/setup_test').set('Authorization', `Bearer ${ADMIN}`).send({ regions: 1 });
    expectResponse('setupTestMesh', right, 201);
  });

  test('every admin operation of this module asks for the token', async () => {
    const t = await testApp({ adminToken: ADMIN });
    const cases: [string, string, unknown][] = [
      ['registerServer', '/mesh/servers', { address: '10.0.0.1:7777', zone: 'a' }],
      ['setupTestMesh', '/mesh/setup_test', { regions: 1 }],
      ['resetTestMesh', '/mesh/reset', undefined],
      ['simulateFailure', '/mesh/simulate_failure', { fraction: 1 }],
      ['advanceTestTime', '/mesh/test/advance_time', { ms: 1000 }],
    ];
    for (const [operationId, path, body] of cases) {
      const res = await unchanged(t, () => request(handler(t)).post(path).send(body as object));
      expectResponse(operationId, res, 401);
      const wrong = await unchanged(t, () => request(handler(t)).post(path).set('Authorization', 'Bearer nope').send(body as object));
      expectResponse(operationId, wrong, 403);
    }
    assert.equal(t.clock.now(), 0, 'advance_time without the token did not move time');
  });

  test('the auth check comes before the body: a bad body without a token is a 401', async () => {
    const t = await testApp({ adminToken: ADMIN });
    const res = await request(handler(t)).post('/mesh/setup_test').set('Content-Type', 'application/json').send('{oops');
    expectResponse('setupTestMesh', res, 401);
  });

  test('public operations need no token', async () => {
    const t = await testApp({ adminToken: ADMIN });
    expectResponse('getMeshStatus', await request(handler(t)).get('/mesh/status'), 200);
    expectResponse('listServers', await request(handler(t)).get('/mesh/servers'), 200);
    expectResponse('getFailoverMetrics', await request(handler(t)).get('/mesh/failover_metrics'), 200);
  });
});

describe('server authentication', () => {
  test('a server heartbeats only as itself: another server token is a 403 that changes nothing', async () => {
    const t = await testApp({ adminToken: ADMIN });
    const a = await register(t, { address: '10.0.0.1:7777', zone: 'a' }, ADMIN);
    const b = await register(t, { address: '10.0.0.2:7777', zone: 'b' }, ADMIN);
    await t.host.advance(500);
    const res = await unchanged(t, () => sendBeat(t, b, beat(), a.token));
    const body = expectResponse('sendHeartbeat', res, 403);
    assert.match(body.detail, new RegExp(b.id));
    assert.equal(t.host.coordinator.server(b.id as never)?.lastHeartbeatAtMs, null, 'the heartbeat was not applied');
  });

  test('no token is a 401, the admin token is not a server token (403), an unknown server is a 404', async () => {
    const t = await testApp({ adminToken: ADMIN });
    const a = await register(t, { address: '10.0.0.1:7777', zone: 'a' }, ADMIN);
    const none = await unchanged(t, () => request(handler(t)).post(`/mesh/servers/${a.id}/heartbeat`).send(beat()));
    expectResponse('sendHeartbeat', none, 401);
    expectResponse('sendHeartbeat', await unchanged(t, () => sendBeat(t, a, beat(), ADMIN)), 403);
    const ghost = await unchanged(t, () => sendBeat(t, { id: 'srv-404', token: a.token }, beat()));
    expectResponse('sendHeartbeat', ghost, 404);
  });

  test('only the hash of a server token is stored', async () => {
    const t = await testApp();
    const a = await register(t, { address: '10.0.0.1:7777', zone: 'a' });
    const record = t.host.coordinator.serverRecord(a.id as never);
    assert.equal(record?.credentialHash, hashToken(a.token));
    const saved = JSON.stringify(await storedState(t.store));
    assert.ok(saved.includes(hashToken(a.token)), 'the hash is persisted');
    assert.ok(!saved.includes(a.token), 'the token itself is never persisted');
  });

  test('leave accepts the server itself or the admin, not another server', async () => {
    const t = await testApp({ adminToken: ADMIN });
    const a = await register(t, { address: '10.0.0.1:7777', zone: 'a' }, ADMIN);
    const b = await register(t, { address: '10.0.0.2:7777', zone: 'b' }, ADMIN);
    const other = await unchanged(t, () => request(handler(t)).post(`/mesh/servers/${a.id}/leave`).set('Authorization', `Bearer ${b.token}`));
    expectResponse('leaveServer', other, 403);
    const self = await request(handler(t)).post(`/mesh/servers/${a.id}/leave`).set('Authorization', `Bearer ${a.token}`);
    expectResponse('leaveServer', self, 202);
    const admin = await request(handler(t)).post(`/mesh/servers/${b.id}/leave`).set('Authorization', `Bearer ${ADMIN}`);
    expectResponse('leaveServer', admin, 202);
  });
});

describe('errors and lifecycle', () => {
  test('an unexpected error is a 500 problem that leaks nothing and is logged', async () => {
    const t = await testApp();
    const coordinator = new Proxy(t.host.coordinator, {
      get(target, key, receiver) {
        if (key === 'status') return () => { throw new Error('secret at db.internal:5432'); };
        return Reflect.get(target, key, receiver);
      },
    });
    const host = new Proxy(t.host, { get: (target, key) => (key === 'coordinator' ? coordinator : Reflect.get(target, key, target)) }) as MeshHost;
    const logged: unknown[] = [];
    const app = createApp({ host, adminToken: undefined, logError: (error) => logged.push(error) });
    const res = await request(app.callback()).get('/mesh/status');
    const body = assertProblem(res, 500);
    assert.doesNotMatch(JSON.stringify(body), /secret|db\.internal/);
    assert.equal(logged.length, 1);
    app.closeStreams();
  });

  test("app 'error' events: client disconnects are ignored, anything else is logged", async () => {
    const logged: unknown[] = [];
    const t = await testApp();
    const app = createApp({ host: t.host, adminToken: undefined, logError: (error) => logged.push(error) });
    app.emit('error', Object.assign(new Error('gone'), { code: 'ECONNRESET' }));
    app.emit('error', Object.assign(new Error('closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    assert.equal(logged.length, 0);
    app.emit('error', new Error('real trouble'));
    assert.equal(logged.length, 1);
    app.closeStreams();
    app.closeStreams();
  });

  test('no unexpected error was logged by a normal request mix', async () => {
    const t = await testApp();
    await request(handler(t)).get('/mesh/status');
    await request(handler(t)).post('/mesh/setup_test').send({ regions: 2 });
    await request(handler(t)).post('/mesh/test/advance_time').send({ ms: 3000 });
    await request(handler(t)).get('/mesh/failover_metrics');
    assert.deepEqual(t.errors, []);
  });
});

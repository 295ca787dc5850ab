import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import Koa, { type Context } from 'koa';
import { Router } from '@koa/router';
import request from 'supertest';
import {
  adminAuth, authenticateAdmin, hashToken, isLoopbackAddress, issueServerToken, principalOf, serverAuth,
  tokenMatchesHash, type TokenHashLookup,
} from '../../api/auth.ts';
import { HttpProblem, problemMiddleware } from '../../api/problem.ts';

const ADMIN = 'admin-secret-token';

/** Two registered servers, with their tokens; the lookup sees only hashes. */
function registry() {
  const tokens = { s1: issueServerToken(), s2: issueServerToken() };
  const hashes = new Map(Object.entries(tokens).map(([id, t]) => [id, hashToken(t)]));
  const lookup: TokenHashLookup = (id) => hashes.get(id);
  return { tokens, lookup };
}

function makeApp(adminToken: string | undefined, lookup: TokenHashLookup) {
  const app = new Koa();
  const router = new Router();
  const answer = (ctx: Context) => { ctx.body = principalOf(ctx); };
  router.post('/admin', adminAuth({ adminToken }), answer);
  router.post('/servers/:server_id/heartbeat', serverAuth(lookup), answer);
  router.post('/servers/:server_id/leave', serverAuth(lookup, { adminToken, allowAdmin: true }), answer);
  router.post('/regions/:region_id/collect', serverAuth(lookup), answer);
  app.use(problemMiddleware({ log: () => {} }));
  app.use(router.routes());
  return app.callback();
}

describe('admin authentication with a token', () => {
  const { lookup } = registry();
  const server = makeApp(ADMIN, lookup);

  test('no token is a 401 with a Bearer challenge', async () => {
    const res = await request(server).post('/admin');
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="mesh-admin"');
    assert.match(res.headers['content-type'] ?? '', /problem\+json/);
  });

  test('another scheme counts as no token', async () => {
    const res = await request(server).post('/admin').set('Authorization', `Basic ${Buffer.from(`a:${ADMIN}`).toString('base64')}`);
    assert.equal(res.status, 401);
  });

  test('a wrong token is a 403, even from loopback', async () => {
    for (const token of ['nope', `${ADMIN}x`, ADMIN.slice(0, -1)]) {
      const res = await request(server).post('/admin').set('Authorization', `Bearer ${token}`);
      assert.equal(res.status, 403, token);
    }
  });

  test('the right token is admitted', async () => {
    const res = await request(server).post('/admin').set('Authorization', `Bearer ${ADMIN}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { kind: 'admin', via: 'token' });
  });
});

describe('admin authentication in protected mode (no token)', () => {
  const { lookup } = registry();

  test('a loopback caller is admitted without credentials', async () => {
    const res = await request(makeApp(undefined, lookup)).post('/admin');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { kind: 'admin', via: 'loopback' });
    assert.equal((await request(makeApp('', lookup)).post('/admin')).status, 200, 'an empty token is no token');
  });

  test('a remote caller is refused with a detail that says what to do', () => {
    const remote = { req: { socket: { remoteAddress: '10.1.2.3' } }, get: () => '' } as unknown as Context;
    assert.throws(() => authenticateAdmin(remote, {}), (error: unknown) => {
      assert.ok(error instanceof HttpProblem);
      assert.equal(error.status, 403);
      assert.match(error.detail, /MESH_ADMIN_TOKEN/);
      return true;
    });
    const local = { req: { socket: { remoteAddress: '::ffff:127.0.0.1' } }, get: () => '' } as unknown as Context;
    assert.deepEqual(authenticateAdmin(local, {}), { kind: 'admin', via: 'loopback' });
  });

  test('isLoopbackAddress', () => {
    const yes = ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.1.2.3'];
    const no = [undefined, '', '10.0.0.1', '128.0.0.1', '::2', '::', 'fe80::1', '::ffff:10.0.0.1', 'localhost', '127.0.0.1.evil', '1127.0.0.1'];
    for (const a of yes) assert.equal(isLoopbackAddress(a), true, String(a));
    for (const a of no) assert.equal(isLoopbackAddress(a), false, String(a));
  });
});

describe('server tokens', () => {
  test('are 32 random bytes in base64url; only a SHA-256 hex hash is kept', () => {
    const token = issueServerToken();
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(token, issueServerToken());
    assert.match(hashToken(token), /^[0-9a-f]{64}$/);
    assert.equal(tokenMatchesHash(token, hashToken(token)), true);
    assert.equal(tokenMatchesHash(`${token}x`, hashToken(token)), false);
    assert.equal(tokenMatchesHash(token, 'not-hex'), false);
  });
});

describe('server authentication', () => {
  const { tokens, lookup } = registry();
  const server = makeApp(ADMIN, lookup);

  test('a server heartbeats as itself', async () => {
    const res = await request(server).post('/servers/s1/heartbeat').set('Authorization', `Bearer ${tokens.s1}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { kind: 'server', serverId: 's1' });
  });

  test('and never as another server', async () => {
    const res = await request(server).post('/servers/s2/heartbeat').set('Authorization', `Bearer ${tokens.s1}`);
    assert.equal(res.status, 403);
    const header = await request(server).post('/servers/s2/heartbeat').set('Authorization', `Bearer ${tokens.s1}`).set('X-Server-Id', 's1');
    assert.equal(header.status, 403, 'the path wins over the header');
  });

  test('missing token is 401, unknown server 404, admin token is not a server token', async () => {
    assert.equal((await request(server).post('/servers/s1/heartbeat')).status, 401);
    assert.equal((await request(server).post('/servers/s9/heartbeat').set('Authorization', `Bearer ${tokens.s1}`)).status, 404);
    assert.equal((await request(server).post('/servers/s1/heartbeat').set('Authorization', `Bearer ${ADMIN}`)).status, 403);
  });

  test('region-scoped operations name the server in X-Server-Id', async () => {
    const ok = await request(server).post('/regions/r1/collect').set('Authorization', `Bearer ${tokens.s2}`).set('X-Server-Id', 's2');
    assert.deepEqual([ok.status, ok.body], [200, { kind: 'server', serverId: 's2' }]);
    const anonymous = await request(server).post('/regions/r1/collect').set('Authorization', `Bearer ${tokens.s2}`);
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.body.detail), /X-Server-Id/);
    const lying = await request(server).post('/regions/r1/collect').set('Authorization', `Bearer ${tokens.s2}`).set('X-Server-Id', 's1');
    assert.equal(lying.status, 403);
  });

  test('"server or admin" operations accept either, and a wrong token is never ignored', async () => {
    const asServer = await request(server).post('/servers/s1/leave').set('Authorization', `Bearer ${tokens.s1}`);
    assert.deepEqual(asServer.body, { kind: 'server', serverId: 's1' });
    const asAdmin = await request(server).post('/servers/s1/leave').set('Authorization', `Bearer ${ADMIN}`);
    assert.deepEqual(asAdmin.body, { kind: 'admin', via: 'token' });
    assert.equal((await request(server).post('/servers/s1/leave')).status, 401);
    assert.equal((await request(server).post('/servers/s1/leave').set('Authorization', 'Bearer wrong')).status, 403);
  });

  test('in protected mode a loopback caller without a token counts as admin for "server or admin"', async () => {
    const open = makeApp(undefined, lookup);
    const res = await request(open).post('/servers/s1/leave');
    assert.deepEqual(res.body, { kind: 'admin', via: 'loopback' });
    assert.equal((await request(open).post('/servers/s1/leave').set('Authorization', 'Bearer wrong')).status, 403);
    assert.equal((await request(open).post('/servers/s1/heartbeat')).status, 401, 'server-only operations still need the token');
  });
});

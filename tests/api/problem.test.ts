import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import Koa from 'koa';
import { Router } from '@koa/router';
import request from 'supertest';
import { jsonBody } from '../../api/body.ts';
import { loadContract } from '../../api/openapi.ts';
import {
  HttpProblem, conflict, fromRejection, notFound, problemMiddleware, rejectionStatus, snakeCaseKeys, tooManyRequests,
  validationFailed,
} from '../../api/problem.ts';
import { reject } from '../../mesh/base/types.ts';

const contract = loadContract();

/** A tiny app: the problem middleware, JSON bodies, and routes that fail in every way. */
function makeApp() {
  const logged: unknown[] = [];
  const app = new Koa();
  const router = new Router();
  router.post('/echo', (ctx) => { ctx.body = { got: (ctx.request as { body?: unknown }).body }; });
  router.post('/big', (ctx) => { ctx.body = { ok: true }; });
  router.get('/boom', () => { throw new Error('password=hunter2 at db.internal:5432'); });
  router.get('/busy', () => { throw tooManyRequests('Buffer full.', 1500, 'buffer-full'); });
  router.get('/invalid', () => { throw validationFailed([{ path: 'body/x', message: 'is required' }]); });
  router.get('/thrown-404', (ctx) => ctx.throw(404, 'No such thing here.'));
  router.get('/leaky', (ctx) => { ctx.set('Location', '/secret'); throw notFound('region', 'r9'); });
  router.get('/healthy', () => { throw conflict('Send to the primary.', { epoch: 3, primary: { server_id: 's1', address: 'a:1' } }, 'region-healthy'); });
  router.get('/rejected/:code', (ctx) => {
    throw fromRejection(reject(ctx.params.code ?? '', 'Rejected by the core.', { retryAfterMs: 2500, data: { currentEpoch: 4 } }));
  });
  app.use(problemMiddleware({ log: (error) => logged.push(error) }));
  app.use(jsonBody({ limitBytes: (ctx) => (ctx.path === '/big' ? 64 * 1024 : 16 * 1024) }));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return { server: app.callback(), logged };
}

/** Every problem answer is problem+json, validates as a Problem, and names the request path. */
function assertProblem(res: request.Response, status: number, path: string): Record<string, unknown> {
  assert.equal(res.status, status);
  assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  assert.equal(body.status, status);
  assert.equal(body.instance, path);
  assert.ok(contract.validateSchema('Problem', body).ok, JSON.stringify(body));
  return body;
}

describe('problemMiddleware with JSON bodies', () => {
  test('a valid body is parsed', async () => {
    const { server } = makeApp();
    const res = await request(server).post('/echo').send({ a: [1, 'two'] });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { got: { a: [1, 'two'] } });
  });

  test('malformed JSON is a 400 that says what is wrong', async () => {
    const { server } = makeApp();
    const res = await request(server).post('/echo').set('Content-Type', 'application/json').send('{"a": 1,');
    const body = assertProblem(res, 400, '/echo');
    assert.equal(body.type, 'https://mesh-coordinator.dev/problems/malformed-json');
    assert.match(String(body.detail), /^The body is not valid JSON: /);
  });

  test('a scalar JSON body is a 400', async () => {
    const { server } = makeApp();
    const res = await request(server).post('/echo').set('Content-Type', 'application/json').send('"hello"');
    assert.equal(assertProblem(res, 400, '/echo').detail, 'The body must be a JSON object or array.');
  });

  test('prototype poisoning is refused as malformed', async () => {
    const { server } = makeApp();
    const res = await request(server).post('/echo').set('Content-Type', 'application/json').send('{"__proto__": {"admin": true}}');
    assertProblem(res, 400, '/echo');
  });

  test('a body over 16 KiB is a 413, a route may raise its limit', async () => {
    const { server } = makeApp();
    const big = { blob: 'x'.repeat(17 * 1024) };
    const res = await request(server).post('/echo').send(big);
    const body = assertProblem(res, 413, '/echo');
    assert.equal(body.detail, 'The request body exceeds the limit of 16384 bytes.');
    assert.equal((await request(server).post('/big').send(big)).status, 200);
    assertProblem(await request(server).post('/big').send({ blob: 'x'.repeat(65 * 1024) }), 413, '/big');
  });

  test('a body that is not JSON is a 415, with or without a content type', async () => {
    const { server } = makeApp();
    const text = await request(server).post('/echo').set('Content-Type', 'text/plain').send('hello');
    assert.match(String(assertProblem(text, 415, '/echo').detail), /got text\/plain/);
    const form = await request(server).post('/echo').type('form').send({ a: '1' });
    assertProblem(form, 415, '/echo');
  });

  test('an empty POST parses as an empty object', async () => {
    const { server } = makeApp();
    const res = await request(server).post('/echo');
    assert.deepEqual(res.body, { got: {} });
  });
});

describe('problemMiddleware with thrown errors', () => {
  test('an unexpected error is a 500 that leaks nothing and is logged once', async () => {
    const { server, logged } = makeApp();
    const res = await request(server).get('/boom');
    const body = assertProblem(res, 500, '/boom');
    assert.equal(body.type, 'about:blank');
    assert.doesNotMatch(res.text, /hunter2|db\.internal|\.ts:\d|\bat \//);
    assert.deepEqual(Object.keys(body).sort(), ['detail', 'instance', 'status', 'title', 'type']);
    assert.equal(logged.length, 1);
    assert.match(String((logged[0] as Error).message), /hunter2/);
  });

  test('a 429 carries Retry-After in whole seconds, rounded up, and retry_after_ms', async () => {
    const { server } = makeApp();
    const res = await request(server).get('/busy');
    const body = assertProblem(res, 429, '/busy');
    assert.equal(res.headers['retry-after'], '2');
    assert.equal(body.retry_after_ms, 1500);
    assert.equal(body.type, 'https://mesh-coordinator.dev/problems/buffer-full');
  });

  test('validation failures list each field', async () => {
    const { server } = makeApp();
    const body = assertProblem(await request(server).get('/invalid'), 400, '/invalid');
    assert.deepEqual(body.errors, [{ path: 'body/x', message: 'is required' }]);
  });

  test('ctx.throw with a 4xx keeps its message', async () => {
    const { server } = makeApp();
    assert.equal(assertProblem(await request(server).get('/thrown-404'), 404, '/thrown-404').detail, 'No such thing here.');
  });

  test('headers set before the error do not leak into the problem', async () => {
    const { server } = makeApp();
    const res = await request(server).get('/leaky');
    assertProblem(res, 404, '/leaky');
    assert.equal(res.headers.location, undefined);
  });

  test('conflicts carry their facts as extension members', async () => {
    const { server } = makeApp();
    const body = assertProblem(await request(server).get('/healthy'), 409, '/healthy');
    assert.equal(body.epoch, 3);
    assert.deepEqual(body.primary, { server_id: 's1', address: 'a:1' });
  });

  test('unknown paths and methods fall through to 404 and 405 problems', async () => {
    const { server } = makeApp();
    const missing = assertProblem(await request(server).get('/nowhere'), 404, '/nowhere');
    assert.equal(missing.detail, 'No operation GET /nowhere.');
    const wrong = await request(server).delete('/echo');
    assertProblem(wrong, 405, '/echo');
    assert.equal(wrong.headers.allow, 'POST');
  });
});

describe('fromRejection', () => {
  test('maps codes by table, then by shape, then to 409', () => {
    assert.equal(rejectionStatus('buffer_full'), 429);
    assert.equal(rejectionStatus('region_healthy'), 409);
    assert.equal(rejectionStatus('unknown_region'), 404);
    assert.equal(rejectionStatus('no_target'), 404);
    assert.equal(rejectionStatus('snapshot_not_found'), 404);
    assert.equal(rejectionStatus('invalid_target'), 400);
    assert.equal(rejectionStatus('snapshot_too_large'), 413);
    assert.equal(rejectionStatus('never_heard_of_it'), 409);
    assert.equal(rejectionStatus('never_heard_of_it', { never_heard_of_it: 422 }), 422);
  });

  test('over HTTP: status, slug, snake_case data, Retry-After on 429', async () => {
    const { server } = makeApp();
    const full = await request(server).get('/rejected/buffer_full');
    const body = assertProblem(full, 429, '/rejected/buffer_full');
    assert.equal(full.headers['retry-after'], '3');
    assert.equal(body.retry_after_ms, 2500);
    assert.equal(body.current_epoch, 4);
    assert.equal(body.type, 'https://mesh-coordinator.dev/problems/buffer-full');
    assertProblem(await request(server).get('/rejected/unknown_region'), 404, '/rejected/unknown_region');
    assertProblem(await request(server).get('/rejected/stale_epoch'), 409, '/rejected/stale_epoch');
  });

  test('a rejection about a healthy region becomes the documented 409', () => {
    const rejection = reject('region_healthy', 'Send to the primary.', { data: { epoch: 2, primary: { serverId: 's1', address: 'a:1' } } });
    const document = fromRejection(rejection).toDocument('/mesh/regions/r1/actions');
    assert.ok(contract.validateResponse('submitAction', 409, document).ok, JSON.stringify(document));
  });
});

describe('helpers', () => {
  test('snakeCaseKeys converts deeply and turns AtMs into _at', () => {
    assert.deepEqual(snakeCaseKeys({ lastHeartbeatAtMs: 1, recoveryMs: 2, list: [{ serverId: 'a' }], p50: 3 }),
      { last_heartbeat_at: 1, recovery_ms: 2, list: [{ server_id: 'a' }], p50: 3 });
  });

  test('extension members cannot override the standard ones', () => {
    const problem = new HttpProblem({ status: 409, detail: 'd', slug: 's', extra: { status: 200, title: 'x', epoch: 1 } });
    assert.deepEqual(problem.toDocument('/p'),
      { epoch: 1, type: 'https://mesh-coordinator.dev/problems/s', title: 'Conflict', status: 409, detail: 'd', instance: '/p' });
  });
});

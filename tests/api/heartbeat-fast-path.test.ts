/**
 * The heartbeat fast path (api/heartbeat-fast-path.ts) behind `app.callback()`: every request is
 * sent both to `app.callback()` and to Koa's own callback over the same app
 * (`Koa.prototype.callback`, the pipeline without the fast path), and the answers must be the same:
 * status, body bytes and the headers that matter. Whether the fast path answered is observed from
 * outside: a spy middleware put first in the Koa stack sees every request Koa handles.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import Koa from 'koa';
import request from 'supertest';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { testApp, type TestApp } from './harness.ts';
import { beat, handler, register, type Registered } from './fixtures.ts';
import { onlyServerIdParameter } from '../../api/heartbeat-fast-path.ts';
import { loadContract } from '../../api/openapi.ts';

const A = { address: '10.0.0.1:7777', zone: 'zone-a' };
const COMPARED_HEADERS = ['content-type', 'content-length', 'retry-after', 'www-authenticate', 'allow', 'location'] as const;

interface Setup {
  readonly t: TestApp;
  readonly server: Registered;
  /** Requests Koa's middleware saw. */
  readonly koaSaw: () => number;
  readonly fast: ReturnType<TestApp['app']['callback']>;
  readonly koaOnly: ReturnType<TestApp['app']['callback']>;
}

async function setup(): Promise<Setup> {
  const t = await testApp();
  let seen = 0;
  // First in the stack, before the problem middleware: counts every request Koa handles.
  t.app.middleware.unshift(async (_ctx, next) => { seen += 1; await next(); });
  const server = await register(t, A);
  return {
    t, server, koaSaw: () => seen,
    fast: handler(t),
    koaOnly: Koa.prototype.callback.call(t.app),
  };
}

interface Raw {
  path?: string;
  method?: 'post' | 'put';
  headers?: Record<string, string>;
  body?: string | Buffer;
  token?: string | null;
}

function send(s: Setup, which: 'fast' | 'koaOnly', raw: Raw) {
  const path = raw.path ?? `/mesh/servers/${s.server.id}/heartbeat`;
  let req = request(s[which])[raw.method ?? 'post'](path);
  const token = raw.token === undefined ? s.server.token : raw.token;
  if (token !== null) req = req.set('Authorization', `Bearer ${token}`);
  const headers = { 'Content-Type': 'application/json', ...raw.headers };
  for (const [name, value] of Object.entries(headers)) req = req.set(name, value);
  return req.send(raw.body ?? JSON.stringify(beat())).buffer(true).parse((res, done) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => done(null, Buffer.concat(chunks).toString('utf8')));
  });
}

/** Sends `raw` through both pipelines and asserts identical answers; returns the answer and whether Koa saw it. */
async function same(s: Setup, raw: Raw, label: string): Promise<{ status: number; text: string; viaKoa: boolean }> {
  const before = s.koaSaw();
  const fast = await send(s, 'fast', raw);
  const viaKoa = s.koaSaw() > before;
  const koa = await send(s, 'koaOnly', raw);
  assert.equal(fast.status, koa.status, `${label}: status`);
  assert.equal(fast.body, koa.body, `${label}: body`);
  for (const name of COMPARED_HEADERS) assert.equal(fast.headers[name], koa.headers[name], `${label}: ${name}`);
  return { status: fast.status, text: fast.body as string, viaKoa };
}

describe('heartbeat fast path', () => {
  test('a valid heartbeat is answered by the fast path, exactly as the Koa route answers it', async () => {
    const s = await setup();
    for (let seq = 1; seq <= 3; seq++) {
      const r = await same(s, { body: JSON.stringify(beat({ seq, players: 7 })) }, `valid #${seq}`);
      assert.equal(r.status, 200);
      assert.equal(r.viaKoa, false, 'the fast path answered');
      assert.equal(JSON.parse(r.text).server_id, s.server.id);
    }
    // The token and the server id are now remembered: a wrong token is still left to Koa (403).
    const other = await register(s.t, { address: '10.0.0.2:7777', zone: 'zone-b' });
    for (const [label, token] of [['wrong token', `${s.server.token}x`], ["another server's token", other.token]] as const) {
      const r = await same(s, { token, body: JSON.stringify(beat({ seq: 4 })) }, `${label} after valid ones`);
      assert.equal(r.status, 403, `${label}: ${r.text}`);
      assert.equal(r.viaKoa, true, `${label}: left to Koa`);
    }
    // With a charset and a byte-order mark, as the body parser accepts them.
    const bom = await same(s, { headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: `\uFEFF${JSON.stringify(beat())}` }, 'bom');
    assert.equal(bom.status, 200);
    assert.equal(bom.viaKoa, false);
    assert.deepEqual(s.t.errors, []);
  });

  test('heartbeats from many servers at once each get their own reply (answers are written in batches)', async () => {
    const t = await testApp();
    const servers: Registered[] = [];
    for (let i = 0; i < 12; i++) servers.push(await register(t, { address: `10.0.1.${i}:7777`, zone: `zone-${i % 3}` }));
    const listener = createServer(handler(t));
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const port = (listener.address() as AddressInfo).port;
    try {
      const answers = await Promise.all(servers.map((server, i) => fetch(`http://127.0.0.1:${port}/mesh/servers/${server.id}/heartbeat`, {
        method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` },
        body: JSON.stringify(beat({ seq: 1, players: i })),
      }).then(async (res) => ({ status: res.status, body: await res.json() as { server_id: string } }))));
      answers.forEach((a, i) => {
        assert.equal(a.status, 200);
        assert.equal(a.body.server_id, servers[i]!.id);
        assert.equal(t.host.coordinator.server(servers[i]!.id as never)?.players, i, 'applied');
      });
      assert.deepEqual(t.errors, []);
    } finally {
      listener.close();
    }
  });

  test('bodies read by the fast path that are not valid are the same 400 problems', async () => {
    const s = await setup();
    const cases: [string, string][] = [
      ['malformed JSON', '{"incarnation": '],
      ['trailing garbage', `${JSON.stringify(beat())}x`],
      ['a JSON string', '"hello"'],
      ['a JSON number', '42'],
      ['whitespace only', '   '],
      ['an array', '[1,2]'],
      ['an empty object', '{}'],
      ['schema failure', JSON.stringify(beat({ players: -1 }))],
      ['extra property', JSON.stringify(beat({ colour: 'red' }))],
      ['prototype poisoning', '{"incarnation":"b","players":0,"regions":[],"__proto__":{"x":1}}'],
      ['prototype poisoning, escaped', '{"incarnation":"b","players":0,"regions":[],"\\u005f_proto__":{"x":1}}'],
      ['prototype poisoning, escaped letters', '{"incarnation":"b","players":0,"regions":[],"__\\u0070roto__":{"x":1}}'],
    ];
    for (const [label, body] of cases) {
      const r = await same(s, { body }, label);
      assert.equal(r.status, 400, `${label}: ${r.text}`);
      assert.equal(r.viaKoa, false, `${label}: answered by the fast path`);
      assert.match(JSON.parse(r.text).type, /problems\/(malformed-json|validation-failed)$/);
    }
    assert.equal(s.t.host.coordinator.server(s.server.id as never)?.lastHeartbeatAtMs, null, 'no rejected heartbeat was applied');
  });

  test('unauthenticated, wrong-token, unknown-server, oversized and non-JSON requests are left to Koa, unchanged', async () => {
    const s = await setup();
    const other = await register(s.t, { address: '10.0.0.2:7777', zone: 'zone-b' });
    const cases: [string, Raw, number][] = [
      ['no token', { token: null }, 401],
      ['not a bearer header', { token: null, headers: { Authorization: 'Basic abc' } }, 401],
      ['wrong token', { token: 'not-the-token' }, 403],
      ["another server's token", { token: other.token }, 403],
      ['unknown server', { path: '/mesh/servers/srv-nobody/heartbeat' }, 404],
      ['oversized', { body: JSON.stringify(beat({ incarnation: 'x'.repeat(1024 * 1024) })) }, 413],
      ['text/plain', { headers: { 'Content-Type': 'text/plain' } }, 415],
      ['empty body', { body: '' }, 400],
      ['a query string', { path: `/mesh/servers/${s.server.id}/heartbeat?x=1` }, 200],
      ['a trailing slash', { path: `/mesh/servers/${s.server.id}/heartbeat/` }, 200],
      ['PUT', { method: 'put' }, 405],
    ];
    for (const [label, raw, status] of cases) {
      const r = await same(s, raw, label);
      assert.equal(r.status, status, `${label}: ${r.text}`);
      assert.equal(r.viaKoa, true, `${label}: left to Koa`);
    }
  });

  test('core rejections are the same problems: 503 with Retry-After for a dropped heartbeat, 409 after leaving', async () => {
    const s = await setup();
    const admin = request(s.fast);
    const fault = await admin.post('/mesh/simulate_failure').send({ server_id: s.server.id, mode: 'partition', duration_ms: 5000 });
    assert.equal(fault.status, 202);
    const dropped = await same(s, {}, 'dropped');
    assert.equal(dropped.status, 503);
    assert.equal(dropped.viaKoa, false);
    assert.equal(JSON.parse(dropped.text).type, 'https://mesh-coordinator.dev/problems/heartbeat-dropped');

    const s2 = await setup();
    const left = await request(s2.fast).post(`/mesh/servers/${s2.server.id}/leave`).set('Authorization', `Bearer ${s2.server.token}`);
    assert.equal(left.status, 202);
    await request(s2.fast).post('/mesh/test/advance_time').send({ ms: 200 });
    const r = await same(s2, {}, 'left');
    assert.equal(r.status, 409);
    assert.equal(r.viaKoa, false);
    assert.equal(JSON.parse(r.text).type, 'https://mesh-coordinator.dev/problems/server-left');
  });
});

describe('onlyServerIdParameter (when the fast path may remember checked server ids)', () => {
  const path = '/mesh/servers/{server_id}/heartbeat';
  test('holds for the contract as written', () => {
    assert.equal(onlyServerIdParameter(loadContract().document, path), true);
  });

  test('does not hold when the operation has any other parameter', () => {
    const { document } = loadContract();
    const withExtra = (where: 'path' | 'post', parameter: object) => {
      const copy = structuredClone(document);
      const item = copy.paths[path] as { parameters?: object[]; post: { parameters?: object[] } };
      if (where === 'path') item.parameters = [...(item.parameters ?? []), parameter];
      else item.post.parameters = [...(item.post.parameters ?? []), parameter];
      return copy;
    };
    assert.equal(onlyServerIdParameter(withExtra('post', { in: 'header', name: 'X-Trace', schema: { type: 'string' } }), path), false);
    assert.equal(onlyServerIdParameter(withExtra('path', { in: 'query', name: 'v', schema: { type: 'string' } }), path), false);
    const replaced = structuredClone(document);
    (replaced.paths[path] as { parameters: object[] }).parameters = [{ in: 'query', name: 'server_id', schema: { type: 'string' } }];
    assert.equal(onlyServerIdParameter(replaced, path), false, 'server_id, but not in the path');
  });
});

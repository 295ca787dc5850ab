/**
 * Hostile clients and hostile inputs against every operation (issue 14): depth bombs, sizes at and
 * above each limit, every content coding and media type, cross-origin and foreign-Host requests,
 * bad bytes and ids, aborted and slow bodies. Each refusal is a problem document that changes
 * nothing, and after each group the service still accepts and persists a normal action (202) and
 * answers `/readyz`.
 */
import { after, test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import type { Response } from 'supertest';
import { contract, expectResponse } from './harness.ts';
import { MeshFixture, type FixtureOptions } from './mesh-fixture.ts';

const REGION = 'castle';
const ACTIONS = `/mesh/regions/${REGION}/actions`;

/** Regions `castle` and `keep` on s1-s4, `castle`'s primary failed and its promotion not yet acknowledged: actions are buffered. */
async function failingOver(options: FixtureOptions = {}) {
  const f = await MeshFixture.create(options);
  f.register(['s1', 's2', 's3', 's4']);
  expectResponse('createRegion', await f.http.post('/mesh/regions').send({ region_id: REGION, players: 2 }), 201);
  expectResponse('createRegion', await f.http.post('/mesh/regions').send({ region_id: 'keep', players: 2 }), 201);
  f.adopt(REGION);
  f.adopt('keep');
  await f.run(3000);
  const roles = await f.failPrimary(REGION);
  return { f, ...roles };
}

let checkSeq = 0;
/** The service still takes a normal action durably (202, on disk) and says it is ready. */
async function stillServing(f: MeshFixture): Promise<void> {
  const res = await f.http.post(ACTIONS).send({ player_id: 'p-check', seq: ++checkSeq, payload: { kind: 'move' } });
  expectResponse('submitAction', res, 202);
  assert.ok(f.allDurable(), 'the 202 came after the action was on disk');
  expectResponse('getReadiness', await f.http.get('/readyz'), 200);
  assert.deepEqual(f.t.errors, [], 'no request ended in an unexpected (500) error');
}

/** One operation, callable with a valid request: its method, path, credentials and body. */
interface Op { id: string; method: string; path: string; headers: Record<string, string>; body?: unknown }

/** Every operation of the contract, with a request that is valid apart from what a case breaks. */
function operations(f: MeshFixture, promoted: string): Op[] {
  const server = f.as(promoted);
  const ops: Op[] = [
    { id: 'getHealth', method: 'GET', path: '/healthz', headers: {} },
    { id: 'getReadiness', method: 'GET', path: '/readyz', headers: {} },
    { id: 'getOpenApiDocument', method: 'GET', path: '/openapi.yaml', headers: {} },
    { id: 'getMeshStatus', method: 'GET', path: '/mesh/status', headers: {} },
    { id: 'setupTestMesh', method: 'POST', path: '/mesh/setup_test', headers: {}, body: { regions: 1 } },
    { id: 'resetTestMesh', method: 'POST', path: '/mesh/reset', headers: {} },
    { id: 'simulateFailure', method: 'POST', path: '/mesh/simulate_failure', headers: {}, body: { server_id: 's4', mode: 'crash' } },
    { id: 'getFailoverMetrics', method: 'GET', path: '/mesh/failover_metrics', headers: {} },
    { id: 'getRegionReplication', method: 'GET', path: `/mesh/replication/${REGION}`, headers: {} },
    { id: 'advanceTestTime', method: 'POST', path: '/mesh/test/advance_time', headers: {}, body: { ms: 1 } },
    { id: 'registerServer', method: 'POST', path: '/mesh/servers', headers: {}, body: { address: '10.0.0.9:7777', zone: 'z' } },
    { id: 'listServers', method: 'GET', path: '/mesh/servers', headers: {} },
    { id: 'getServer', method: 'GET', path: '/mesh/servers/s1', headers: {} },
    { id: 'sendHeartbeat', method: 'POST', path: `/mesh/servers/${promoted}/heartbeat`, headers: { Authorization: server.Authorization! }, body: { incarnation: 'b', players: 0, regions: [], peers: [] } },
    { id: 'openSession', method: 'GET', path: `/mesh/servers/${promoted}/session`, headers: { Authorization: server.Authorization! } },
    { id: 'leaveServer', method: 'POST', path: '/mesh/servers/s4/leave', headers: {} },
    { id: 'createRegion', method: 'POST', path: '/mesh/regions', headers: {}, body: { region_id: 'fresh' } },
    { id: 'listRegions', method: 'GET', path: '/mesh/regions', headers: {} },
    { id: 'updateRegion', method: 'PATCH', path: `/mesh/regions/${REGION}`, headers: {}, body: { players: 3 } },
    { id: 'getRegionRoute', method: 'GET', path: `/mesh/regions/${REGION}/route`, headers: {} },
    { id: 'submitAction', method: 'POST', path: ACTIONS, headers: {}, body: { player_id: 'p', seq: 1, payload: {} } },
    { id: 'collectActions', method: 'POST', path: `${ACTIONS}/collect`, headers: server, body: {} },
    { id: 'acknowledgeActions', method: 'POST', path: `${ACTIONS}/ack`, headers: server, body: { acks: [{ player_id: 'p', seq: 1 }] } },
    { id: 'putPlayerSnapshot', method: 'PUT', path: `/mesh/regions/${REGION}/players/p/snapshot`, headers: server, body: { state: {} } },
    { id: 'getPlayerSnapshot', method: 'GET', path: `/mesh/regions/${REGION}/players/p/snapshot`, headers: {} },
    { id: 'listAlerts', method: 'GET', path: '/mesh/alerts', headers: {} },
    { id: 'acknowledgeAlert', method: 'POST', path: '/mesh/alerts/alert-1/ack', headers: {} },
    { id: 'streamEvents', method: 'GET', path: '/mesh/events', headers: {} },
    { id: 'getMetrics', method: 'GET', path: '/metrics', headers: {} },
    { id: 'getDashboard', method: 'GET', path: '/', headers: {} },
    { id: 'getDashboardAsset', method: 'GET', path: '/dashboard/app.js', headers: {} },
  ];
  assert.deepEqual(ops.map((o) => o.id).sort(), [...contract().operations.keys()].sort(), 'every operation is covered');
  return ops;
}

const bodyOps = (ops: Op[]) => ops.filter((o) => o.method !== 'GET');
const limitOf = (op: Op) => contract().operations.get(op.id)!.maxBodyBytes;

/** Real listeners of the fixtures (supertest cannot send raw bytes), closed after the file. */
const listeners = new Map<MeshFixture, Promise<{ port: number; close: () => void }>>();
after(async () => { for (const l of listeners.values()) (await l).close(); });

/** Sends raw bytes with the operation's credentials; answers what supertest would (status, headers, text, body). */
async function send(f: MeshFixture, op: Op, raw: string | Buffer, headers: Record<string, string> = {}): Promise<Response> {
  if (!listeners.has(f)) listeners.set(f, listen(f));
  const { port } = await listeners.get(f)!;
  const body = typeof raw === 'string' ? Buffer.from(raw) : raw;
  const all = { ...op.headers, 'Content-Type': 'application/json', ...headers, 'Content-Length': String(body.length) };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: op.path, method: op.method, headers: all, agent: false });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => {
        const json = /json/.test(String(res.headers['content-type'])) && text !== '' ? JSON.parse(text) as unknown : {};
        resolve({ status: res.statusCode, headers: res.headers, text, body: json } as unknown as Response);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Asserts the refusal: status, a problem document, the documented schema, and nothing changed. */
async function refused(f: MeshFixture, op: Op, status: number, run: () => Promise<Response>, detail?: RegExp): Promise<void> {
  const res = await f.unchanged(run);
  assert.equal(res.status, status, `${op.id}: expected ${status}, got ${res.status} ${res.text.slice(0, 300)}`);
  expectResponse(op.id, res, status);
  if (detail) assert.match(res.body.detail, detail, op.id);
}

const bomb = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('depth and size limits on every JSON body', () => {
  test('the 8000-level payload of issue 14 is refused before anything is stored, and persistence carries on', async () => {
    const { f } = await failingOver();
    const raw = `{"player_id":"deep","seq":1,"payload":${bomb(8000)}}`;
    assert.ok(Buffer.byteLength(raw) < 16 * 1024, 'within the body limit, as in the issue');
    const op = operations(f, 's1').find((o) => o.id === 'submitAction')!;
    await refused(f, op, 400, () => send(f, op, raw), /more than 32 levels deep/);
    await stillServing(f);
    // The core can still persist other changes: a failover of another region completes on disk.
    const failed = await f.failPrimary('keep');
    assert.equal(f.replicas('keep').epoch, failed.epoch);
    assert.ok(f.allDurable(), 'the new epoch is on disk');
  });

  test('every operation with a body refuses a depth bomb (400) and takes 32 levels', async () => {
    const { f, promoted } = await failingOver();
    for (const op of bodyOps(operations(f, promoted))) {
      await refused(f, op, 400, () => send(f, op, `{"x":${bomb(8000)}}`), /32 levels/);
      // 32 levels exactly pass the depth check (and then meet the schema: an unknown field).
      const res = await f.unchanged(() => send(f, op, `{"x":${bomb(31)}}`));
      assert.doesNotMatch(String(res.body.detail), /levels deep/, op.id);
    }
    const at = await f.http.post(ACTIONS).set('Content-Type', 'application/json')
      .send(`{"player_id":"p-depth","seq":1,"payload":${bomb(31)}}`);
    expectResponse('submitAction', at, 202);
    const over = await f.unchanged(() => f.http.post(ACTIONS).set('Content-Type', 'application/json')
      .send(`{"player_id":"p-depth","seq":2,"payload":${bomb(32)}}`));
    expectResponse('submitAction', over, 400);
    await stillServing(f);
  });

  test('every operation takes a body of exactly its limit and refuses one byte more (413)', async () => {
    const { f, promoted } = await failingOver();
    for (const op of bodyOps(operations(f, promoted))) {
      const limit = limitOf(op);
      const padded = (size: number) => { const head = '{"pad":"'; return head + 'x'.repeat(size - head.length - 2) + '"}'; };
      const at = await f.unchanged(() => send(f, op, padded(limit)));
      assert.notEqual(at.status, 413, `${op.id}: a body of exactly ${limit} bytes is within the limit`);
      await refused(f, op, 413, () => send(f, op, padded(limit + 1)), new RegExp(`${limit} bytes`));
    }
    const head = '{"player_id":"p-size","seq":1,"payload":"';
    const exact = head + 'x'.repeat(16 * 1024 - head.length - 2) + '"}';
    expectResponse('submitAction', await f.http.post(ACTIONS).set('Content-Type', 'application/json').send(exact), 202);
    await stillServing(f);
  });
});

describe('media types and content codings', () => {
  test('every state-changing operation refuses a Content-Type other than JSON, with or without a body (415)', async () => {
    const { f, promoted } = await failingOver();
    for (const op of bodyOps(operations(f, promoted))) {
      for (const type of ['text/plain', 'application/merge-patch+json', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
        await refused(f, op, 415, () => send(f, op, JSON.stringify(op.body ?? {}), { 'Content-Type': type }));
      }
      await refused(f, op, 415, () => f.http[op.method.toLowerCase() as 'post'](op.path).set(op.headers).set('Content-Type', 'text/plain'));
    }
    await stillServing(f);
  });

  test('identity, gzip, deflate and br are decoded; corrupt data is a 400, other codings a 415, on every operation', async () => {
    const { f, promoted } = await failingOver();
    const action = (seq: number) => Buffer.from(JSON.stringify({ player_id: 'p-enc', seq, payload: { n: seq } }));
    const codings: [string, (b: Buffer) => Buffer][] = [
      ['identity', (b) => b], ['gzip', zlib.gzipSync], ['x-gzip', zlib.gzipSync], ['deflate', zlib.deflateSync], ['br', zlib.brotliCompressSync],
    ];
    let seq = 0;
    const ops = operations(f, promoted);
    const submit = ops.find((o) => o.id === 'submitAction')!;
    for (const [coding, encode] of codings) {
      expectResponse('submitAction', await send(f, submit, encode(action(++seq)), { 'Content-Encoding': coding }), 202);
    }
    for (const op of bodyOps(ops)) {
      const plain = Buffer.from(JSON.stringify(op.body ?? {}));
      for (const coding of ['gzip', 'deflate', 'br']) {
        await refused(f, op, 400, () => send(f, op, plain, { 'Content-Encoding': coding }), /does not decode/);
      }
      for (const coding of ['foo', 'gzip, gzip', 'compress']) {
        await refused(f, op, 415, () => send(f, op, plain, { 'Content-Encoding': coding }), /not supported/);
      }
      // A small bomb: 1 MiB of zeros gzipped to about 1 KiB is refused by its decoded size.
      const inflated = zlib.gzipSync(Buffer.alloc(limitOf(op) + 1, 0x20));
      await refused(f, op, 413, () => send(f, op, inflated, { 'Content-Encoding': 'gzip' }));
    }
    await stillServing(f);
  });
});

describe('bytes and ids', () => {
  test('invalid UTF-8, lone surrogates, and . or .. as ids are refused (400)', async () => {
    const { f, promoted } = await failingOver();
    const ops = operations(f, promoted);
    const submit = ops.find((o) => o.id === 'submitAction')!;
    const invalid = Buffer.concat([Buffer.from('{"player_id":"p'), Buffer.from([0xff, 0xfe]), Buffer.from('","seq":1,"payload":{}}')]);
    await refused(f, submit, 400, () => send(f, submit, invalid), /UTF-8/);
    await refused(f, submit, 400, () => send(f, submit, '{"player_id":"p\\ud800","seq":1,"payload":{}}'), /lone UTF-16 surrogate/);
    await refused(f, submit, 400, () => send(f, submit, '{"player_id":"p","seq":1,"payload":{"\\udc00":1}}'), /surrogate/);
    // A proper pair is a character like any other.
    expectResponse('submitAction', await send(f, submit, '{"player_id":"p-\\ud83d\\ude00","seq":1,"payload":{}}'), 202);
    const create = ops.find((o) => o.id === 'createRegion')!;
    for (const id of ['.', '..']) {
      await refused(f, create, 400, () => send(f, create, JSON.stringify({ region_id: id })));
      const res = await f.unchanged(() => f.http.get(`/mesh/replication/${id === '.' ? '%2E' : '%2E%2E'}`));
      expectResponse('getRegionReplication', res, 400);
    }
    await stillServing(f);
  });
});

describe('browsers: Host, Origin and CORS', () => {
  test('every operation refuses a foreign Host (421); loopback names are accepted', async () => {
    const { f, promoted } = await failingOver();
    for (const op of operations(f, promoted)) {
      for (const host of ['evil.example', 'evil.example:8080', '127.0.0.1.evil.example', '']) {
        await refused(f, op, 421, () => {
          const req = f.http[op.method.toLowerCase() as 'get'](op.path).set(op.headers).set('Host', host);
          return op.method === 'GET' ? req : req.send(op.body as object);
        }, /does not answer to Host/);
      }
    }
    for (const host of ['localhost:8080', '127.0.0.1', '127.0.0.5:80', '[::1]:8080', 'LOCALHOST.']) {
      expectResponse('getMeshStatus', await f.http.get('/mesh/status').set('Host', host), 200);
    }
    await stillServing(f);
  });

  test('a configured host is accepted; everything else still refused', async () => {
    const { f } = await failingOver({ http: { allowedHosts: ['mesh.example'] } });
    expectResponse('getMeshStatus', await f.http.get('/mesh/status').set('Host', 'mesh.example:8080'), 200);
    expectResponse('getMeshStatus', await f.http.get('/mesh/status').set('Host', 'other.example'), 421);
  });

  test('every state-changing operation refuses another origin (403), and every CORS preflight', async () => {
    const { f, promoted } = await failingOver();
    for (const op of bodyOps(operations(f, promoted))) {
      for (const origin of ['http://evil.example', 'null', 'http://127.0.0.1:9999']) {
        await refused(f, op, 403, () => send(f, op, JSON.stringify(op.body ?? {}), { Origin: origin }), /refused/);
      }
      const preflight = await f.unchanged(() => f.http.options(op.path).set({ Origin: 'http://evil.example', 'Access-Control-Request-Method': op.method }));
      assert.equal(preflight.status, 403, op.id);
      assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    }
    // The request: a browser's text/plain POST /mesh/reset from another origin.
    const reset = await f.unchanged(() => f.http.post('/mesh/reset').set({ Origin: 'http://evil.example', 'Content-Type': 'text/plain' }).send('x'));
    assert.equal(reset.status, 403);
    // The service's own origin may change state (a page it serves).
    const same = await f.http.post(ACTIONS).set({ Host: '127.0.0.1:8080', Origin: 'http://127.0.0.1:8080' }).send({ player_id: 'p-same', seq: 1, payload: {} });
    expectResponse('submitAction', same, 202);
    await stillServing(f);
  });

  test('an allowed origin gets CORS answers and may change state', async () => {
    const { f } = await failingOver({ http: { allowedOrigins: ['https://ops.example'] } });
    const preflight = await f.http.options(ACTIONS).set({ Origin: 'https://ops.example', 'Access-Control-Request-Method': 'POST' });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://ops.example');
    const res = await f.http.post(ACTIONS).set('Origin', 'https://ops.example').send({ player_id: 'p-cors', seq: 1, payload: {} });
    expectResponse('submitAction', res, 202);
    assert.equal(res.headers['access-control-allow-origin'], 'https://ops.example');
    const other = await f.http.post(ACTIONS).set('Origin', 'https://evil.example').send({ player_id: 'p-cors', seq: 2, payload: {} });
    expectResponse('submitAction', other, 403);
  });
});

/** The app on a real listener, for requests supertest cannot make (aborted, trickling). */
async function listen(f: MeshFixture) {
  const server = http.createServer(f.server).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { port, close: () => { server.close(); server.closeAllConnections(); } };
}

/** Sends headers and part of a body, then waits for an answer or `giveUpMs`. */
function partialRequest(port: number, method: string, path: string, headers: Record<string, string>, part: string, giveUpMs: number) {
  return new Promise<{ status: number | undefined; body: string; req: http.ClientRequest }>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false });
    const timer = setTimeout(() => resolve({ status: undefined, body: '', req }), giveUpMs);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode, body, req }); });
    });
    req.on('error', () => { clearTimeout(timer); resolve({ status: undefined, body: '', req }); });
    req.write(part);
  });
}

describe('aborted and slow bodies', () => {
  test('a body that trickles in is answered 408 after the body timeout, on every operation with a body', async () => {
    const { f, promoted } = await failingOver({ http: { bodyTimeoutMs: 300 } });
    const { port, close } = await listen(f);
    try {
      for (const op of bodyOps(operations(f, promoted))) {
        const started = Date.now();
        const res = await f.unchanged(() => partialRequest(port, op.method, op.path,
          { ...op.headers, 'Content-Type': 'application/json', 'Content-Length': '100' }, '{"a":', 5000));
        res.req.destroy();
        assert.equal(res.status, 408, `${op.id}: ${res.body}`);
        assert.equal(JSON.parse(res.body).type, 'https://mesh-coordinator.dev/problems/request-timeout');
        assert.ok(Date.now() - started < 3000, `${op.id} answered in ${Date.now() - started} ms`);
      }
      await stillServing(f);
    } finally {
      close();
    }
  });

  test('a client that aborts its body is logged at debug level, not as an error', async () => {
    const { f } = await failingOver();
    const { port, close } = await listen(f);
    try {
      await f.unchanged(() => abortMidBody(port, f));
      assert.ok(f.t.debug.some((line) => /client left mid-request/.test(line)), `debug lines: ${JSON.stringify(f.t.debug)}`);
      await stillServing(f);
    } finally {
      close();
    }
  });
});

/** Opens a request with half a body and destroys it, then waits (bounded) until the app has noticed. */
async function abortMidBody(port: number, f: MeshFixture): Promise<void> {
  const req = http.request({ host: '127.0.0.1', port, path: ACTIONS, method: 'POST', agent: false,
    headers: { 'Content-Type': 'application/json', 'Content-Length': '100' } });
  req.on('error', () => {});
  req.write('{"player_id":');
  await new Promise((r) => setTimeout(r, 50));
  req.destroy();
  for (let i = 0; i < 100 && !f.t.debug.some((line) => /client left/.test(line)); i++) await new Promise((r) => setTimeout(r, 10));
}

/**
 * Server sessions (`GET /mesh/servers/{id}/session`, api/session/) over a real listener on loopback:
 * the handshake's refusals as problem documents, heartbeats and replies, pushes of durable
 * decisions, one session per server, the bounded send queue, leave, shutdown, and the crash
 * evidence a closed session gives. Every frame the service sends is validated against asyncapi.yaml.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import request from 'supertest';
import WebSocket from 'ws';
import { createApp } from '../../api/app.ts';
import type { AppDeps } from '../../api/deps.ts';
import { contract, expectResponse, storedState, testApp, type TestApp } from './harness.ts';
import { beat, handler, register, type Registered } from './fixtures.ts';
import { checkSent, sessionContract } from './session-contract.ts';

interface Live {
  readonly t: TestApp;
  readonly app: ReturnType<typeof createApp>;
  readonly server: Server;
  readonly base: string;
}

const opened: Live[] = [];
after(() => { for (const live of opened) { live.app.closeStreams(); live.server.closeAllConnections(); live.server.close(); } });

async function live(options: Pick<AppDeps, 'sessionMaxQueuedBytes' | 'http'> = {}): Promise<Live> {
  const t = await testApp();
  const app = createApp({ host: t.host, adminToken: undefined, logError: (error) => t.errors.push(error), contract: contract(), ...options });
  const server = createServer(app.callback());
  server.on('upgrade', app.sessions.handleUpgrade);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const out = { t, app, server, base: `127.0.0.1:${(server.address() as AddressInfo).port}` };
  opened.push(out);
  return out;
}

/** A session client that checks every frame it receives against asyncapi.yaml. */
class Client {
  readonly frames: { type: string; body: any }[] = [];
  readonly socket: WebSocket;
  private waiters: (() => void)[] = [];

  constructor(l: Live, server: Registered, options: { protocols?: string[]; headers?: Record<string, string> } = {}) {
    this.socket = new WebSocket(`ws://${l.base}/mesh/servers/${server.id}/session`, options.protocols ?? [], {
      headers: options.headers ?? { Authorization: `Bearer ${server.token}` },
    });
    this.socket.on('message', async (data) => {
      this.frames.push(await checkSent(String(data)));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  async open(): Promise<this> {
    await once(this.socket, 'open');
    return this;
  }

  send(frame: unknown): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** The next frame of `type` after `from` (an index into `frames`), waiting at most 5 s. */
  async next(type: string, from = 0): Promise<{ type: string; body: any }> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const found = this.frames.slice(from).find((f) => f.type === type);
      if (found) return found;
      assert.ok(Date.now() < deadline, `no ${type} frame within 5 s; got ${JSON.stringify(this.frames.map((f) => f.type))}`);
      await new Promise<void>((resolve) => { this.waiters.push(resolve); setTimeout(resolve, 50); });
    }
  }

  async closed(): Promise<number> {
    if (this.socket.readyState === WebSocket.CLOSED) return -1;
    const [code] = await once(this.socket, 'close') as [number];
    return code;
  }
}

/** A raw handshake; resolves with the refusal (status, headers, parsed body). */
function handshake(l: Live, path: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingMessage['headers']; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`http://${l.base}${path}`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', () => reject(new Error('upgraded')));
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Three servers in three zones and one region: a is primary, b and c backups. */
async function region(l: Live): Promise<{ a: Registered; b: Registered; c: Registered }> {
  const [a, b, c] = [await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' }), await register(l.t, { address: '10.0.0.2:7777', zone: 'z2' }),
    await register(l.t, { address: '10.0.0.3:7777', zone: 'z3' })];
  expectResponse('createRegion', await request(handler(l.t)).post('/mesh/regions').send({ region_id: 'r1' }), 201);
  return { a: a!, b: b!, c: c! };
}

/** The heartbeat body of a server that holds what its last assignment gave it. */
function claims(assignment: any, peers: { server_id: string; silent_for_ms: number }[] = []): Record<string, unknown> {
  return beat({
    regions: assignment.regions.map((r: any) => ({ region_id: r.region_id, role: r.role, epoch: r.epoch, applied_seq: 10 })),
    peers,
  });
}

describe('session handshake', () => {
  test('refusals are problem documents of openSession, written before any upgrade', async () => {
    const l = await live();
    const a = await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' });
    const b = await register(l.t, { address: '10.0.0.2:7777', zone: 'z2' });
    const cases: [string, Record<string, string>, number, RegExp][] = [
      [`/mesh/servers/${a.id}/session`, {}, 401, /Authorization: Bearer/],
      [`/mesh/servers/${a.id}/session`, { Authorization: `Bearer ${b.token}` }, 403, /not valid for server/],
      ['/mesh/servers/nobody/session', { Authorization: `Bearer ${a.token}` }, 404, /nobody/],
      [`/mesh/servers/${a.id}/session`, { Authorization: `Bearer ${a.token}`, Origin: 'http://evil.example' }, 403, /origin/],
      [`/mesh/servers/${a.id}/session`, { Authorization: `Bearer ${a.token}`, Host: 'evil.example' }, 421, /MESH_ALLOWED_HOSTS/],
      [`/mesh/servers/${a.id}/session`, { Authorization: `Bearer ${a.token}`, 'Sec-WebSocket-Protocol': 'chat' }, 400, /mesh\.v1/],
      [`/mesh/servers/${a.id}/session`, { Authorization: `Bearer ${a.token}`, 'Sec-WebSocket-Version': '7' }, 426, /version/],
      [`/mesh/servers/${a.id}/session`, { Authorization: `Bearer ${a.token}`, 'Sec-WebSocket-Key': 'short' }, 400, /Sec-WebSocket-Key/],
    ];
    for (const [path, headers, status, detail] of cases) {
      const res = await handshake(l, path, headers);
      assert.equal(res.status, status, `${path} ${JSON.stringify(headers)}: ${JSON.stringify(res.body)}`);
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      assert.match(res.body.detail, detail);
      const checked = contract().validateResponse('openSession', status, res.body);
      assert.ok(checked.ok, JSON.stringify(checked));
    }
    assert.match(String((await handshake(l, `/mesh/servers/${a.id}/session`, {})).headers['www-authenticate']), /Bearer/);
    const elsewhere = await handshake(l, '/mesh/status', { Authorization: `Bearer ${a.token}` });
    assert.equal(elsewhere.status, 404);
    assert.equal(l.app.sessions.hub.size, 0);
  });

  test('a plain GET reaches Koa, authenticated, and is told to upgrade (426)', async () => {
    const l = await live();
    const a = await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' });
    const res = await request(handler(l.t)).get(`/mesh/servers/${a.id}/session`).set('Authorization', `Bearer ${a.token}`);
    expectResponse('openSession', res, 426);
    assert.equal(res.headers.upgrade, 'websocket');
    expectResponse('openSession', await request(handler(l.t)).get(`/mesh/servers/${a.id}/session`), 401);
  });

  test('a page of the same origin or of an allowed origin may open a session (the rules of the HTTP routes)', async () => {
    const l = await live({ http: { allowedOrigins: ['https://game.example'] } });
    const a = await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' });
    for (const origin of [`http://${l.base}`, 'https://game.example']) {
      const client = await new Client(l, a, { headers: { Authorization: `Bearer ${a.token}`, Origin: origin } }).open();
      client.send({ type: 'heartbeat', body: beat() });
      assert.equal((await client.next('heartbeat_reply')).body.server_id, a.id, origin);
      client.socket.close();
      await client.closed();
    }
  });

  test('the token may come in a mesh.bearer subprotocol; mesh.v1 is selected, the token never echoed', async () => {
    const l = await live();
    const a = await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' });
    const client = await new Client(l, a, { protocols: ['mesh.v1', `mesh.bearer.${a.token}`], headers: {} }).open();
    assert.equal(client.socket.protocol, 'mesh.v1');
    client.send({ type: 'heartbeat', body: beat() });
    assert.equal((await client.next('heartbeat_reply')).body.server_id, a.id);
    client.socket.close();
  });

  test('an open session keeps nothing of its handshake request alive (a kilobyte per session otherwise)', async () => {
    const l = await live();
    const a = await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' });
    let handshakeRequest: WeakRef<IncomingMessage> | undefined;
    l.server.prependListener('upgrade', (req: IncomingMessage) => { handshakeRequest = new WeakRef(req); });
    const client = await new Client(l, a).open();
    client.send({ type: 'heartbeat', body: beat() });
    await client.next('heartbeat_reply');
    await new Promise((resolve) => setImmediate(resolve));
    fullGc();
    assert.ok(handshakeRequest !== undefined, 'the upgrade was seen');
    assert.equal(handshakeRequest.deref(), undefined, 'the handshake request is still reachable from the open session');
    client.socket.close();
    await client.closed();
  });
});

/** A full garbage collection, from within the test process (no --expose-gc on the command line). */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('session messages', () => {
  test('a heartbeat is answered like POST .../heartbeat; bad messages get a problem and the session stays open', async () => {
    const l = await live();
    const { a } = await region(l);
    const client = await new Client(l, a).open();
    client.send({ type: 'heartbeat', body: beat() });
    const reply = await client.next('heartbeat_reply');
    assert.deepEqual(reply.body.regions.map((r: any) => [r.region_id, r.role, r.epoch]), [['r1', 'primary', 1]]);
    const http = expectResponse('sendHeartbeat', await request(handler(l.t)).post(`/mesh/servers/${a.id}/heartbeat`).set('Authorization', `Bearer ${a.token}`).send(beat()), 200);
    assert.deepEqual({ ...reply.body, lease_ms: http.lease_ms }, http, 'the same body as the HTTP route');
    assert.equal(reply.body.lease_ms, l.t.host.coordinator.config.sessionLeaseMs, 'but the short session lease');
    assert.equal(http.lease_ms, l.t.host.coordinator.config.primaryLeaseMs);
    const bad: [unknown, RegExp][] = [
      [{ type: 'heartbeat', body: { players: 0, regions: [] } }, /incarnation/],
      [{ type: 'dance' }, /Unknown session message type/],
      [{ type: 'heartbeat', body: beat(), extra: 1 }, /Unknown field/],
      ['not json', /JSON object/],
      // The HTTP routes' body reader: depth, lone surrogates, __proto__ keys.
      [`{"type":"heartbeat","body":${'['.repeat(40)}${']'.repeat(40)}}`, /levels deep/],
      ['{"type":"heartbeat","body":{"incarnation":"\\ud800","players":0,"regions":[],"peers":[]}}', /surrogate/],
      ['{"type":"heartbeat","__proto__":{}}', /not valid JSON/],
    ];
    for (const [frame, detail] of bad) {
      const from = client.frames.length;
      client.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      const problem = await client.next('problem', from);
      assert.equal(problem.body.status, 400);
      assert.match(JSON.stringify(problem.body), detail);
    }
    const from = client.frames.length;
    client.socket.send(Buffer.from('{}'), { binary: true });
    assert.match((await client.next('problem', from)).body.detail, /text frames/);
    client.send({ type: 'heartbeat', body: beat() });
    await client.next('heartbeat_reply', from + 1);
    client.socket.close();
  });

  test('a crashed primary: its closed session makes it suspect, its peers confirm, the promotion is pushed once durable', async () => {
    const l = await live();
    const { a, b, c } = await region(l);
    const sessions = { a: await new Client(l, a).open(), b: await new Client(l, b).open(), c: await new Client(l, c).open() };
    const replies: Record<string, any> = {};
    for (const [name, client] of Object.entries(sessions)) {
      client.send({ type: 'heartbeat', body: beat() });
      replies[name] = (await client.next('heartbeat_reply')).body;
      client.send({ type: 'heartbeat', body: claims(replies[name]) });
      await client.next('heartbeat_reply', 1);
    }
    sessions.a.socket.terminate();
    for (let i = 0; i < 100 && l.t.host.coordinator.server(a.id as never)?.status !== 'suspect'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(l.t.host.coordinator.server(a.id as never)?.status, 'suspect', 'suspect at once, before any tick');
    assert.equal(l.app.sessions.hub.size, 2);
    await l.t.host.advance(200);
    // The peers' replication links broke when the process died, 200 ms ago (virtual time).
    for (const name of ['b', 'c'] as const) {
      const from = sessions[name].frames.length;
      sessions[name].send({ type: 'heartbeat', body: claims(replies[name], [{ server_id: a.id, silent_for_ms: 210 }]) });
      await sessions[name].next('heartbeat_reply', from);
    }
    const marks = { b: sessions.b.frames.length, c: sessions.c.frames.length };
    await l.t.host.advance(100);
    assert.equal(l.t.host.coordinator.server(a.id as never)?.status, 'failed');
    // a's last reply granted the session lease 300 ms ago: the promotion waits for it and the margin.
    assert.equal(l.t.host.coordinator.replication('r1' as never)?.primary, null, 'no promotion while the old lease may run');
    const { sessionLeaseMs, leaseDriftMarginMs, primaryLeaseMs } = l.t.host.coordinator.config;
    await l.t.host.advance(sessionLeaseMs + (sessionLeaseMs * leaseDriftMarginMs) / primaryLeaseMs - 300 + 100);
    const promoted = l.t.host.coordinator.replication('r1' as never)?.primary?.serverId;
    assert.ok(promoted === b.id || promoted === c.id);
    const winner = promoted === b.id ? 'b' : 'c';
    const push = await sessions[winner].next('assignment', marks[winner]);
    assert.deepEqual(push.body.regions.map((r: any) => [r.region_id, r.role, r.epoch]), [['r1', 'primary', 2]]);
    assert.equal(push.body.lease_ms, 0, 'a push grants no lease: the new primary takes its lease from a renewal');
    for (const client of Object.values(sessions)) client.socket.close();
  });

  test('renew is answered by a lease in order: the session lease to a primary, none to a backup; a bad renew gets a problem', async () => {
    const l = await live();
    const { a, b } = await region(l);
    const { sessionLeaseMs, sessionLeaseRenewalIntervalMs } = l.t.host.coordinator.config;
    const primary = await new Client(l, a).open();
    const backup = await new Client(l, b).open();
    for (const client of [primary, backup]) {
      client.send({ type: 'heartbeat', body: beat() });
      await client.next('heartbeat_reply');
    }
    for (const seq of [7, 8]) primary.send({ type: 'renew', body: { seq } });
    backup.send({ type: 'renew', body: { seq: 1 } });
    await primary.next('lease');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(primary.frames.filter((f) => f.type === 'lease').map((f) => f.body), [7, 8].map((seq) => ({ seq, lease_ms: sessionLeaseMs, renew_in_ms: sessionLeaseRenewalIntervalMs })));
    assert.deepEqual((await backup.next('lease')).body, { seq: 1, lease_ms: 0, renew_in_ms: sessionLeaseRenewalIntervalMs });
    for (const body of [{}, { seq: -1 }, { seq: 1.5 }, { seq: 1, extra: true }]) {
      const from = primary.frames.length;
      primary.send({ type: 'renew', body });
      assert.match((await primary.next('problem', from)).body.detail, /renew message/);
    }
    for (const client of [primary, backup]) client.socket.close();
  });

  test('a second session replaces the first (4000) and is no evidence against the server', async () => {
    const l = await live();
    const a = await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' });
    const first = await new Client(l, a).open();
    const closed = first.closed();
    const second = await new Client(l, a).open();
    assert.equal(await closed, 4000);
    second.send({ type: 'heartbeat', body: beat() });
    await second.next('heartbeat_reply');
    assert.equal(l.t.host.coordinator.server(a.id as never)?.status, 'alive');
    assert.equal(l.app.sessions.hub.size, 1);
    second.socket.close();
  });

  test('a server that stops reading is disconnected once its send queue passes the bound', async () => {
    const l = await live({ sessionMaxQueuedBytes: 64 * 1024 });
    const a = await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' });
    const client = await new Client(l, a).open();
    (client.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    // Each refused heartbeat is answered with a problem listing every bad field (hundreds of KB).
    const bad = { type: 'heartbeat', body: beat({ regions: Array.from({ length: 2000 }, () => ({ region_id: 'r', role: 'x', epoch: -1, applied_seq: -1 })) }) };
    for (let i = 0; i < 400 && l.app.sessions.hub.size > 0; i++) {
      client.send(bad);
      if (i % 4 === 3) await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(l.app.sessions.hub.size, 0, 'closed by the coordinator');
    assert.equal(l.t.host.coordinator.server(a.id as never)?.status, 'suspect', 'a lost session is evidence');
  });

  test('leave is answered once durable; closing afterwards is no evidence; shutdown closes sessions with 1001', async () => {
    const l = await live();
    const a = await register(l.t, { address: '10.0.0.1:7777', zone: 'z1' });
    const b = await register(l.t, { address: '10.0.0.2:7777', zone: 'z2' });
    const leaving = await new Client(l, a).open();
    leaving.send({ type: 'leave' });
    assert.deepEqual((await leaving.next('left')).body, { server_id: a.id, status: 'draining' });
    assert.ok((await storedState(l.t.store))?.servers.some((s) => s.id === a.id && s.status !== 'alive'), 'durable before left');
    leaving.socket.close();
    await leaving.closed();
    assert.notEqual(l.t.host.coordinator.server(a.id as never)?.status, 'suspect');
    const staying = await new Client(l, b).open();
    const code = staying.closed();
    l.app.closeStreams();
    assert.equal(await code, 1001);
    assert.equal(l.t.host.coordinator.server(b.id as never)?.status, 'alive');
  });
});

describe('asyncapi.yaml', () => {
  test('parses without errors and documents every message the service sends', async () => {
    const c = await sessionContract();
    assert.deepEqual(c.diagnostics.filter((d) => d.severity === 0), []);
    assert.deepEqual([...c.sent].sort(), ['assignment', 'heartbeat_reply', 'lease', 'left', 'problem']);
    assert.deepEqual([...c.validators.keys()].sort(), ['assignment', 'heartbeat', 'heartbeat_reply', 'lease', 'leave', 'left', 'problem', 'renew']);
    const reply = c.validators.get('heartbeat_reply')!;
    assert.notDeepEqual(reply({ type: 'heartbeat_reply', body: { server_id: 'x' } }), [], 'a body missing fields is refused');
  });
});

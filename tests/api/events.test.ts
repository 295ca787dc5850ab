import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { contract, expectResponse, testApp, type TestApp } from './harness.ts';
import { handler, register } from './fixtures.ts';
import { connect, until, type Frame } from './sse-client.ts';


/** The test app on a real listening socket, since an event stream never ends by itself. */
async function listen(t: TestApp) {
  const server = http.createServer(handler(t)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const stop = async () => {
    t.app.closeStreams();
    server.close();
    server.closeAllConnections();
    await once(server, 'close');
  };
  return { port, stop };
}

/** Checks one frame against the contract: id = <boot>.<seq>, event = type, data a MeshEvent. */
function checkFrame(frame: Frame): Record<string, any> {
  const data = JSON.parse(frame.data ?? '') as Record<string, any>;
  assert.match(frame.id ?? '', new RegExp(`^[0-9a-f]{12}\\.${data.seq}$`));
  assert.equal(data.type, frame.event);
  const checked = contract().validateSchema('MeshEvent', data);
  assert.ok(checked.ok, `${frame.event}: ${JSON.stringify(checked)} ${frame.data}`);
  return data;
}

describe('GET /mesh/events', () => {
  test('streams the core events as they happen, snake_case, validated against MeshEvent', async () => {
    const t = await testApp();
    const { port, stop } = await listen(t);
    try {
      const client = await connect(port);
      assert.equal(client.res.statusCode, 200);
      assert.match(String(client.res.headers['content-type']), /^text\/event-stream/);
      assert.equal(client.res.headers['cache-control'], 'no-cache, no-transform');
      const s = await register(t, { address: '10.0.0.1:7777', zone: 'a' });
      await request(handler(t)).post(`/mesh/servers/${s.id}/leave`);
      await until(() => client.events().length >= 1, 'the draining event');
      const data = checkFrame(client.events()[0] as Frame);
      assert.deepEqual({ type: data.type, server_id: data.server_id, from: data.from, to: data.to },
        { type: 'server_status_changed', server_id: s.id, from: 'alive', to: 'draining' });
      assert.equal(typeof data.at, 'number');
    } finally {
      await stop();
    }
  });

  test('a failover produces detection, promotion, completion and backup events, all in the contract', async () => {
    const t = await testApp();
    const { port, stop } = await listen(t);
    try {
      const client = await connect(port);
      await request(handler(t)).post('/mesh/setup_test').send({ regions: 3, spare_servers: 3, heartbeat_loss: 0 });
      await request(handler(t)).post('/mesh/test/advance_time').send({ ms: 2000 });
      await request(handler(t)).post('/mesh/simulate_failure').send({ region_id: 'region-1', role: 'primary' });
      await request(handler(t)).post('/mesh/test/advance_time').send({ ms: 8000 });
      await until(() => client.events().some((f) => f.event === 'backup_created'), 'the backup event');
      const types = new Set(client.events().map((f) => checkFrame(f).type));
      for (const type of ['server_failure_detected', 'failover_initiated', 'failover_completed', 'backup_created', 'region_phase_changed']) {
        assert.ok(types.has(type), `${type} in ${[...types].join(', ')}`);
      }
      const ids = client.events().map((f) => Number(f.id?.split('.')[1]));
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids increase');
    } finally {
      await stop();
    }
  });

  test('a reconnecting client gets what it missed after Last-Event-ID, then live events', async () => {
    const t = await testApp();
    const { port, stop } = await listen(t);
    try {
      for (const address of ['10.0.0.1:7777', '10.0.0.2:7777', '10.0.0.3:7777']) {
        const s = await register(t, { address, zone: 'a' });
        await request(handler(t)).post(`/mesh/servers/${s.id}/leave`);
      }
      // An id this run never issued (as after a restart): told so, then everything retained.
      const first = await connect(port, { 'Last-Event-ID': 'an0ther0boot.2' });
      await until(() => first.events().length === 3, 'the replay of three events');
      const notice = first.frames.find((f) => f.event === 'events_missed');
      assert.ok(notice, 'an events_missed notice');
      assert.ok(contract().validateSchema('EventsMissedNotice', JSON.parse(notice.data ?? '')).ok);
      const ids = first.events().map((f) => f.id);
      const resumed = await connect(port, { 'Last-Event-ID': String(ids[0]) });
      await until(() => resumed.events().length === 2, 'the replay after the first event');
      assert.deepEqual(resumed.events().map((f) => f.id), ids.slice(1));
      assert.equal(resumed.frames.some((f) => f.event === 'events_missed'), false, 'nothing missed: no notice');
      const fresh = await connect(port);
      const s = await register(t, { address: '10.0.0.4:7777', zone: 'a' });
      await request(handler(t)).post(`/mesh/servers/${s.id}/leave`);
      await until(() => fresh.events().length === 1 && resumed.events().length === 3, 'the live event');
      assert.equal(fresh.events()[0]?.id, resumed.events()[2]?.id, 'no replay without Last-Event-ID');
    } finally {
      await stop();
    }
  });

  test('a malformed Last-Event-ID is a 400 problem', async () => {
    const t = await testApp();
    for (const bad of ['a b', 'x'.repeat(65), 'a/b']) {
      const res = await request(handler(t)).get('/mesh/events').set('Last-Event-ID', bad);
      expectResponse('streamEvents', res, 400);
    }
    t.app.closeStreams();
  });

  test('closeStreams ends open streams, and later clients get an ended stream', async () => {
    const t = await testApp();
    const { port, stop } = await listen(t);
    try {
      const a = await connect(port);
      const b = await connect(port);
      await until(() => a.frames.length > 0 && b.frames.length > 0, 'the retry frames');
      t.app.closeStreams();
      await a.ended;
      await b.ended;
      const late = await connect(port);
      await late.ended;
      assert.equal(late.res.statusCode, 200);
      const s = await register(t, { address: '10.0.0.1:7777', zone: 'a' });
      await request(handler(t)).post(`/mesh/servers/${s.id}/leave`);
      assert.equal(a.events().length, 0, 'nothing is published after closeStreams');
    } finally {
      await stop();
    }
    assert.deepEqual(t.errors, []);
  });
});

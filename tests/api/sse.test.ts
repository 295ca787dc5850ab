import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import Koa from 'koa';
import { loadContract } from '../../api/openapi.ts';
import {
  createEventStream, formatEvent, isClientDisconnect, isPrematureClose, parseLastEventId, type EventStream, type EventStreamOptions, type SseEvent,
} from '../../api/sse.ts';
import { connect, until, type Frame } from './sse-client.ts';

const contract = loadContract();


/** A real listening server whose only route streams events. */
async function serve(options: EventStreamOptions = {}) {
  const stream = createEventStream(options);
  const appErrors: unknown[] = [];
  const app = new Koa();
  // Koa reports every thrown error, the 429 problems of a full stream too; only the others count.
  app.on('error', (error: unknown) => { if (!isClientDisconnect(error) && (error as { expose?: unknown }).expose !== true) appErrors.push(error); });
  app.use((ctx) => stream.attach(ctx, parseLastEventId(ctx.get('Last-Event-ID') || undefined)));
  const server = http.createServer(app.callback());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const stop = async () => {
    // Ending the streams lets every response finish; close() then drops the idle connections.
    stream.close();
    server.close();
    await once(server, 'close');
    assert.deepEqual(appErrors, []);
  };
  return { stream, port, stop };
}

function event(id: number): SseEvent {
  const data = { type: 'backup_created', seq: id, at: 1000 + id, region_id: 'r1', backup_server_id: `s${id}` };
  return { id: String(id), event: 'backup_created', data };
}

const eventsOf = (frames: Frame[]) => frames.filter((f) => f.id !== undefined);

describe('server-sent events', () => {
  test('a client gets the SSE headers, a retry hint, then every published event as it happens', async () => {
    const { stream, port, stop } = await serve();
    const client = await connect(port);
    assert.equal(client.res.statusCode, 200);
    assert.match(client.res.headers['content-type'] ?? '', /^text\/event-stream/);
    assert.equal(client.res.headers['cache-control'], 'no-cache, no-transform');
    await until(() => stream.clientCount === 1 && client.frames.length === 1, 'the retry frame', 200);
    assert.deepEqual(client.frames[0], { retry: '2000' });
    stream.publish(event(1));
    stream.publish(event(2));
    await until(() => eventsOf(client.frames).length === 2, 'two events', 200);
    const [first] = eventsOf(client.frames);
    assert.equal(first?.id, '1');
    assert.equal(first?.event, 'backup_created');
    const data = JSON.parse(first?.data ?? '') as unknown;
    assert.deepEqual(data, event(1).data);
    assert.ok(contract.validateSchema('MeshEvent', data).ok, 'event data follows the contract');
    await stop();
    await client.ended;
  });

  test('a reconnecting client gets the events after Last-Event-ID, then live ones', async () => {
    const { stream, port, stop } = await serve();
    for (let id = 1; id <= 5; id++) stream.publish(event(id));
    const client = await connect(port, { 'Last-Event-ID': '2' });
    await until(() => eventsOf(client.frames).length === 3, 'the replay', 200);
    stream.publish(event(6));
    await until(() => eventsOf(client.frames).length === 4, 'the live event', 200);
    assert.deepEqual(eventsOf(client.frames).map((f) => f.id), ['3', '4', '5', '6']);
    const fresh = await connect(port);
    stream.publish(event(7));
    await until(() => eventsOf(fresh.frames).length === 1, 'a fresh client', 200);
    assert.equal(eventsOf(fresh.frames)[0]?.id, '7', 'no replay without Last-Event-ID');
    await stop();
  });

  test('a lazily published event is built only when a client or a replay needs it, and replays like any other', async () => {
    const { stream, port, stop } = await serve({ replayLimit: 3 });
    const built: number[] = [];
    const lazily = (id: number) => stream.publishLazily(String(id), () => { built.push(id); return event(id); });
    for (let id = 1; id <= 10; id++) lazily(id);
    assert.deepEqual(built, [], 'nothing built without a client');
    const client = await connect(port, { 'Last-Event-ID': '8' });
    await until(() => eventsOf(client.frames).length === 2, 'the replay', 200);
    assert.deepEqual(built, [9, 10], 'only the replayed events were built');
    lazily(11);
    await until(() => eventsOf(client.frames).length === 3, 'the live event', 200);
    assert.deepEqual(eventsOf(client.frames).map((f) => [f.id, JSON.parse(f.data ?? '').backup_server_id]), [['9', 's9'], ['10', 's10'], ['11', 's11']]);
    assert.deepEqual(built, [9, 10, 11], 'built once each');
    await stop();
  });

  test('the replay window is bounded; resuming from an id it no longer holds is told so before the replay', async () => {
    const { stream, port, stop } = await serve({ replayLimit: 3 });
    for (let id = 1; id <= 10; id++) stream.publish(event(id));
    const client = await connect(port, { 'Last-Event-ID': '4' });
    await until(() => eventsOf(client.frames).length === 3, 'the replay', 200);
    assert.deepEqual(eventsOf(client.frames).map((f) => f.id), ['8', '9', '10']);
    const notice = client.frames.find((f) => f.event === 'events_missed');
    assert.ok(notice && notice.id === undefined, 'an events_missed notice without an id');
    assert.ok(client.frames.indexOf(notice) < client.frames.findIndex((f) => f.id === '8'), 'the notice comes first');
    const data = JSON.parse(notice.data ?? '') as Record<string, unknown>;
    assert.equal(data.last_event_id, '4');
    assert.equal(data.oldest_retained_id, '8');
    assert.ok(contract.validateSchema('EventsMissedNotice', data).ok, 'the notice follows the contract');
    const current = await connect(port, { 'Last-Event-ID': '9' });
    await until(() => eventsOf(current.frames).length === 1, 'the replay after a retained id', 200);
    assert.equal(current.frames.some((f) => f.event === 'events_missed'), false, 'no notice when nothing was missed');
    await stop();
  });

  test('idle streams are pinged', async () => {
    const { port, stop } = await serve({ pingIntervalMs: 10 });
    const client = await connect(port);
    await until(() => client.frames.some((f) => f.comment === 'ping'), 'a ping', 200);
    await stop();
  });

  test('a client that disconnects is forgotten; close() ends the others', async () => {
    const { stream, port, stop } = await serve();
    const leaving = await connect(port);
    const staying = await connect(port);
    await until(() => stream.clientCount === 2, 'two clients', 200);
    leaving.destroy();
    await until(() => stream.clientCount === 1, 'the departure', 200);
    stream.publish(event(1));
    stream.close();
    await staying.ended;
    assert.equal(eventsOf(staying.frames).length, 1);
    assert.equal(stream.clientCount, 0);
    await stop();
  });

  test('a client that stops reading is dropped instead of buffering without bound', async () => {
    const { stream, port, stop } = await serve({ maxBufferedBytes: 256 * 1024 });
    const slow = await connect(port);
    await until(() => stream.clientCount === 1, 'the client', 200);
    slow.res.pause();
    const blob = 'x'.repeat(64 * 1024);
    for (let id = 1; id <= 400 && stream.clientCount > 0; id++) {
      stream.publish({ id: String(id), event: 'bulk', data: blob });
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(stream.clientCount, 0);
    slow.destroy();
    await stop();
  });

  test('a client that falls behind gets a final stream_closed event saying why', async () => {
    // The grace before a dropped client is cut must outlast the publishing below, or on a loaded
    // machine the slow client is cut before it resumes reading and never sees the final frame.
    const { stream, port, stop } = await serve({ maxBufferedBytes: 64 * 1024, maxQueuedEvents: 50, dropGraceMs: 10_000 });
    const slow = await connect(port);
    const stuck = await connect(port);
    try {
      await until(() => stream.clientCount === 2, 'the clients', 200);
      slow.res.pause();
      stuck.res.pause();
      // Small events: the event bound, not the byte bound, is what a client reaches first here, once
      // the kernel's socket buffers (not the process's memory) are full.
      for (let id = 1; id <= 200_000 && stream.clientCount > 0; id++) {
        stream.publish(event(id));
        if (id % 100 === 0) await new Promise((r) => setImmediate(r));
      }
      assert.equal(stream.clientCount, 0, 'both clients were dropped');
      slow.res.resume();
      await slow.ended;
      const last = slow.frames[slow.frames.length - 1];
      assert.equal(last?.event, 'stream_closed');
      assert.equal(last?.id, undefined, 'the closing frame has no id, so Last-Event-ID stays on the last event');
      const data = JSON.parse(last?.data ?? '{}') as { reason: string; last_event_id: string };
      assert.equal(data.reason, 'slow_consumer');
      assert.equal(data.last_event_id, slow.events().at(-1)?.id, 'it names the last event the stream carried');
    } finally {
      // Also on failure: an open connection would keep the test file from ever exiting.
      slow.destroy();
      stuck.destroy();
      await stop();
    }
  });

  test('at most maxClients are attached; one more is refused with 429 before anything is sent', async () => {
    const { stream, port, stop } = await serve({ maxClients: 2 });
    const a = await connect(port);
    const b = await connect(port);
    await until(() => stream.clientCount === 2, 'two clients', 200);
    const third = await new Promise<http.IncomingMessage>((resolve) => http.get({ host: '127.0.0.1', port, path: '/mesh/events', agent: false }, resolve));
    assert.equal(third.statusCode, 429);
    assert.equal(third.headers['retry-after'], '2');
    third.resume();
    a.destroy();
    await until(() => stream.clientCount === 1, 'the departure', 200);
    const again = await connect(port);
    assert.equal(again.res.statusCode, 200, 'a freed place can be taken');
    b.destroy();
    again.destroy();
    await stop();
  });

  test('a client attaching after close() gets an ended stream', async () => {
    const { stream, port, stop } = await serve();
    stream.close();
    const client = await connect(port);
    await client.ended;
    assert.equal(stream.clientCount, 0);
    await stop();
  });
});

describe('sse helpers', () => {
  test('formatEvent writes one frame with the JSON on one line', () => {
    const text = formatEvent({ id: 'b1.7', event: 'x', data: { note: 'two\nlines' } });
    assert.equal(text, 'id: b1.7\nevent: x\ndata: {"note":"two\\nlines"}\n\n');
    assert.equal(formatEvent({ event: 'x', data: 1 }), 'event: x\ndata: 1\n\n', 'no id line without an id');
    assert.throws(() => formatEvent({ id: '1', event: 'bad\nname', data: null }));
  });

  test('parseLastEventId takes the trimmed header; blank is none', () => {
    assert.equal(parseLastEventId(' b1.42 '), 'b1.42');
    for (const none of [undefined, '', '  ']) assert.equal(parseLastEventId(none), undefined, String(none));
  });

  test('isPrematureClose and isClientDisconnect recognise client departures only', () => {
    assert.equal(isPrematureClose(Object.assign(new Error('closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })), true);
    assert.equal(isPrematureClose(new Error('other')), false);
    assert.equal(isPrematureClose(null), false);
    assert.equal(isClientDisconnect(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), true);
    assert.equal(isClientDisconnect(Object.assign(new Error('gone'), { code: 'ENOENT' })), false);
  });

  test('an event stream is a value, not a singleton', () => {
    const a: EventStream = createEventStream();
    const b: EventStream = createEventStream();
    a.publish(event(1));
    assert.equal(a.clientCount + b.clientCount, 0);
    a.close();
    b.close();
  });
});

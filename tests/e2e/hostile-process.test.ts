/**
 * Hostile clients against the real service process (issue 14), where the HTTP server's own limits
 * matter: slow headers, slow bodies (an action and a server's heartbeat), corrupt content
 * codings, non-reading event-stream subscribers during a mass failure, a tampered data file, an
 * unwritable data directory and a weak admin token. After each hostile client the service still
 * accepts and persists a normal action (202) and answers `/readyz`.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, expectJson, killAll, sleep, spawnService, startService, stopService, waitFor } from './service-process.ts';

after(killAll);

const freshDir = () => mkdtempSync(join(tmpdir(), 'mesh-hostile-'));

/** Sends raw bytes on a new connection; resolves with what came back and when the server closed it. */
function rawExchange(port: number, bytes: string, giveUpMs: number): Promise<{ text: string; closedAfterMs: number | null }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    const timer = setTimeout(() => { socket.destroy(); resolve({ text, closedAfterMs: null }); }, giveUpMs);
    socket.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
    socket.on('close', () => { clearTimeout(timer); resolve({ text, closedAfterMs: Date.now() - started }); });
    socket.on('error', () => {});
  });
}

/**
 * Region `orphan` on a server that never heartbeats: once the server is declared failed, the region
 * has no primary and its actions are buffered (202).
 */
async function orphanRegion(base: string): Promise<void> {
  // A server that has not heartbeated may already count as unusable: register another until one takes it.
  await waitFor('the orphan region', async () => {
    expectJson('registerServer', await call(base, 'POST', '/mesh/servers', { body: { address: '127.0.0.1:7300', zone: 'z' } }), 201);
    const res = await call(base, 'POST', '/mesh/regions', { body: { region_id: 'orphan' } });
    return res.status === 201 ? res : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  await waitFor('the orphan region without a primary', async () => {
    const res = await call(base, 'POST', '/mesh/regions/orphan/actions', { body: { player_id: 'p-first', seq: 1, payload: {} } });
    return res.status === 202 ? res : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200 });
}

let seq = 0;
/** A normal action to a region without a primary is accepted durably, and the service is ready. */
async function stillServing(base: string): Promise<void> {
  expectJson('submitAction', await call(base, 'POST', '/mesh/regions/orphan/actions', { body: { player_id: 'p-check', seq: ++seq, payload: { n: seq } } }), 202);
  expectJson('getReadiness', await call(base, 'GET', '/readyz'), 200);
}

describe('hostile clients against the real process', () => {
  test('slow headers, slow bodies, corrupt codings and non-reading subscribers are bounded', { timeout: 120_000 }, async () => {
    const service = await startService(['--port', '0', '--data-dir', freshDir(), '--request-timeout-ms', '1000', '--max-event-subscribers', '20']);
    const base = service.url;
    await orphanRegion(base);
    await stillServing(base);

    // Slow headers: the connection is answered 408 and closed after the request timeout, not 60 s.
    const headers = await rawExchange(service.port, 'POST /mesh/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n', 10_000);
    assert.ok(headers.closedAfterMs !== null && headers.closedAfterMs < 4000, `slow headers closed after ${headers.closedAfterMs} ms`);
    await stillServing(base);

    // Slow body on the Koa path: a 408 problem once the body timeout has passed.
    const body = await rawExchange(service.port, 'POST /mesh/regions/orphan/actions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"player_id":', 10_000);
    assert.match(body.text, /^HTTP\/1\.1 408/, body.text);
    assert.match(body.text, /request-timeout/);
    assert.ok(body.closedAfterMs !== null && body.closedAfterMs < 4000, `slow body closed after ${body.closedAfterMs} ms`);
    await stillServing(base);

    // The same on a heartbeat, with a registered server's own token.
    const registered = expectJson('registerServer', await call(base, 'POST', '/mesh/servers', { body: { address: '127.0.0.1:7301', zone: 'a' } }), 201);
    const beat = await rawExchange(service.port, `POST /mesh/servers/${registered.server_id}/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Authorization: Bearer ${registered.token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"incarnation":`, 10_000);
    assert.match(beat.text, /^HTTP\/1\.1 408/, beat.text);
    // A corrupt or unknown coding on a heartbeat: 400 and 415, and no error-level log line.
    for (const [coding, status] of [['gzip', 400], ['br', 400], ['foo', 415]] as const) {
      const res = await fetch(new URL(`/mesh/servers/${registered.server_id}/heartbeat`, base), {
        method: 'POST', body: '{"incarnation":"b","players":0,"regions":[],"peers":[]}',
        headers: { authorization: `Bearer ${registered.token}`, 'content-type': 'application/json', 'content-encoding': coding },
      });
      assert.equal(res.status, status, `${coding}: ${await res.text()}`);
    }
    await stillServing(base);

    // Non-reading subscribers during a mass failure: capped at 20, and the service keeps serving.
    const readers = await Promise.all(Array.from({ length: 20 }, () => new Promise<net.Socket>((resolve) => {
      const socket = net.connect(service.port, '127.0.0.1', () => socket.write('GET /mesh/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
      socket.on('error', () => {});
      // Reads the response head, then never reads again.
      socket.once('data', () => { socket.pause(); resolve(socket); });
    })));
    const refusedSubscriber = await call(base, 'GET', '/mesh/events', { timeoutMs: 5000 });
    assert.equal(refusedSubscriber.status, 429, 'the 21st subscriber is refused');
    expectJson('setupTestMesh', await call(base, 'POST', '/mesh/setup_test', { body: { regions: 500, zones: 3, critical_regions: 50 } }), 201);
    expectJson('simulateFailure', await call(base, 'POST', '/mesh/simulate_failure', { body: { fraction: 0.5, mode: 'crash' } }), 202);
    await sleep(4000);
    await stillServing(base);
    for (const socket of readers) socket.destroy();
    expectJson('resetTestMesh', await call(base, 'POST', '/mesh/reset'), 200);
    await stillServing(base);
    // Decisions of the coordinator (a critical alert of the mass failure) are logged at error too;
    // what must not appear is an error that is not such a decision.
    const errors = service.output().split('\n').filter((line) => line.includes('"level":"error"') && !line.includes('"decision":'));
    assert.deepEqual(errors, [], 'no hostile client was logged as a server error');
    assert.deepEqual(await stopService(service, 'SIGTERM'), { code: 0, signal: null });
  });
});

describe('hostile files and settings at start-up', () => {
  test('a data file with a wrong type is refused naming the field, and left untouched', { timeout: 60_000 }, async () => {
    const dir = freshDir();
    const first = await startService(['--port', '0', '--data-dir', dir]);
    expectJson('registerServer', await call(first.url, 'POST', '/mesh/servers', { body: { address: '127.0.0.1:7300', zone: 'z' } }), 201);
    expectJson('createRegion', await call(first.url, 'POST', '/mesh/regions', { body: { region_id: 'orphan' } }), 201);
    await stopService(first, 'SIGTERM');
    const file = join(dir, 'mesh.json');
    const document = JSON.parse(readFileSync(file, 'utf8'));
    for (const [tamper, field] of [
      [(d: any) => { d.records['region:orphan'].epoch = 'x'; }, 'state/regions/0/epoch must be integer'],
      [(d: any) => { d.records['server:srv-1'].capacity = null; }, 'state/servers/0/capacity must be integer'],
    ] as const) {
      const copy = structuredClone(document);
      tamper(copy);
      writeFileSync(file, JSON.stringify(copy));
      const before = readFileSync(file);
      const second = spawnService(['--port', '0', '--data-dir', dir]);
      const exit = await second.exited;
      assert.notEqual(exit.code, 0);
      assert.match(second.output(), new RegExp(field.replace(/\//g, '\\/')), second.output());
      assert.doesNotMatch(second.output(), /TypeError/);
      assert.deepEqual(readFileSync(file), before, 'the refused file is left as it was');
    }
  });

  test('an unwritable data directory and a short admin token are refused with a clear message', { timeout: 60_000 }, async () => {
    const unwritable = spawnService(['--port', '0', '--data-dir', '/sys/mesh-coordinator-test']);
    assert.notEqual((await unwritable.exited).code, 0);
    assert.match(unwritable.output(), /data directory \/sys\/mesh-coordinator-test is not writable \(E[A-Z]+\)/);
    const weak = spawnService(['--port', '0', '--host', '0.0.0.0', '--store', 'memory'], { MESH_ADMIN_TOKEN: 'short' });
    assert.equal((await weak.exited).code, 2);
    assert.match(weak.output(), /MESH_ADMIN_TOKEN is 5 characters; use at least 32, for example the output of `openssl rand -hex 32`/);
  });
});

/**
 * ReplyBatch (api/heartbeat-fast-path.ts) over a real node:http server on loopback: answers queued
 * in one event-loop iteration are written together, each to its own request; an answer whose
 * connection closed before the write is skipped, and one that cannot be written closes its own
 * connection, without disturbing the others.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReplyBatch } from '../../api/heartbeat-fast-path.ts';

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('ReplyBatch', () => {
  test('answers queued in one iteration are written together, each to its own request', async () => {
    const batch = new ReplyBatch();
    const sizes: number[] = [];
    let queued = 0;
    const writeAll = batch.writeAll.bind(batch);
    batch.writeAll = () => {
      sizes.push(queued);
      queued = 0;
      writeAll();
    };
    // Requests are held until all 20 have arrived, then queued in one go, as one poll phase would.
    const held: { path: string; res: import('node:http').ServerResponse }[] = [];
    const server = createServer((req, res) => {
      held.push({ path: req.url ?? '', res });
      if (held.length < 20) return;
      for (const { path, res: r } of held.splice(0)) {
        const body = JSON.stringify({ path });
        queued += 1;
        batch.add(r, 200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }, body);
      }
    });
    const port = await listen(server);
    try {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get(port, `/r${i}`)));
      answers.forEach((a, i) => {
        assert.equal(a.status, 200);
        assert.deepEqual(JSON.parse(a.body), { path: `/r${i}` });
      });
      assert.deepEqual(sizes, [20], 'one write pass for the 20 answers');
    } finally {
      server.close();
    }
  });

  test('an answer whose connection closed first is skipped; the others are written', async () => {
    const batch = new ReplyBatch();
    let goneRes: import('node:http').ServerResponse | null = null;
    const server = createServer((req, res) => {
      if (req.url === '/gone') {
        goneRes = res;
        batch.add(res, 200, { 'Content-Length': 4 }, 'gone');
        res.destroy();
        return;
      }
      batch.add(res, 200, { 'Content-Length': 2 }, 'ok');
    });
    const port = await listen(server);
    try {
      const gone = await get(port, '/gone').then(() => 'answered', (error: Error) => error.message);
      assert.equal(gone, 'socket hang up');
      assert.deepEqual(await get(port, '/ok'), { status: 200, body: 'ok' });
      assert.equal(goneRes!.headersSent, false, 'nothing was written to the closed connection');
    } finally {
      server.close();
    }
  });

  test('an answer that cannot be written closes its own connection and is reported; the rest of the batch is written', async () => {
    const errors: unknown[] = [];
    const batch = new ReplyBatch((error) => errors.push(error));
    const held: import('node:http').ServerResponse[] = [];
    const server = createServer((_req, res) => {
      held.push(res);
      if (held.length < 2) return;
      const [bad, good] = held.splice(0) as [import('node:http').ServerResponse, import('node:http').ServerResponse];
      // A header value with a line break is refused by node:http when written.
      batch.add(bad, 200, { 'X-Bad': 'line\nbreak', 'Content-Length': 3 }, 'bad');
      batch.add(good, 200, { 'Content-Length': 4 }, 'good');
    });
    const port = await listen(server);
    try {
      const [bad, good] = await Promise.all([
        get(port, '/bad').then((a) => `answered ${a.status}`, (error: Error) => error.message),
        get(port, '/good'),
      ]);
      assert.equal(bad, 'socket hang up');
      assert.deepEqual(good, { status: 200, body: 'good' });
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as { code?: string }).code, 'ERR_INVALID_CHAR');
    } finally {
      server.close();
    }
  });
});

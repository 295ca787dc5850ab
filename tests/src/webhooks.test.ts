/**
 * Alert webhooks against a real HTTP receiver on 127.0.0.1: signed deliveries that verify, retries
 * with back-off while the receiver fails and delivery once it recovers, in order; a bounded queue
 * whose overflow is logged; and `notify` returning before any delivery, whatever the receiver does.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { createLogger } from '../../src/logger.ts';
import { AlertWebhooks, replayWindowSeconds, signWebhook, verifyWebhook } from '../../src/webhooks.ts';

const secret = 'webhook-test-secret';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver that answers `statuses` in turn (then 200), or never answers when `hang` is set. */
async function receiver(statuses: number[], hang = false) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => {
      received.push({ headers: req.headers, body });
      if (hang) return;
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, received };
}

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.closeAllConnections();
  return Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

function capture() {
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', sink: { write: (line) => lines.push(line) } });
  return { log, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (let waited = 0; waited < timeoutMs; waited += 20) {
    if (ok()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('alert webhooks', () => {
  test('a failing receiver gets retries with back-off, then every notification, in order, signed', async () => {
    const { url, received } = await receiver([500, 503, 500]);
    const { log, records } = capture();
    const outcomes: string[] = [];
    const hooks = new AlertWebhooks({ urls: [url], secret, log, baseDelayMs: 40, maxDelayMs: 1000, onOutcome: (o) => outcomes.push(o) });
    hooks.notify({ type: 'alert_raised', alert: { id: 'alert-1' } });
    hooks.notify({ type: 'alert_resolved', alert: { id: 'alert-1' } });
    assert.equal(received.length, 0, 'notify only queues');
    await until('both delivered', () => outcomes.filter((o) => o === 'delivered').length === 2);
    assert.equal(received.length, 5);
    assert.deepEqual(outcomes, ['retried', 'retried', 'retried', 'delivered', 'delivered']);
    // The first notification was retried with the same id until it got through, then the second.
    const ids = received.map((r) => r.headers['x-mesh-webhook-id']);
    assert.equal(new Set(ids.slice(0, 4)).size, 1);
    assert.notEqual(ids[4], ids[0]);
    assert.deepEqual(received.slice(3).map((r) => (JSON.parse(r.body) as { type: string }).type), ['alert_raised', 'alert_resolved']);
    for (const r of received) {
      assert.equal(r.headers['content-type'], 'application/json');
      assert.ok(verifyWebhook({
        secret, body: r.body, timestamp: r.headers['x-mesh-webhook-timestamp'] as string,
        signature: r.headers['x-mesh-webhook-signature'] as string, nowSeconds: Math.floor(Date.now() / 1000),
      }), 'signature verifies');
    }
    assert.equal(records().filter((r) => r.msg === 'alert webhook failed; will retry').length, 3);
    hooks.close();
  });

  test('the signature covers the timestamp and the body, and the replay window is enforced', () => {
    const body = '{"type":"alert_raised"}';
    const now = 1_800_000_000;
    const signature = signWebhook(secret, now, body);
    assert.match(signature, /^v1=[0-9a-f]{64}$/);
    const check = (over: Partial<Parameters<typeof verifyWebhook>[0]>) =>
      verifyWebhook({ secret, body, timestamp: String(now), signature, nowSeconds: now, ...over });
    assert.equal(check({}), true);
    assert.equal(check({ body: '{"type":"alert_resolved"}' }), false);
    assert.equal(check({ timestamp: String(now + 1) }), false);
    assert.equal(check({ secret: 'other' }), false);
    assert.equal(check({ nowSeconds: now + replayWindowSeconds }), true);
    assert.equal(check({ nowSeconds: now + replayWindowSeconds + 1 }), false);
    assert.equal(check({ signature: undefined }), false);
  });

  test('a receiver that never answers: notify stays instant, the queue is bounded and overflow is logged', async () => {
    const { url, received } = await receiver([], true);
    const { log, records } = capture();
    const outcomes: string[] = [];
    const hooks = new AlertWebhooks({ urls: [url], secret, log, maxQueue: 3, timeoutMs: 60_000, onOutcome: (o) => outcomes.push(o) });
    for (let i = 0; i < 5; i++) hooks.notify({ n: i });
    assert.equal(hooks.queued(), 3);
    assert.deepEqual(outcomes, ['dropped', 'dropped']);
    assert.equal(records().filter((r) => r.msg === 'alert webhook queue full; oldest notification dropped').length, 2);
    await until('the first request to arrive', () => received.length === 1);
    hooks.close();
    assert.ok(records().some((r) => r.msg === 'alert webhook notifications not delivered before shutdown' && r.count === 3));
  });

  test('gives up after maxAttempts and logs it as an error', async () => {
    const { url } = await receiver([500, 500, 500, 500]);
    const { log, records } = capture();
    const hooks = new AlertWebhooks({ urls: [url], secret, log, maxAttempts: 2, baseDelayMs: 10 });
    hooks.notify({ n: 1 });
    await until('the give-up line', () => records().some((r) => r.msg === 'alert webhook gave up'));
    assert.equal(hooks.queued(), 0);
    hooks.close();
  });
});

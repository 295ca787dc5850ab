/**
 * The TypeScript client's leader-following fetch (clients/ts/coordinator-urls.ts) facing a replica
 * that accepts requests and never answers, as a SIGSTOPped coordinator does: once the caller gives
 * up on it, the next request goes to the next replica instead of waiting on the stalled one again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CoordinatorUrls, leaderFollowingFetch } from '../../clients/ts/coordinator-urls.ts';

const STALLED = 'http://127.0.0.1:1001';
const LEADER = 'http://127.0.0.1:1002';

/** A stalled replica (answers only when aborted, by rejecting) and a leader that answers 200. */
function network(sent: string[]): (request: Request) => Promise<Response> {
  return (request) => {
    const origin = new URL(request.url).origin;
    sent.push(origin);
    if (origin === LEADER) return Promise.resolve(new Response('{}', { status: 200 }));
    return new Promise((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason), { once: true }));
  };
}

/** A signal aborted after `ms` (a timer that keeps the test alive, unlike `AbortSignal.timeout`). */
function abortAfter(ms: number): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('timed out')), ms);
  return controller.signal;
}

test('a replica that never answers is left once the caller gives up on it', async () => {
  const sent: string[] = [];
  const send = leaderFollowingFetch(new CoordinatorUrls([STALLED, LEADER]), network(sent), { retryDelayMs: 1 });
  await assert.rejects(send(new Request(`${STALLED}/mesh/status`, { signal: abortAfter(50) })));
  const answered = await send(new Request(`${STALLED}/mesh/status`, { signal: abortAfter(1000) }));
  assert.equal(answered.status, 200);
  assert.deepEqual(sent, [STALLED, LEADER]);
});

test('a leader named by a redirect that then stalls is forgotten: the next request tries the list again', async () => {
  const sent: string[] = [];
  const urls = new CoordinatorUrls([LEADER, STALLED]);
  urls.leaderIs(STALLED);
  const send = leaderFollowingFetch(urls, network(sent), { retryDelayMs: 1 });
  await assert.rejects(send(new Request(`${LEADER}/mesh/status`, { signal: abortAfter(50) })));
  assert.equal((await send(new Request(`${LEADER}/mesh/status`))).status, 200);
  assert.deepEqual(sent, [STALLED, LEADER]);
});

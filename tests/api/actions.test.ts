import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Response } from 'supertest';
import type { CoreState } from '../../mesh/core/state.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { expectResponse } from './harness.ts';
import { MeshFixture, type FixtureOptions } from './mesh-fixture.ts';
import { mintPlayerTicket } from '../../api/player-ticket.ts';

const ACTIONS = '/mesh/regions/castle/actions';

/** Three servers, region `castle` on them, everyone heartbeating for 3 s. */
async function healthyMesh(options: FixtureOptions = {}) {
  const f = await MeshFixture.create(options);
  f.register(['s1', 's2', 's3']);
  const auth = options.adminToken ? { Authorization: `Bearer ${options.adminToken}` } : {};
  expectResponse('createRegion', await f.http.post('/mesh/regions').set(auth).send({ region_id: 'castle', players: 2 }), 201);
  f.adopt('castle');
  await f.run(3000);
  return f;
}

/** The same, with the primary failed and a backup's promotion announced but not acknowledged. */
async function failingOver(options: FixtureOptions = {}) {
  const f = await healthyMesh(options);
  const roles = await f.failPrimary('castle');
  const other = ['s1', 's2', 's3'].find((s) => s !== roles.failed && s !== roles.promoted) ?? '';
  return { f, ...roles, backup: other };
}

const submit = (f: MeshFixture, player: string, seq: number, payload: unknown = { kind: 'move', seq }) =>
  f.http.post(ACTIONS).send({ player_id: player, seq, payload });

describe('the failover scenario: buffer, refuse when full, replay in order exactly once', () => {
  test('actions from two players are buffered during a failover and replayed to the new primary', async () => {
    const f = await healthyMesh();
    const original = f.replicas('castle').primary;

    // Healthy: 409 with the primary to send to, and nothing buffered.
    const healthy = expectResponse('submitAction', await f.unchanged(() => submit(f, 'p-a', 1)), 409);
    assert.equal(healthy.type, 'https://mesh-coordinator.dev/problems/region-healthy');
    assert.deepEqual(healthy.primary, { server_id: original, address: f.host.coordinator.serverRecord(original as never)?.address });
    assert.equal(healthy.epoch, 1);

    const { failed, promoted, epoch } = await f.failPrimary('castle');
    assert.equal(failed, original);
    assert.equal(epoch, 2);
    const now = f.now;

    // Player a sends out of order, then up to its bound of 100; player b sends three.
    for (const seq of [3, 1, 2]) {
      const body = expectResponse('submitAction', await submit(f, 'p-a', seq), 202);
      assert.equal(body.status, 'buffered');
      assert.equal(body.expires_at, now + 10_000);
      assert.ok(f.allDurable(), 'a 202 was answered before the action was on disk');
    }
    for (let seq = 4; seq <= 100; seq++) {
      const body = expectResponse('submitAction', await submit(f, 'p-a', seq), 202);
      assert.equal(body.pending, seq);
    }
    for (const seq of [1, 2, 3]) expectResponse('submitAction', await submit(f, 'p-b', seq, { kind: 'chat', text: `hello ${seq}` }), 202);

    // Repeats are recognised and change nothing.
    const dup = expectResponse('submitAction', await f.unchanged(() => submit(f, 'p-a', 1)), 202);
    assert.deepEqual(dup, { status: 'duplicate', pending: 100, expires_at: now + 10_000 });
    assert.equal(expectResponse('submitAction', await f.unchanged(() => submit(f, 'p-b', 2, { kind: 'chat', text: 'hello 2' })), 202).status, 'duplicate');

    // The 101st action of player a is refused with Retry-After; player b is unaffected.
    const full = await submit(f, 'p-a', 101);
    const problem = expectResponse('submitAction', full, 429);
    assert.equal(problem.type, 'https://mesh-coordinator.dev/problems/buffer-full');
    assert.equal(problem.retry_after_ms, 10_000);
    assert.equal(full.headers['retry-after'], '10');
    assert.equal(expectResponse('submitAction', await submit(f, 'p-b', 4), 202).status, 'buffered');
    const alerts = expectResponse('listAlerts', await f.http.get('/mesh/alerts'), 200);
    assert.ok(alerts.alerts.some((a: { dedup_key: string }) => a.dedup_key === 'buffer-full:castle'));

    // The new primary acknowledges its promotion: the region is healthy again, under the new epoch.
    f.acknowledgePromotion(promoted, 'castle');
    const after = expectResponse('submitAction', await f.unchanged(() => submit(f, 'p-a', 102)), 409);
    assert.equal(after.primary.server_id, promoted);
    assert.equal(after.epoch, 2);

    // The primary collects everything, per player in seq order, and acknowledges it.
    const collected = expectResponse('collectActions', await f.http.post(`${ACTIONS}/collect`).set(f.as(promoted)).send({}), 200);
    assert.equal(collected.region_id, 'castle');
    assert.equal(collected.epoch, 2);
    const order = collected.actions.map((a: { player_id: string; seq: number }) => `${a.player_id}:${a.seq}`);
    const expected = [...Array.from({ length: 100 }, (_, i) => `p-a:${i + 1}`), ...[1, 2, 3, 4].map((s) => `p-b:${s}`)];
    assert.deepEqual(order, expected);
    assert.deepEqual(collected.actions[100], { player_id: 'p-b', seq: 1, payload: { kind: 'chat', text: 'hello 1' }, accepted_at: now });

    const firstTwo = expectResponse('collectActions', await f.http.post(`${ACTIONS}/collect`).set(f.as(promoted)).send({ limit: 2 }), 200);
    assert.deepEqual(firstTwo.actions.map((a: { seq: number }) => a.seq), [1, 2]);

    const acks = collected.actions.map((a: { player_id: string; seq: number }) => ({ player_id: a.player_id, seq: a.seq }));
    const acked = expectResponse('acknowledgeActions', await f.http.post(`${ACTIONS}/ack`).set(f.as(promoted)).send({ acks }), 200);
    assert.deepEqual(acked, { acknowledged: 104, unknown: 0, pending: 0 });
    assert.ok(f.allDurable(), 'the ack was answered before it was on disk');
    const again = expectResponse('acknowledgeActions', await f.unchanged(() => f.http.post(`${ACTIONS}/ack`).set(f.as(promoted)).send({ acks })), 200);
    assert.deepEqual(again, { acknowledged: 0, unknown: 104, pending: 0 });
    const empty = expectResponse('collectActions', await f.http.post(`${ACTIONS}/collect`).set(f.as(promoted)), 200);
    assert.deepEqual(empty.actions, []);

    const metrics = expectResponse('getFailoverMetrics', await f.http.get('/mesh/failover_metrics'), 200);
    assert.equal(metrics.actions.buffered, 104);
    assert.equal(metrics.actions.replayed, 104);
    assert.equal(metrics.actions.rejected, 1);
    assert.equal(metrics.actions.expired, 0);
    assert.deepEqual(f.t.errors, [], 'no request ended in an unexpected error');
  });

  test('only the acknowledged primary collects and acknowledges: not the promoted backup before it acknowledges, nor anyone else', async () => {
    const { f, promoted, failed, backup } = await failingOver();
    expectResponse('submitAction', await submit(f, 'p-a', 1), 202);
    // Promoted but not acknowledged: were its promotion aborted, an action it acknowledged would
    // count replayed although no primary of the region ever held it.
    for (const who of [promoted, backup, failed]) {
      const res = await f.unchanged(() => f.http.post(`${ACTIONS}/collect`).set(f.as(who)).send({}));
      const problem = expectResponse('collectActions', res, 409);
      assert.equal(problem.type, 'https://mesh-coordinator.dev/problems/not-primary');
      assert.equal(problem.epoch, 2);
      assert.equal(problem.primary, null, 'no serving primary until the promotion is acknowledged');
      const ack = await f.unchanged(() => f.http.post(`${ACTIONS}/ack`).set(f.as(who)).send({ acks: [{ player_id: 'p-a', seq: 1 }] }));
      expectResponse('acknowledgeActions', ack, 409);
    }
    f.acknowledgePromotion(promoted, 'castle');
    const late = expectResponse('collectActions', await f.unchanged(() => f.http.post(`${ACTIONS}/collect`).set(f.as(backup))), 409);
    assert.deepEqual(late.primary, { server_id: promoted, address: f.host.coordinator.serverRecord(promoted as never)?.address });
    const collected = expectResponse('collectActions', await f.http.post(`${ACTIONS}/collect`).set(f.as(promoted)), 200);
    assert.equal(collected.actions.length, 1);
    const acked = expectResponse('acknowledgeActions', await f.http.post(`${ACTIONS}/ack`).set(f.as(promoted)).send({ acks: [{ player_id: 'p-a', seq: 1 }] }), 200);
    assert.equal(acked.acknowledged, 1);
  });
});

describe('POST /mesh/regions/{region_id}/actions', () => {
  test('a player that cannot reach the primary of the current epoch has its action buffered for that primary', async () => {
    const f = await healthyMesh();
    const send = (seq: number, knownEpoch: number) =>
      f.http.post(ACTIONS).send({ player_id: 'p-u', seq, payload: null, unreachable_primary: true, known_epoch: knownEpoch });
    const body = expectResponse('submitAction', await send(1, 1), 202);
    assert.equal(body.status, 'buffered');
    assert.ok(f.allDurable(), 'durable before the 202');
    const primary = f.replicas('castle').primary;
    const collected = expectResponse('collectActions', await f.http.post(`${ACTIONS}/collect`).set(f.as(primary ?? "")).send({}), 200);
    assert.deepEqual(collected.actions.map((a: { seq: number }) => a.seq), [1]);
    const stale = expectResponse('submitAction', await f.unchanged(() => send(2, 0)), 409);
    assert.equal(stale.epoch, 1, 'a report about an older epoch names the current primary');
  });

  test('bad input is a 4xx problem and changes nothing', async () => {
    const { f } = await failingOver();
    const post = (body: unknown, path = ACTIONS) => f.http.post(path).send(body as object);
    const cases: [string, () => Promise<Response>, number, string?][] = [
      ['malformed JSON', () => f.http.post(ACTIONS).set('Content-Type', 'application/json').send('{"player_id":"p","seq":1,'), 400],
      ['seq as a string', () => post({ player_id: 'p', seq: '1', payload: {} }), 400, 'body/seq'],
      ['fractional seq', () => post({ player_id: 'p', seq: 1.5, payload: {} }), 400, 'body/seq'],
      ['negative seq', () => post({ player_id: 'p', seq: -1, payload: {} }), 400, 'body/seq'],
      ['seq beyond 2^53', () => f.http.post(ACTIONS).set('Content-Type', 'application/json').send('{"player_id":"p","seq":9007199254740993,"payload":{}}'), 400, 'body/seq'],
      ['player_id as a number', () => post({ player_id: 5, seq: 1, payload: {} }), 400, 'body/player_id'],
      ['empty player_id', () => post({ player_id: '', seq: 1, payload: {} }), 400, 'body/player_id'],
      ['player_id too long', () => post({ player_id: 'p'.repeat(129), seq: 1, payload: {} }), 400, 'body/player_id'],
      ['no payload', () => post({ player_id: 'p', seq: 1 }), 400, 'body/payload'],
      ['no seq', () => post({ player_id: 'p', payload: {} }), 400, 'body/seq'],
      ['an unknown field', () => post({ player_id: 'p', seq: 1, payload: {}, priority: 'high' }), 400, 'body/priority'],
      ['an array body', () => post([{ player_id: 'p', seq: 1, payload: {} }]), 400],
      ['no body', () => f.http.post(ACTIONS), 400],
      ['an oversized payload', () => post({ player_id: 'p', seq: 1, payload: 'x'.repeat(17 * 1024) }), 413],
      ['a form body', () => f.http.post(ACTIONS).type('form').send('player_id=p&seq=1'), 415],
      ['a bad region id', () => post({ player_id: 'p', seq: 1, payload: {} }, '/mesh/regions/no%20such/actions'), 400],
      ['an unknown region', () => post({ player_id: 'p', seq: 1, payload: {} }, '/mesh/regions/atlantis/actions'), 404],
      ['unreachable_primary without known_epoch', () => post({ player_id: 'p', seq: 1, payload: {}, unreachable_primary: true }), 400],
      ['known_epoch negative', () => post({ player_id: 'p', seq: 1, payload: {}, unreachable_primary: true, known_epoch: -1 }), 400, 'body/known_epoch'],
    ];
    for (const [name, send, status, field] of cases) {
      const problem = expectResponse('submitAction', await f.unchanged(send), status);
      if (field) assert.ok(problem.errors?.some((e: { path: string }) => e.path === field), `${name}: ${JSON.stringify(problem)}`);
    }
    expectResponse('submitAction', await post({ player_id: 'p', seq: 1, payload: null }), 202);
    assert.deepEqual(f.t.errors, []);
  });

  test('a failed write answers 503, and the same seq resubmitted later is a durable duplicate', async () => {
    let failing = false;
    const store = new MemoryStore({ beforeWrite: () => { if (failing) throw new Error('EIO: disk gone'); } });
    const { f } = await failingOver({ store });
    failing = true;
    const res = await submit(f, 'p-a', 7);
    assert.equal(res.status, 503);
    assert.match(String(res.headers['content-type']), /application\/problem\+json/);
    assert.equal(res.body.type, 'https://mesh-coordinator.dev/problems/not-durable');
    assert.match(res.body.detail, /may or may not be durable/);
    assert.match(res.body.detail, /same seq/);
    assert.doesNotMatch(JSON.stringify(res.body), /EIO/);
    assert.equal(res.headers['retry-after'], '1');
    failing = false;
    const retry = expectResponse('submitAction', await submit(f, 'p-a', 7), 202);
    assert.equal(retry.status, 'duplicate');
    assert.ok(f.allDurable());
  });
});

describe('a repeated (player_id, seq) with another payload', () => {
  test('answers 409 action-conflict, held or already replayed, and the first payload is what the primary gets', async () => {
    const { f, promoted } = await failingOver();
    expectResponse('submitAction', await submit(f, 'p-a', 1, { kind: 'move', x: 1 }), 202);
    expectResponse('submitAction', await submit(f, 'p-a', 2, { kind: 'move', x: 2 }), 202);
    const conflict = expectResponse('submitAction', await f.unchanged(() => submit(f, 'p-a', 1, { kind: 'move', x: 99 })), 409);
    assert.equal(conflict.type, 'https://mesh-coordinator.dev/problems/action-conflict');
    assert.equal(conflict.player_id, 'p-a');
    assert.equal(conflict.seq, 1);
    assert.match(conflict.detail, /another payload/);
    // The same payload in another key order is the same action: a duplicate.
    assert.equal(expectResponse('submitAction', await f.unchanged(() => submit(f, 'p-a', 1, { x: 1, kind: 'move' })), 202).status, 'duplicate');
    f.acknowledgePromotion(promoted, 'castle');
    const collected = expectResponse('collectActions', await f.http.post(`${ACTIONS}/collect`).set(f.as(promoted)).send({}), 200);
    assert.deepEqual(collected.actions.map((a: { payload: unknown }) => a.payload), [{ kind: 'move', x: 1 }, { kind: 'move', x: 2 }]);
    expectResponse('acknowledgeActions', await f.http.post(`${ACTIONS}/ack`).set(f.as(promoted)).send({ acks: [{ player_id: 'p-a', seq: 1 }] }), 200);
    // Replayed, and the region healthy again: the player is sent to the primary, as for any action.
    assert.equal(expectResponse('submitAction', await f.unchanged(() => submit(f, 'p-a', 1, { kind: 'move', x: 99 })), 409).type,
      'https://mesh-coordinator.dev/problems/region-healthy');
  });
});

describe('player tickets (MESH_PLAYER_TICKET_SECRET)', () => {
  const secret = 'ticket-secret-for-tests';
  const ticketed = (f: MeshFixture, player: string, ticket: string | null, seq = 1) => {
    const req = f.http.post(ACTIONS);
    if (ticket !== null) req.set('X-Player-Ticket', ticket);
    return req.send({ player_id: player, seq, payload: { seq } });
  };

  test('a valid ticket for the player is accepted; missing, malformed, forged, expired or another player\'s is refused', async () => {
    const { f } = await failingOver({ playerTicketSecret: secret });
    const later = Date.now() + 60_000;
    const cases: [string, string | null, number, RegExp][] = [
      ['no ticket', null, 401, /needs a player ticket/],
      ['not a ticket', 'hello', 401, /not a ticket/],
      ['signed with another secret', mintPlayerTicket('other-secret', 'p-a', later), 401, /signature/],
      ['expired', mintPlayerTicket(secret, 'p-a', Date.now() - 1), 401, /expired/],
      ['another player\'s', mintPlayerTicket(secret, 'p-b', later), 403, /for player 'p-b', not 'p-a'/],
    ];
    for (const [name, ticket, status, detail] of cases) {
      const res = await f.unchanged(() => ticketed(f, 'p-a', ticket));
      const problem = expectResponse('submitAction', res, status);
      assert.match(problem.detail, detail, name);
      assert.match(String(res.headers['content-type']), /application\/problem\+json/, name);
    }
    const tampered = mintPlayerTicket(secret, 'p-b', later).replace(/^v1\.[^.]+/, `v1.${Buffer.from('p-a').toString('base64url')}`);
    expectResponse('submitAction', await f.unchanged(() => ticketed(f, 'p-a', tampered)), 401);
    assert.equal(expectResponse('submitAction', await ticketed(f, 'p-a', mintPlayerTicket(secret, 'p-a', later)), 202).status, 'buffered');
    assert.equal(expectResponse('submitAction', await ticketed(f, 'p-ü', mintPlayerTicket(secret, 'p-ü', later)), 202).status, 'buffered');
    assert.deepEqual(f.t.errors, []);
  });

  test('without the secret, actions stay open on loopback (protected mode)', async () => {
    const { f } = await failingOver();
    assert.equal(expectResponse('submitAction', await ticketed(f, 'p-a', null), 202).status, 'buffered');
  });
});

describe('POST /mesh/regions/{region_id}/actions/collect', () => {
  test('authentication and bad input are 4xx problems that change nothing', async () => {
    const { f, promoted, backup } = await failingOver();
    expectResponse('submitAction', await submit(f, 'p-a', 1), 202);
    const collect = (path = `${ACTIONS}/collect`) => f.http.post(path);
    const token = f.tokens.get(promoted) ?? '';
    const cases: [string, () => Promise<Response>, number][] = [
      ['no credentials', () => collect().send({}), 401],
      ['no X-Server-Id', () => collect().set('Authorization', `Bearer ${token}`).send({}), 401],
      ['no token', () => collect().set('X-Server-Id', promoted).send({}), 401],
      ['a wrong token', () => collect().set(f.as(promoted, 'forged')).send({}), 403],
      ["another server's token", () => collect().set(f.as(promoted, f.tokens.get(backup))).send({}), 403],
      ['an unknown server', () => collect().set(f.as('s9', token)).send({}), 404],
      ['a backup', () => collect().set(f.as(backup)).send({}), 409],
      ['limit 0', () => collect().set(f.as(promoted)).send({ limit: 0 }), 400],
      ['limit too high', () => collect().set(f.as(promoted)).send({ limit: 10_001 }), 400],
      ['limit as a string', () => collect().set(f.as(promoted)).send({ limit: '5' }), 400],
      ['an unknown field', () => collect().set(f.as(promoted)).send({ limit: 5, since: 3 }), 400],
      ['malformed JSON', () => collect().set(f.as(promoted)).set('Content-Type', 'application/json').send('{limit'), 400],
      ['an oversized body', () => collect().set(f.as(promoted)).send({ limit: 5, pad: 'x'.repeat(17 * 1024) }), 413],
      ['a text body', () => collect().set(f.as(promoted)).set('Content-Type', 'text/plain').send('limit=5'), 415],
      ['an unknown region', () => collect('/mesh/regions/atlantis/actions/collect').set(f.as(promoted)).send({}), 404],
    ];
    for (const [name, send, status] of cases) {
      const res = await f.unchanged(send);
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
      expectResponse('collectActions', res, status);
    }
  });

  test('with an admin token set, the admin token is not a server credential', async () => {
    const { f, promoted } = await failingOver({ adminToken: 'actions-admin' });
    const res = await f.unchanged(() => f.http.post(`${ACTIONS}/collect`).set(f.as(promoted, 'actions-admin')).send({}));
    expectResponse('collectActions', res, 403);
  });
});

describe('POST /mesh/regions/{region_id}/actions/ack', () => {
  test('bad input is a 4xx problem and changes nothing', async () => {
    const { f, promoted, backup } = await failingOver();
    expectResponse('submitAction', await submit(f, 'p-a', 1), 202);
    const ack = (body: unknown, who = promoted) => f.http.post(`${ACTIONS}/ack`).set(f.as(who)).send(body as object);
    const cases: [string, () => Promise<Response>, number][] = [
      ['no acks', () => ack({ acks: [] }), 400],
      ['missing acks', () => ack({}), 400],
      ['no body', () => f.http.post(`${ACTIONS}/ack`).set(f.as(promoted)), 400],
      ['a negative seq', () => ack({ acks: [{ player_id: 'p-a', seq: -1 }] }), 400],
      ['a string seq', () => ack({ acks: [{ player_id: 'p-a', seq: '1' }] }), 400],
      ['an unknown field in an ack', () => ack({ acks: [{ player_id: 'p-a', seq: 1, ok: true }] }), 400],
      ['too many acks', () => ack({ acks: Array.from({ length: 10_001 }, (_, i) => ({ player_id: 'p', seq: i })) }), 400],
      ['an oversized body', () => ack({ acks: [{ player_id: 'p'.repeat(128), seq: 1 }], pad: 'x'.repeat(1024 * 1024) }), 413],
      ['a backup', () => ack({ acks: [{ player_id: 'p-a', seq: 1 }] }, backup), 409],
      ['a wrong token', () => f.http.post(`${ACTIONS}/ack`).set(f.as(promoted, 'forged')).send({ acks: [{ player_id: 'p-a', seq: 1 }] }), 403],
      ['no credentials', () => f.http.post(`${ACTIONS}/ack`).send({ acks: [{ player_id: 'p-a', seq: 1 }] }), 401],
      ['an unknown region', () => f.http.post('/mesh/regions/atlantis/actions/ack').set(f.as(promoted)).send({ acks: [{ player_id: 'p-a', seq: 1 }] }), 404],
    ];
    for (const [name, send, status] of cases) {
      const res = await f.unchanged(send);
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body).slice(0, 300)}`);
      expectResponse('acknowledgeActions', res, status);
    }
    f.acknowledgePromotion(promoted, 'castle');
    const ok = expectResponse('acknowledgeActions', await ack({ acks: [{ player_id: 'p-a', seq: 1 }, { player_id: 'p-z', seq: 9 }] }), 200);
    assert.deepEqual(ok, { acknowledged: 1, unknown: 1, pending: 0 });
  });
});

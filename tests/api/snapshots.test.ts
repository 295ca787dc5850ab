import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Response } from 'supertest';
import { expectResponse } from './harness.ts';
import { MeshFixture, type FixtureOptions } from './mesh-fixture.ts';

const ADMIN = 'snapshots-admin-token';
const SNAPSHOT = '/mesh/regions/castle/players/player-8812/snapshot';

/** Three servers, region `castle` on them, everyone heartbeating; returns who holds what. */
async function mesh(options: FixtureOptions = {}) {
  const f = await MeshFixture.withRegion(options);
  const { primary, backups } = f.replicas('castle');
  assert.ok(primary);
  return { f, primary, backup: backups[0] ?? '' };
}

const STATE = { hp: 87, position: { x: 12.5, y: -3 }, inventory: ['sword', 'rope'] };

describe('PUT /mesh/regions/{region_id}/players/{player_id}/snapshot', () => {
  test('the primary stores a snapshot; a later one gets a higher version', async () => {
    const { f, primary, backup } = await mesh();
    const first = expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: STATE }), 200);
    assert.equal(first.epoch, 1);
    assert.ok(first.version >= 1);
    const stored = expectResponse('getPlayerSnapshot', await f.http.get(SNAPSHOT).set(f.as(backup)), 200);
    assert.deepEqual(stored, { player_id: 'player-8812', state: STATE, epoch: 1, server_id: primary, updated_at: f.now, version: first.version });
    await f.run(500);
    const second = expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: { hp: 10 } }), 200);
    assert.ok(second.version > first.version);
    const latest = expectResponse('getPlayerSnapshot', await f.http.get(SNAPSHOT).set(f.as(primary)), 200);
    assert.deepEqual(latest.state, { hp: 10 });
    assert.equal(latest.updated_at, f.now);
  });

  test('any JSON value is a state, returned untouched', async () => {
    const { f, primary } = await mesh();
    for (const state of [null, 0, 'text', [1, 'two', { three: 3 }], { nested: { deep: [true, false] } }]) {
      expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(primary)).send({ state }), 200);
      assert.deepEqual(expectResponse('getPlayerSnapshot', await f.http.get(SNAPSHOT), 200).state, state);
    }
  });

  test('the 64 KiB limit counts the UTF-8 bytes of the JSON text of state', async () => {
    const { f, primary } = await mesh();
    const fits = 'a'.repeat(64 * 1024 - 2);
    expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: fits }), 200);
    // 33,000 two-byte characters: 33,002 characters of JSON, but 66,002 bytes.
    const wide = 'é'.repeat(33_000);
    const res = await f.unchanged(() => f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: wide }));
    const problem = expectResponse('putPlayerSnapshot', res, 413);
    assert.equal(problem.type, 'https://mesh-coordinator.dev/problems/snapshot-too-large');
    assert.equal(problem.size_bytes, 66_002);
    assert.equal(problem.max_bytes, 64 * 1024);
    const over = await f.unchanged(() => f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: `${fits}a` }));
    expectResponse('putPlayerSnapshot', over, 413);
  });

  test('only the announced primary may store; bad input is a 4xx problem and changes nothing', async () => {
    const { f, primary, backup } = await mesh();
    expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: STATE }), 200);
    const put = (path = SNAPSHOT) => f.http.put(path);
    const cases: [string, () => Promise<Response>, number][] = [
      ['a backup', () => put().set(f.as(backup)).send({ state: { hp: 1 } }), 409],
      ['no credentials', () => put().send({ state: {} }), 401],
      ['no X-Server-Id', () => put().set('Authorization', `Bearer ${f.tokens.get(primary)}`).send({ state: {} }), 401],
      ['a wrong token', () => put().set(f.as(primary, 'forged')).send({ state: {} }), 403],
      ["a backup's token for the primary", () => put().set(f.as(primary, f.tokens.get(backup))).send({ state: {} }), 403],
      ['an unknown server', () => put().set(f.as('ghost', f.tokens.get(primary))).send({ state: {} }), 404],
      ['an unknown region', () => put('/mesh/regions/atlantis/players/p/snapshot').set(f.as(primary)).send({ state: {} }), 404],
      ['a bad region id', () => put('/mesh/regions/a%20b/players/p/snapshot').set(f.as(primary)).send({ state: {} }), 400],
      ['a player id too long', () => put(`/mesh/regions/castle/players/${'p'.repeat(129)}/snapshot`).set(f.as(primary)).send({ state: {} }), 400],
      ['no state', () => put().set(f.as(primary)).send({}), 400],
      ['no body', () => put().set(f.as(primary)), 400],
      ['an unknown field', () => put().set(f.as(primary)).send({ state: {}, epoch: 9 }), 400],
      ['malformed JSON', () => put().set(f.as(primary)).set('Content-Type', 'application/json').send('{"state": {'), 400],
      ['a top-level string', () => put().set(f.as(primary)).set('Content-Type', 'application/json').send('"state"'), 400],
      ['a body beyond the operation limit', () => put().set(f.as(primary)).send({ state: 'x'.repeat(70_000) }), 413],
      ['a text body', () => put().set(f.as(primary)).set('Content-Type', 'text/plain').send('state'), 415],
    ];
    for (const [name, send, status] of cases) {
      const res = await f.unchanged(send);
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body).slice(0, 300)}`);
      const problem = expectResponse('putPlayerSnapshot', res, status);
      if (name === 'a backup') assert.equal(problem.type, 'https://mesh-coordinator.dev/problems/not-primary');
    }
  });

  test('after a failover the old primary is fenced and the new one stores under the new epoch', async () => {
    const { f, primary } = await mesh();
    expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: STATE }), 200);
    const { failed, promoted, epoch } = await f.failPrimary('castle');
    assert.equal(failed, primary);
    const fenced = await f.unchanged(() => f.http.put(SNAPSHOT).set(f.as(failed)).send({ state: { hp: 0 } }));
    expectResponse('putPlayerSnapshot', fenced, 409);
    // The promoted backup restores the player from the last snapshot, then stores its own.
    const restored = expectResponse('getPlayerSnapshot', await f.http.get(SNAPSHOT).set(f.as(promoted)), 200);
    assert.deepEqual(restored.state, STATE);
    assert.equal(restored.epoch, 1);
    f.acknowledgePromotion(promoted, 'castle');
    const stored = expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(promoted)).send({ state: { hp: 50 } }), 200);
    assert.equal(stored.epoch, epoch);
    assert.equal(expectResponse('getPlayerSnapshot', await f.http.get(SNAPSHOT), 200).server_id, promoted);
  });
});

describe('GET /mesh/regions/{region_id}/players/{player_id}/snapshot', () => {
  test('any registered server or the admin may fetch; unknown ids are 404', async () => {
    const { f, primary, backup } = await mesh({ adminToken: ADMIN });
    expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: STATE }), 200);
    for (const headers of [f.as(primary), f.as(backup), { Authorization: `Bearer ${ADMIN}` }]) {
      assert.deepEqual(expectResponse('getPlayerSnapshot', await f.http.get(SNAPSHOT).set(headers), 200).state, STATE);
    }
    const admin = { Authorization: `Bearer ${ADMIN}` };
    const cases: [string, () => Promise<Response>, number][] = [
      ['no credentials', () => f.http.get(SNAPSHOT), 401],
      ['a wrong token', () => f.http.get(SNAPSHOT).set('Authorization', 'Bearer nope'), 401],
      ['a wrong server token', () => f.http.get(SNAPSHOT).set(f.as(backup, 'forged')), 403],
      ['an unknown server', () => f.http.get(SNAPSHOT).set(f.as('ghost', f.tokens.get(backup))), 404],
      ['an unknown player', () => f.http.get('/mesh/regions/castle/players/nobody/snapshot').set(admin), 404],
      ['an unknown region', () => f.http.get('/mesh/regions/atlantis/players/player-8812/snapshot').set(admin), 404],
      ['a bad region id', () => f.http.get('/mesh/regions/a%20b/players/player-8812/snapshot').set(admin), 400],
    ];
    for (const [name, send, status] of cases) {
      const res = await f.unchanged(send);
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body).slice(0, 300)}`);
      expectResponse('getPlayerSnapshot', res, status);
    }
  });

  test('in protected mode a loopback caller needs no token', async () => {
    const { f, primary } = await mesh();
    expectResponse('putPlayerSnapshot', await f.http.put(SNAPSHOT).set(f.as(primary)).send({ state: STATE }), 200);
    assert.deepEqual(expectResponse('getPlayerSnapshot', await f.http.get(SNAPSHOT), 200).state, STATE);
  });
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Response } from 'supertest';
import type { CoreState } from '../../mesh/core/state.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { expectResponse } from './harness.ts';
import { MeshFixture, type FixtureOptions } from './mesh-fixture.ts';
import { Coordinator } from '../../mesh/core/coordinator.ts';

const ADMIN = 'alerts-admin-token';

/** Three servers and a region; a backup then dies, which raises real alerts. */
async function meshWithFailedBackup(options: FixtureOptions = {}) {
  const f = await MeshFixture.withRegion(options);
  const backup = f.replicas('castle').backups[0] ?? '';
  f.silence(backup);
  await f.run(10_000, () => f.host.coordinator.server(backup as never)?.status === 'failed');
  assert.equal(f.host.coordinator.server(backup as never)?.status, 'failed');
  return { f, backup };
}

type AlertBody = { id: string; dedup_key: string; severity: string; last_raised_at: number; resolved_at: number | null; subject?: Record<string, string> };

describe('GET /mesh/alerts', () => {
  test('lists the open alerts by default, with their subjects', async () => {
    const { f, backup } = await meshWithFailedBackup();
    const body = expectResponse('listAlerts', await f.http.get('/mesh/alerts'), 200);
    const failed = body.alerts.find((a: AlertBody) => a.dedup_key === `server-failed:${backup}`);
    assert.ok(failed, JSON.stringify(body.alerts));
    assert.deepEqual(failed.subject, { server_id: backup });
    assert.equal(failed.resolved_at, null);
    assert.equal(failed.acknowledged_at, null);
    assert.equal(failed.acknowledged_by, null);
    assert.equal(failed.count, 1);
    const region = body.alerts.find((a: AlertBody) => a.subject?.region_id === 'castle');
    assert.ok(region, 'the region short of a backup is alerted');
    assert.ok(body.alerts.every((a: AlertBody) => a.resolved_at === null));
  });

  test('orders by the latest report and filters by state and severity', async () => {
    const f = await MeshFixture.create();
    const book = Coordinator.partsForTests(f.host.coordinator).alerts;
    book.raise({ dedupKey: 'old-but-repeated', severity: 'warning', title: 'A', message: 'first raised' }, 100);
    book.raise({ dedupKey: 'newer', severity: 'critical', title: 'B', message: 'raised later' }, 200);
    book.raise({ dedupKey: 'closed', severity: 'info', title: 'C', message: 'resolved' }, 250);
    book.resolve('closed', 260);
    book.raise({ dedupKey: 'old-but-repeated', severity: 'warning', title: 'A', message: 'reported again' }, 300);

    const open = expectResponse('listAlerts', await f.http.get('/mesh/alerts'), 200);
    assert.deepEqual(open.alerts.map((a: AlertBody) => a.dedup_key), ['old-but-repeated', 'newer']);
    assert.equal(open.alerts[0].count, 2);
    assert.equal(open.alerts[0].raised_at, 100);
    assert.equal(open.alerts[0].last_raised_at, 300);
    assert.equal(open.alerts[0].message, 'reported again');
    assert.equal(open.alerts[0].subject, undefined);

    const all = expectResponse('listAlerts', await f.http.get('/mesh/alerts?state=all'), 200);
    assert.deepEqual(all.alerts.map((a: AlertBody) => a.dedup_key), ['old-but-repeated', 'closed', 'newer']);
    const resolved = expectResponse('listAlerts', await f.http.get('/mesh/alerts?state=resolved'), 200);
    assert.deepEqual(resolved.alerts.map((a: AlertBody) => [a.dedup_key, a.resolved_at]), [['closed', 260]]);
    const critical = expectResponse('listAlerts', await f.http.get('/mesh/alerts?severity=critical'), 200);
    assert.deepEqual(critical.alerts.map((a: AlertBody) => a.dedup_key), ['newer']);
    const info = expectResponse('listAlerts', await f.http.get('/mesh/alerts?state=all&severity=info'), 200);
    assert.deepEqual(info.alerts.map((a: AlertBody) => a.dedup_key), ['closed']);
    const none = expectResponse('listAlerts', await f.http.get('/mesh/alerts?state=open&severity=info'), 200);
    assert.deepEqual(none.alerts, []);
  });

  test('bad query parameters are 400', async () => {
    const f = await MeshFixture.create();
    for (const query of ['state=closed', 'severity=fatal', 'state=open&state=all', 'severity=', 'state=OPEN']) {
      const res = await f.unchanged(() => f.http.get(`/mesh/alerts?${query}`));
      expectResponse('listAlerts', res, 400);
    }
  });
});

describe('POST /mesh/alerts/{alert_id}/ack', () => {
  test('records who acknowledged first and when, durably; repeating changes nothing', async () => {
    const { f, backup } = await meshWithFailedBackup();
    const list = expectResponse('listAlerts', await f.http.get('/mesh/alerts'), 200);
    const target = list.alerts.find((a: AlertBody) => a.dedup_key === `server-failed:${backup}`);
    const acked = expectResponse('acknowledgeAlert', await f.http.post(`/mesh/alerts/${target.id}/ack`), 200);
    assert.equal(acked.id, target.id);
    assert.equal(acked.acknowledged_at, f.now);
    assert.equal(acked.acknowledged_by, 'loopback');
    assert.equal(acked.resolved_at, null, 'acknowledging does not resolve');
    assert.ok(f.allDurable(), 'the acknowledgement was answered before it was on disk');
    const first = acked.acknowledged_at;
    await f.run(1000);
    // (The core still counts a repeat as a change, so it costs a write; the alert itself is unchanged.)
    const again = expectResponse('acknowledgeAlert', await f.http.post(`/mesh/alerts/${target.id}/ack`), 200);
    assert.deepEqual(again, acked);
    assert.equal(again.acknowledged_at, first);
    const listed = expectResponse('listAlerts', await f.http.get('/mesh/alerts'), 200).alerts.find((a: AlertBody) => a.id === target.id);
    assert.equal(listed.acknowledged_by, 'loopback');
  });

  test('with the admin token the author is "admin"; without it 401, with a wrong one 403', async () => {
    const { f } = await meshWithFailedBackup({ adminToken: ADMIN });
    const id = expectResponse('listAlerts', await f.http.get('/mesh/alerts'), 200).alerts[0].id;
    expectResponse('acknowledgeAlert', await f.unchanged(() => f.http.post(`/mesh/alerts/${id}/ack`)), 401);
    expectResponse('acknowledgeAlert', await f.unchanged(() => f.http.post(`/mesh/alerts/${id}/ack`).set('Authorization', 'Bearer nope')), 403);
    expectResponse('acknowledgeAlert', await f.unchanged(() => f.http.post(`/mesh/alerts/${id}/ack`).set(f.as('s1'))), 403);
    const acked = expectResponse('acknowledgeAlert', await f.http.post(`/mesh/alerts/${id}/ack`).set('Authorization', `Bearer ${ADMIN}`), 200);
    assert.equal(acked.acknowledged_by, 'admin');
  });

  test('unknown ids, bodies and bad ids are 4xx problems that change nothing', async () => {
    const { f } = await meshWithFailedBackup();
    const id = expectResponse('listAlerts', await f.http.get('/mesh/alerts'), 200).alerts[0].id;
    const cases: [string, () => Promise<Response>, number][] = [
      ['an unknown alert', () => f.http.post('/mesh/alerts/alert-999/ack'), 404],
      ['a bad alert id', () => f.http.post('/mesh/alerts/not%20an%20id/ack'), 400],
      ['an alert id too long', () => f.http.post(`/mesh/alerts/${'a'.repeat(65)}/ack`), 400],
      ['a body', () => f.http.post(`/mesh/alerts/${id}/ack`).send({ by: 'mallory' }), 400],
      ['malformed JSON', () => f.http.post(`/mesh/alerts/${id}/ack`).set('Content-Type', 'application/json').send('{"by":'), 400],
      ['an oversized body', () => f.http.post(`/mesh/alerts/${id}/ack`).send({ pad: 'x'.repeat(17 * 1024) }), 413],
      ['a text body', () => f.http.post(`/mesh/alerts/${id}/ack`).set('Content-Type', 'text/plain').send('ack'), 415],
    ];
    for (const [name, send, status] of cases) {
      const res = await f.unchanged(send);
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body).slice(0, 300)}`);
      expectResponse('acknowledgeAlert', res, status);
    }
    expectResponse('acknowledgeAlert', await f.http.post(`/mesh/alerts/${id}/ack`).send({}), 200);
  });

  test('a failed write answers 503 instead of 200', async () => {
    let failing = false;
    const store = new MemoryStore({ beforeWrite: () => { if (failing) throw new Error('ENOSPC'); } });
    const { f } = await meshWithFailedBackup({ store });
    const id = expectResponse('listAlerts', await f.http.get('/mesh/alerts'), 200).alerts[0].id;
    failing = true;
    const res = await f.http.post(`/mesh/alerts/${id}/ack`);
    assert.equal(res.status, 503);
    assert.equal(res.body.type, 'https://mesh-coordinator.dev/problems/not-durable');
    assert.doesNotMatch(JSON.stringify(res.body), /ENOSPC/);
  });
});

/**
 * Storage faults through the real app on a store that fails writes for a while, then recovers: a
 * failure is retried by the ticker without any new change, raises a critical `persistence-failing`
 * alert while it lasts, holds a promotion's announcement (and its deadline) instead of blaming the
 * promoted server, makes `/readyz` 503, and no action is answered 202 before it is durable.
 * `/readyz` is also 503 during the restart grace and in TILT.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MeshEvent } from '../../mesh/effects/events.ts';
import { regionId } from '../../mesh/base/types.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { expectResponse, storedState, testApp } from './harness.ts';
import { MeshFixture } from './mesh-fixture.ts';

const ACTIONS = '/mesh/regions/castle/actions';

/** A memory store whose writes fail while `failing` is set; counts the failures. */
function flakyStore(): { store: MemoryStore; set: (failing: boolean) => void; failures: () => number } {
  let failing = false;
  let failures = 0;
  const store = new MemoryStore({
    beforeWrite: () => {
      if (!failing) return;
      failures += 1;
      throw new Error('EIO: i/o error');
    },
  });
  return { store, set: (value) => { failing = value; }, failures: () => failures };
}

describe('a store that fails writes, then recovers', () => {
  test('the promotion waits for the disk, keeps its server, and completes once writes succeed; nothing is answered 202 meanwhile', async () => {
    const flaky = flakyStore();
    const f = await MeshFixture.withRegion({ store: flaky.store });
    const events: MeshEvent[] = [];
    f.host.subscribe((event) => events.push(event));
    const before = f.replicas('castle');
    assert.ok(before.primary);
    flaky.set(true);
    f.silence(before.primary);
    await f.run(10_000, () => f.replicas('castle').epoch > before.epoch);
    const promoted = f.replicas('castle');
    assert.ok(promoted.epoch > before.epoch && promoted.announcedEpoch < promoted.epoch, 'promoted, held back');

    // Three acknowledgement windows pass while writes fail: the promoted server is not blamed.
    const ackTimeout = f.host.coordinator.config.promotionAckTimeoutMs;
    await f.run(3 * ackTimeout);
    const waiting = f.replicas('castle');
    assert.equal(waiting.primary, promoted.primary, 'the promotion was not aborted');
    assert.equal(waiting.epoch, promoted.epoch);
    assert.deepEqual(events.filter((e) => e.type === 'failover_aborted'), []);
    const alert = f.host.coordinator.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'persistence-failing');
    assert.equal(alert?.severity, 'critical', 'a critical persistence-failing alert is open');
    assert.match(alert?.message ?? '', /EIO/);
    const readiness = await f.http.get('/readyz');
    assert.equal(readiness.status, 503);
    assert.match(readiness.body.detail, /write of the state failed/);
    expectResponse('getHealth', await f.http.get('/healthz'), 200);
    assert.equal((await f.http.post(ACTIONS).send({ player_id: 'p', seq: 1, payload: {} })).status, 503, 'no 202 while not durable');
    const failuresSoFar = flaky.failures();
    assert.ok(failuresSoFar >= 5, `retried from the ticker with back-off: ${failuresSoFar} attempts`);
    assert.ok(failuresSoFar <= 40, `with back-off, not every tick: ${failuresSoFar} attempts`);

    // The disk comes back: the ticker's retry makes everything durable without any new command.
    flaky.set(false);
    await f.run(6_000, () => f.replicas('castle').announcedEpoch === promoted.epoch);
    assert.equal(f.replicas('castle').announcedEpoch, promoted.epoch, 'announced once durable');
    expectResponse('getReadiness', await f.http.get('/readyz'), 200);
    assert.ok(!f.host.coordinator.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'persistence-failing'), 'resolved');
    // The same server, told only now, gets its whole window to acknowledge.
    await f.run(ackTimeout - 500);
    f.acknowledgePromotion(promoted.primary as string, 'castle');
    await f.run(200);
    assert.ok(events.some((e) => e.type === 'failover_completed'), 'the failover completed with the first promoted server');
    assert.deepEqual(events.filter((e) => e.type === 'failover_aborted'), []);
    const saved = await storedState(flaky.store);
    assert.equal(saved?.regions.find((r) => r.id === regionId('castle'))?.epoch, promoted.epoch);
  });

  test('a buffered action answered 503 while writes fail is durable once retried, and only then 202', async () => {
    const flaky = flakyStore();
    const f = await MeshFixture.withRegion({ store: flaky.store });
    await f.failPrimary('castle');
    flaky.set(true);
    const refused = await f.http.post(ACTIONS).send({ player_id: 'p', seq: 1, payload: { n: 1 } });
    assert.equal(refused.status, 503);
    assert.equal((await f.http.post(ACTIONS).send({ player_id: 'p', seq: 1, payload: { n: 1 } })).status, 503);
    flaky.set(false);
    const accepted = expectResponse('submitAction', await f.http.post(ACTIONS).send({ player_id: 'p', seq: 1, payload: { n: 1 } }), 202);
    assert.equal(accepted.status, 'duplicate');
    const saved = await storedState(flaky.store);
    assert.deepEqual(saved?.buffer.regions.flatMap((r) => r.players.flatMap((p) => p.actions.map((a) => a.seq))), [1]);
  });
});

describe('/readyz', () => {
  test('is 503 during the restart grace, then 200', async () => {
    const store = new MemoryStore();
    const first = await testApp({ store });
    first.host.run((c, now) => c.registerServer({ id: 's1', address: '10.0.0.1:7777', zone: 'a', capacity: 4 }, now));
    await first.host.durable(first.host.flush());
    const second = await testApp({ store, startMs: 60_000 });
    const { default: request } = await import('supertest');
    const during = await request(second.app.callback()).get('/readyz');
    assert.equal(during.status, 503);
    assert.match(during.body.detail, /restarted/);
    await second.host.advance(second.host.coordinator.config.failureTimeoutMs);
    expectResponse('getReadiness', await request(second.app.callback()).get('/readyz'), 200);
  });

  test('is 503 in TILT, after the coordinator stalled', async () => {
    const t = await testApp();
    const { default: request } = await import('supertest');
    expectResponse('getReadiness', await request(t.app.callback()).get('/readyz'), 200);
    t.host.tick();
    t.clock.advance(t.host.coordinator.config.tiltThresholdMs + 1000);
    t.host.tick();
    const tilted = await request(t.app.callback()).get('/readyz');
    assert.equal(tilted.status, 503);
    assert.match(tilted.body.detail, /TILT/);
  });
});

/**
 * The budget of sooner heartbeats: a few servers a failover waits on are asked back at the
 * expedited interval; when many want it at once (a mass failure) the interval stretches so that the
 * heartbeats they add stay within `expeditedHeartbeatBudget` per second.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expeditedIntervalMs, HeartbeatCadence } from '../../mesh/detection/heartbeat-cadence.ts';
import { harnessConfig, sid, standardMesh } from './coordinator-harness.ts';

const config = { heartbeatIntervalMs: 1000, expeditedHeartbeatIntervalMs: 200, expeditedHeartbeatBudget: 2000 };
/** Heartbeats per second that `wanting` servers at `intervalMs` add beyond the regular rate. */
const added = (wanting: number, intervalMs: number) => wanting * (1000 / intervalMs - 1000 / config.heartbeatIntervalMs);

describe('expeditedIntervalMs', () => {
  test('few servers wanting sooner heartbeats get the expedited interval', () => {
    for (const wanting of [0, 1, 2, 500]) assert.equal(expeditedIntervalMs(config, wanting), 200, `${wanting} wanting`);
  });

  test('past the budget the interval is the shortest that keeps the added heartbeats within it', () => {
    for (const wanting of [501, 1000, 3000, 6000, 20_000, 1_000_000]) {
      const interval = expeditedIntervalMs(config, wanting);
      assert.ok(interval > 200 && interval <= 1000, `${wanting} wanting: ${interval} ms`);
      assert.ok(added(wanting, interval) <= config.expeditedHeartbeatBudget + 1e-6, `${wanting} wanting: within the budget at ${interval} ms`);
      assert.ok(added(wanting, interval - 1) > config.expeditedHeartbeatBudget, `${wanting} wanting: ${interval - 1} ms would exceed it`);
    }
  });

  test('a budget of 0 never asks for sooner heartbeats', () => {
    assert.equal(expeditedIntervalMs({ ...config, expeditedHeartbeatBudget: 0 }, 3), 1000);
  });
});

describe('HeartbeatCadence', () => {
  test('counts the servers whose latest reply wanted a sooner heartbeat, until they stop heartbeating', () => {
    const cadence = new HeartbeatCadence({ ...config, expeditedHeartbeatBudget: 8 });
    const id = (n: number) => sid(`s${n}`);
    assert.equal(cadence.intervalFor(id(1), true), 200, 'one server: 4 more heartbeats a second, within 8');
    assert.equal(cadence.intervalFor(id(2), true), 200);
    assert.equal(cadence.intervalFor(id(3), true), 273, 'three servers share the 8: 1000 / (8/3 + 1)');
    assert.equal(cadence.intervalFor(id(3), true), 273, 'a repeated want counts once');
    assert.equal(cadence.wantingCount, 3);
    assert.equal(cadence.intervalFor(id(1), false), 1000, 'nothing pending: the regular interval');
    cadence.forget(id(2));
    assert.equal(cadence.wantingCount, 1);
    assert.equal(cadence.intervalFor(id(3), true), 200);
  });
});

describe('Coordinator: the budget of sooner heartbeats', () => {
  test('replies stretch the expedited interval once the servers wanting it exceed the budget', () => {
    const reply = (budget: number) => {
      const mesh = standardMesh({ config: { ...harnessConfig, expeditedHeartbeatBudget: budget } });
      mesh.run(10_000);
      mesh.silence('a1');
      mesh.run(11_000);
      return mesh.server('b1').lastReply?.heartbeatIntervalMs;
    };
    const { expeditedHeartbeatIntervalMs: expedited, heartbeatIntervalMs: regular } = harnessConfig;
    assert.equal(reply(harnessConfig.expeditedHeartbeatBudget), expedited, 'b1 reported its primary silent: asked back soon');
    const stretched = reply(1);
    assert.ok(stretched !== undefined && stretched > expedited && stretched < regular, `${stretched} ms with a budget of 1 heartbeat/s`);
    assert.equal(reply(0), regular, 'no budget: the regular interval');
  });

  test('a server declared failed stops counting against the budget', () => {
    const mesh = standardMesh({ config: harnessConfig });
    mesh.run(10_000);
    mesh.silence('a1');
    mesh.run(11_000);
    const wanting = () => mesh.c.heartbeatCadence.wantingCount;
    assert.ok(wanting() >= 1, 'b1 wants sooner heartbeats');
    mesh.silence('b1');
    const before = wanting();
    mesh.run(20_000);
    assert.equal(mesh.c.server(sid('b1'))?.status, 'failed');
    assert.ok(wanting() < before, `b1 failed: ${wanting()} wanting, was ${before}`);
    assert.ok(!mesh.c.heartbeatCadence.wants(sid('b1')), 'b1 no longer counted');
  });
});

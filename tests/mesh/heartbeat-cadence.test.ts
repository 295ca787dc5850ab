/**
 * The budget of sooner heartbeats: a few servers a failover waits on are asked back at the
 * expedited interval; when many want it at once (a mass failure) the interval stretches so that the
 * heartbeats they add stay within `expeditedHeartbeatBudget` per second.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expeditedIntervalMs } from '../../mesh/core/heartbeat-cadence.ts';
import { harnessConfig, standardMesh } from './coordinator-harness.ts';

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

describe('Coordinator: the budget of sooner heartbeats', () => {
  test('replies stretch the expedited interval once the servers wanting it exceed the budget', () => {
    const reply = (budget: number) => {
      const mesh = standardMesh({ config: { ...harnessConfig, expeditedHeartbeatBudget: budget } });
      mesh.run(10_000);
      mesh.silence('a1');
      mesh.run(11_000);
      // The first reply that wants a sooner heartbeat is counted at the next tick; later ones are stretched.
      mesh.run(11_100);
      const next = mesh.hb('b1');
      assert.ok(next.ok, 'heartbeat accepted');
      return next.value.heartbeatIntervalMs;
    };
    const { expeditedHeartbeatIntervalMs: expedited, heartbeatIntervalMs: regular } = harnessConfig;
    assert.equal(reply(harnessConfig.expeditedHeartbeatBudget), expedited, 'b1 reported its primary silent: asked back soon');
    const stretched = reply(1);
    assert.ok(stretched !== undefined && stretched > expedited && stretched < regular, `${stretched} ms with a budget of 1 heartbeat/s`);
    assert.equal(reply(0), regular, 'no budget: the regular interval');
  });
});

/**
 * Alerts about failed servers: one per server while few fail together, one `mass-server-failure`
 * alert when a tick declares more than `serverFailureAlertsPerTick`, resolved once every server it
 * covers is back, also across a coordinator restart.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { testMeshConfig, type MeshConfig } from '../../mesh/base/config.ts';
import { massServerFailureKey } from '../../mesh/core/membership.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { Mesh, sid } from './coordinator-harness.ts';

/** Alerts each server only while at most two fail in one tick. */
const config: MeshConfig = { ...testMeshConfig, serverFailureAlertsPerTick: 2 };
const warmUntil = 10_000;

/** Nine servers, three per zone (a, b, c), nine regions, warmed up until `warmUntil`. */
function nineServers(): Mesh {
  const mesh = new Mesh({ config });
  for (const zone of ['a', 'b', 'c']) for (const n of [1, 2, 3]) mesh.register(`${zone}${n}`, zone);
  mesh.createRegions(Array.from({ length: 9 }, () => ({})));
  mesh.run(warmUntil);
  return mesh;
}

const openKeys = (mesh: Mesh): string[] => mesh.c.listAlerts({ state: 'open' }).map((a) => a.dedupKey).sort();

/** Runs until every listed server is declared failed; asserts they were declared in one tick. */
function failTogether(mesh: Mesh, ids: readonly string[]): void {
  const seen = mesh.mark();
  for (const id of ids) mesh.silence(id);
  mesh.run(mesh.now + 5000);
  const detections = seen().filter((e) => e.type === 'server_failure_detected');
  assert.deepEqual(detections.map((e) => 'serverId' in e && e.serverId).sort(), [...ids].sort());
  assert.equal(new Set(detections.map((e) => e.atMs)).size, 1, 'declared in one tick');
}

describe('failure alerts: one per server, or one for a mass failure', () => {
  test('two servers failing in one tick (the limit) get an alert each', () => {
    const mesh = nineServers();
    failTogether(mesh, ['a1', 'a2']);
    assert.deepEqual(openKeys(mesh).filter((k) => k.startsWith('server-failed') || k === massServerFailureKey),
      ['server-failed:a1', 'server-failed:a2']);
  });

  test('three in one tick: one critical mass-server-failure alert, published once, no alert per server', () => {
    const mesh = nineServers();
    const seen = mesh.mark();
    failTogether(mesh, ['a1', 'a2', 'a3']);
    const keys = openKeys(mesh);
    assert.ok(keys.includes(massServerFailureKey), keys.join(', '));
    assert.deepEqual(keys.filter((k) => k.startsWith('server-failed')), []);
    const alert = mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === massServerFailureKey);
    assert.equal(alert?.severity, 'critical');
    assert.equal(alert?.title, '3 servers failed at once');
    assert.match(alert?.message ?? '', /a: 3/);
    assert.match(alert?.message ?? '', /a1, a2, a3/);
    const published = seen().filter((e) => e.type === 'administrator_alert' && e.alert.dedupKey === massServerFailureKey);
    assert.equal(published.length, 1);
    assert.equal(mesh.c.metrics().failovers.total > 0, true, 'their regions are failed over as usual');
  });

  test('the mass alert resolves only when the last server it covers is back', () => {
    const mesh = nineServers();
    failTogether(mesh, ['a1', 'a2', 'a3']);
    mesh.restart('a1');
    mesh.restart('a2');
    mesh.run(mesh.now + 2000);
    assert.equal(mesh.c.server(sid('a2'))?.status, 'alive');
    assert.ok(openKeys(mesh).includes(massServerFailureKey), 'a3 is still failed');
    mesh.restart('a3');
    mesh.run(mesh.now + 2000);
    assert.equal(openKeys(mesh).includes(massServerFailureKey), false);
    const resolved = mesh.c.listAlerts({ state: 'resolved' }).find((a) => a.dedupKey === massServerFailureKey);
    assert.ok(resolved?.resolvedAtMs !== null, 'kept as history');
  });

  test('a server with an alert of its own does not hold the mass alert open', () => {
    const mesh = nineServers();
    failTogether(mesh, ['b1']);
    failTogether(mesh, ['a1', 'a2', 'a3']);
    for (const id of ['a1', 'a2', 'a3']) mesh.restart(id);
    mesh.run(mesh.now + 2000);
    assert.deepEqual(openKeys(mesh).filter((k) => k.startsWith('server-failed') || k === massServerFailureKey), ['server-failed:b1']);
  });

  test('after a coordinator restart the mass alert still resolves when its servers are back', () => {
    const before = nineServers();
    failTogether(before, ['b1']);
    failTogether(before, ['a1', 'a2', 'a3']);
    before.flush();
    const state = JSON.parse(JSON.stringify(before.c.exportState(before.now))) as CoreState;
    const mesh = Mesh.restartedFrom(before, state, before.now + 1000);
    assert.ok(openKeys(mesh).includes(massServerFailureKey), 'still open after the restart');
    for (const id of ['a1', 'a2']) mesh.restart(id);
    mesh.run(mesh.now + 2000);
    assert.ok(openKeys(mesh).includes(massServerFailureKey), 'a3 is still failed');
    mesh.restart('a3');
    mesh.run(mesh.now + 2000);
    assert.deepEqual(openKeys(mesh).filter((k) => k.startsWith('server-failed') || k === massServerFailureKey), ['server-failed:b1']);
  });
});

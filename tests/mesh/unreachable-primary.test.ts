/**
 * A player that cannot reach its primary says so (`unreachable_primary` with the epoch it knew):
 * the coordinator buffers the action instead of sending the player back to that primary, and
 * counts the report as evidence for suspicion, never as proof of a failure.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh, rid, sid, standardMesh } from './coordinator-harness.ts';

const warmUntil = 10_000;

function warm(): Mesh {
  const mesh = standardMesh();
  mesh.run(warmUntil);
  return mesh;
}

const statusOf = (mesh: Mesh, id: string) => mesh.c.records().servers.get(sid(id))?.status;

describe('Coordinator: a player reports its primary unreachable', () => {
  test('a report against the current epoch buffers the action, and the healthy primary collects it', () => {
    const mesh = warm();
    const action = { playerId: 'p1', seq: 7, payload: { n: 7 } };
    const buffered = mesh.c.submitAction(rid('region-1'), action, warmUntil + 10, { knownEpoch: 1 });
    assert.ok(buffered.ok, buffered.ok ? '' : buffered.detail);
    assert.equal(buffered.value.status, 'buffered');
    assert.equal(buffered.value.pending, 1);
    mesh.at(warmUntil + 20);
    const reply = mesh.hb('a1');
    assert.ok(reply.ok, 'a1 heartbeat answered');
    assert.equal(reply.value.regions.find((r) => r.regionId === 'region-1')?.actionsPending, 1);
    const collected = mesh.c.collectActions(rid('region-1'), sid('a1'), warmUntil + 30);
    assert.ok(collected.ok, 'the primary collects');
    assert.deepEqual(collected.value.actions.map((a) => [a.playerId, a.seq]), [['p1', 7]]);
  });

  test('without the report, or with one about an older epoch, the player is sent to the current primary', () => {
    const mesh = warm();
    const plain = mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq: 1, payload: null }, warmUntil + 10);
    assert.ok(!plain.ok && plain.code === 'region_healthy', 'no report: 409');
    mesh.silence('a1');
    mesh.run(warmUntil + 4000);
    const route = mesh.c.route(rid('region-1'));
    assert.equal(route?.epoch, 2, 'failed over to epoch 2');
    assert.notEqual(route?.primary, null);
    const stale = mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq: 1, payload: null }, mesh.now, { knownEpoch: 1 });
    assert.ok(!stale.ok, 'a report about epoch 1 is stale');
    assert.equal(stale.code, 'region_healthy');
    assert.deepEqual(stale.data, { primary: route?.primary, epoch: 2 });
    assert.equal(mesh.c.metrics().actions.pending, 0);
  });

  test('a report makes a late primary suspect sooner, but never fails it while its peers hear it', () => {
    const withReport = warm();
    const without = warm();
    for (const mesh of [withReport, without]) mesh.cutLink('a1'); // its peers still hear it
    withReport.at(warmUntil + 300);
    assert.ok(withReport.c.submitAction(rid('region-1'), { playerId: 'p1', seq: 1, payload: null }, warmUntil + 300,
      { knownEpoch: 1 }).ok, 'buffered');
    for (const mesh of [withReport, without]) mesh.run(warmUntil + 1100);
    assert.equal(statusOf(without, 'a1'), 'alive', 'one late heartbeat alone is not suspicious yet');
    assert.equal(statusOf(withReport, 'a1'), 'suspect', 'the player report is evidence');
    withReport.run(warmUntil + 20_000);
    assert.equal(statusOf(withReport, 'a1'), 'suspect', 'never proof: not failed while its peers hear it');
    assert.equal(withReport.c.metrics().failovers.total, 0);
    withReport.resume('a1');
    withReport.run(warmUntil + 22_000);
    assert.equal(statusOf(withReport, 'a1'), 'alive', 'its heartbeats clear the suspicion');
  });

  test('a report older than the primary\'s last heartbeat is no evidence', () => {
    const mesh = warm();
    assert.ok(mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq: 1, payload: null }, warmUntil, { knownEpoch: 1 }).ok, 'buffered');
    mesh.run(warmUntil + 1000); // a1 heartbeats at 11_000, after the report
    mesh.cutLink('a1');
    mesh.run(warmUntil + 2100);
    assert.equal(statusOf(mesh, 'a1'), 'alive');
  });
});

/**
 * Lineage of a region's state: only a server that still holds what it held as a replica may bring
 * an unavailable region back (re-adoption). Two ways in which the coordinator itself knows a former
 * replica no longer holds the state, each found by the simulation's lineage checker:
 *
 * - it gave the region to that server again as a new, syncing backup (the server had restarted
 *   empty, or dropped the region when it was taken from it), and the server never confirmed;
 * - it told that server to drop the region (a reply that does not list a region the server
 *   claimed), after which a claim of the region still in flight proves nothing.
 *
 * Driven by hand with the fake servers of coordinator-harness.ts (no delay, no loss).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { HeartbeatInput } from '../../mesh/core/heartbeat.ts';
import { Mesh, rid, sid } from './coordinator-harness.ts';

const region = rid('region-1');

/** Three servers in three zones, one region on all of them, replicated state at seq 100. */
function threeServers(): { mesh: Mesh; primary: string; backups: string[] } {
  const mesh = new Mesh();
  for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?');
  mesh.createRegions([{}]);
  const record = mesh.c.records().regions.get(region);
  assert.ok(record?.primary, 'region-1 has a primary');
  for (const id of ['a1', 'b1', 'c1']) mesh.setSeq(id, 'region-1', 100);
  mesh.run(10_000);
  return { mesh, primary: record.primary, backups: [...record.backups] };
}

/** The server crashes: it falls silent and its memory (every region it held) is gone. */
function crash(mesh: Mesh, id: string): void {
  mesh.server(id).held.clear();
  mesh.silence(id);
}

const record = (mesh: Mesh) => {
  const r = mesh.c.records().regions.get(region);
  assert.ok(r, 'region-1 exists');
  return r;
};

describe('Lineage: a former replica that lost the state cannot re-adopt the region', () => {
  test('a backup that restarted empty and was given the region again as a syncing backup', () => {
    const { mesh, primary, backups } = threeServers();
    const [lost, other] = backups as [string, string];
    crash(mesh, lost);
    crash(mesh, other);
    mesh.run(20_000);
    assert.equal(mesh.c.server(sid(lost))?.status, 'failed');
    assert.deepEqual(record(mesh).formerReplicas.toSorted(), [lost, other].toSorted(), 'both held the state when lost');

    // It comes back empty and, the only server with room, is given the region again as a syncing
    // backup. The primary crashes before it could copy anything.
    mesh.restart(lost);
    mesh.run(21_000);
    assert.equal(mesh.c.server(sid(lost))?.status, 'alive');
    assert.deepEqual([...record(mesh).syncing.keys()], [lost], 'given the region again as a syncing backup');
    crash(mesh, primary);
    mesh.run(22_000);
    assert.equal(mesh.server(lost).held.get(region)?.appliedSeq, 0, 'nothing to copy from a crashed primary');

    // The primary is declared failed: no confirmed backup is left, the syncing one is released and
    // the region is unavailable. The released server still claims the region in its next heartbeat.
    mesh.run(40_000);
    assert.equal(mesh.c.server(sid(primary))?.status, 'failed');
    const revived = mesh.ofType('failover_initiated').filter((e) => e.newPrimaryId === sid(lost));
    assert.deepEqual(revived, [], `${lost} holds nothing of region-1 and must not lead it`);
    assert.equal(record(mesh).phase, 'unavailable');
    assert.equal(record(mesh).primary, null);
    assert.deepEqual(record(mesh).formerReplicas.toSorted(), [primary, other].toSorted());
    assert.equal(mesh.server(lost).held.has(region), false, 'told to drop the region it holds nothing of');
  });

  test('a former replica told to drop the region, whose earlier claim of it arrives late', () => {
    const { mesh, staleClaim } = droppedThenUnavailable({ dropFirst: true });
    // A heartbeat it sent before it dropped the region, delivered only now (a slow link).
    mesh.at(17_010);
    const late = mesh.c.heartbeat(sid('b1'), staleClaim, 17_010);
    assert.ok(late.ok, 'late.ok');
    mesh.flush();
    assert.deepEqual(mesh.ofType('failover_initiated').filter((e) => e.newPrimaryId === sid('b1')), [],
      'b1 dropped region-1 when told to and must not lead it on an old claim');
    assert.equal(late.value.regions.some((a) => a.regionId === region), false);
    assert.equal(record(mesh).phase, 'unavailable');
  });

  test('control: the same former replica, never told to drop the region, brings it back', () => {
    const { mesh } = droppedThenUnavailable({ dropFirst: false });
    mesh.run(19_000);
    const back = mesh.ofType('failover_initiated').at(-1);
    assert.deepEqual([back?.newPrimaryId, back?.failedServerId], [sid('b1'), null]);
    assert.equal(mesh.server('b1').roleIn('region-1'), 'primary');
  });
});

/**
 * b1, a backup of region-1, is cut off at 10 000 and declared failed while a1 (primary) and c1 keep
 * the region: b1 is a former replica and still holds the state. a1 and c1 crash at 12 000 and are
 * declared failed by the timeout at 16 900 (the last tick before 5 s of silence), which leaves the
 * region unavailable. With `dropFirst`, b1 is heard again just before that tick, while the region still has a primary: it is
 * told to drop the region (the reply does not list it). `staleClaim` is the heartbeat b1 built just
 * before, still claiming region-1 with its state.
 */
function droppedThenUnavailable(options: { dropFirst: boolean }): { mesh: Mesh; staleClaim: HeartbeatInput } {
  const mesh = new Mesh();
  for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?');
  mesh.createRegions([{}]);
  assert.equal(record(mesh).primary, 'a1');
  assert.deepEqual(record(mesh).backups.toSorted(), ['b1', 'c1']);
  for (const id of ['a1', 'b1', 'c1']) mesh.setSeq(id, 'region-1', 100);
  mesh.run(10_000);
  mesh.silence('b1');
  mesh.run(12_000);
  assert.equal(mesh.c.server(sid('b1'))?.status, 'failed');
  assert.deepEqual(record(mesh).formerReplicas, ['b1']);
  crash(mesh, 'a1');
  crash(mesh, 'c1');
  mesh.run(16_800);
  assert.notEqual(record(mesh).phase, 'unavailable');
  const staleClaim = mesh.input(mesh.server('b1'));
  assert.deepEqual(staleClaim.regions.map((c) => [c.regionId, c.role, c.appliedSeq]), [[region, 'backup', 100]]);
  if (options.dropFirst) {
    mesh.resume('b1');
    mesh.at(16_850);
    mesh.hb('b1');
  }
  mesh.run(16_900);
  assert.equal(record(mesh).phase, 'unavailable', 'a1 and c1 failed at 16 900');
  if (options.dropFirst) {
    assert.equal(mesh.server('b1').held.has(region), false, 'b1 dropped region-1 as its reply told it');
    assert.deepEqual(record(mesh).formerReplicas.toSorted(), ['a1', 'c1']);
  } else {
    mesh.resume('b1');
  }
  return { mesh, staleClaim };
}


/**
 * The primary lease with the production timings: every reply that names a server primary grants
 * `primaryLeaseMs`, and no backup is promoted in place of a primary before its last grant plus the
 * lease plus `leaseDriftMarginMs`, even when the failure was confirmed sooner, nor, after a restart
 * of the coordinator, before the longest lease the previous run may have granted is over.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testMeshConfig } from '../../mesh/base/config.ts';
import { Mesh, rid, sid } from './coordinator-harness.ts';

const config = testMeshConfig;
const { primaryLeaseMs: lease, leaseDriftMarginMs: margin, tickIntervalMs: tick } = config;

function productionMesh(): Mesh {
  const mesh = new Mesh({ config });
  for (const id of ['a1', 'b1', 'c1', 'a2', 'b2', 'c2']) mesh.register(id, id[0] ?? '?');
  mesh.createRegions([{}]);
  mesh.setSeq('c1', 'region-1', 50);
  mesh.run(10_000);
  return mesh;
}

describe('primary leases', () => {
  test('a reply grants the lease to a primary and none to a server that leads no region', () => {
    const mesh = productionMesh();
    const primary = mesh.c.regionRecord(rid('region-1'))?.primary;
    assert.equal(primary, 'a1');
    assert.equal(mesh.server('a1').lastReply?.leaseMs, lease);
    assert.equal(mesh.server('b1').lastReply?.leaseMs, 0);
    assert.equal(mesh.server('c2').lastReply?.leaseMs, 0);
  });

  test('the default lease outlives one lost heartbeat and holds back a promotion past the failure\'s confirmation', () => {
    assert.ok(lease > config.heartbeatIntervalMs);
    const mesh = productionMesh();
    mesh.silence('a1'); // last heartbeat, and last grant, at 10 000
    const fence = 10_000 + lease + margin;
    let detectedAt = Infinity;
    for (let t = 10_000 + tick; t < fence; t += tick) {
      mesh.run(t);
      if (mesh.c.server(sid('a1'))?.status === 'failed') detectedAt = Math.min(detectedAt, t);
    }
    assert.ok(detectedAt < fence, `the failure is confirmed (${detectedAt}) before the lease is over (${fence})`);
    assert.deepEqual(mesh.ofType('failover_initiated'), [], 'no promotion while a1 may still serve');
    mesh.run(Math.ceil(fence / tick) * tick);
    const [initiated] = mesh.ofType('failover_initiated');
    assert.equal(initiated?.newPrimaryId, 'c1');
    assert.equal(initiated?.atMs, Math.ceil(fence / tick) * tick);
  });

  test('after a restart of the coordinator no backup is promoted before a lease granted just before it stopped is over', () => {
    const mesh = productionMesh();
    mesh.silence('a1');
    const state = JSON.parse(JSON.stringify(mesh.c.exportState(10_000))) as Parameters<typeof Mesh.restartedFrom>[1];
    const restartAt = 10_500;
    const restarted = Mesh.restartedFrom(mesh, state, restartAt);
    restarted.stallUntil(restartAt);
    let promotedAt = Infinity;
    for (let t = restartAt; t <= restartAt + 10_000 && promotedAt === Infinity; t += tick) {
      restarted.run(t);
      promotedAt = restarted.ofType('failover_initiated')[0]?.atMs ?? Infinity;
    }
    assert.ok(promotedAt >= restartAt + lease + margin, `promoted at ${promotedAt}`);
    assert.ok(promotedAt < Infinity, 'promoted in the end');
  });

  test('after a restart of the coordinator no lease is granted before the previous process\'s last lease plus margin is over', () => {
    const mesh = productionMesh();
    const state = JSON.parse(JSON.stringify(mesh.c.exportState(10_000))) as Parameters<typeof Mesh.restartedFrom>[1];
    const restartAt = 10_500;
    const restarted = Mesh.restartedFrom(mesh, state, restartAt);
    restarted.stallUntil(restartAt);
    const graceEnd = restartAt + lease + margin;
    const granted: { atMs: number; leaseMs: number }[] = [];
    for (let t = restartAt; t <= graceEnd + 2 * config.heartbeatIntervalMs; t += tick) {
      restarted.run(t);
      const reply = restarted.server('a1').lastReply;
      if (restarted.now % config.heartbeatIntervalMs === 0 && reply !== null) granted.push({ atMs: restarted.now, leaseMs: reply.leaseMs });
      const renewed = restarted.c.renewLease(sid('a1'), restarted.now);
      assert.ok(renewed.ok);
      assert.equal(renewed.value > 0, t >= graceEnd, `a session's renewal at ${t} (grace ends at ${graceEnd})`);
    }
    assert.ok(granted.length >= 3, 'a1 heartbeated during and after the grace');
    for (const g of granted) assert.equal(g.leaseMs > 0, g.atMs >= graceEnd, `reply at ${g.atMs}: lease ${g.leaseMs} (grace ends at ${graceEnd})`);
    assert.equal(restarted.c.regionRecord(rid('region-1'))?.primary, 'a1', 'the primary keeps its region: only its lease waits');
  });
});


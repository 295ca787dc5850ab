/**
 * The primary lease over a session: `Coordinator.renewLease` grants the short `sessionLeaseMs` to a
 * primary of an announced region (0 to anyone else), heartbeats and pushes that ask for it grant no
 * more, and no backup is promoted before the last grant plus the drift margin has run out.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { sid, standardMesh, type Mesh } from './coordinator-harness.ts';

const warmUntil = 10_000;

/** region-1 = a1 (primary), b1, c1; every server heartbeats over a session. */
function warm(): Mesh {
  const mesh = standardMesh();
  for (const id of mesh.servers.keys()) mesh.server(id).leaseMs = mesh.config.sessionLeaseMs;
  mesh.setSeq('c1', 'region-1', 50);
  mesh.run(warmUntil);
  return mesh;
}

/**
 * a1 renews its lease at 10,250, crashes (its session closes) 10 ms later, and its peers report it
 * silent since; the promotion may come at the fence: the renewal plus the session lease plus its
 * drift margin, the same share of the lease as on the heartbeat lease.
 */
function crashAfterRenewal(): { mesh: Mesh; fence: number } {
  const mesh = warm();
  const renewedAt = warmUntil + 250;
  mesh.at(renewedAt);
  assert.equal(mesh.c.renewLease(sid('a1'), renewedAt).ok, true);
  mesh.at(renewedAt + 10);
  mesh.silence('a1');
  mesh.c.sessionClosed(sid('a1'), mesh.now);
  mesh.at(mesh.now + mesh.config.sessionPeerSilenceMs);
  mesh.hb('b1');
  mesh.hb('c1');
  const { sessionLeaseMs, leaseDriftMarginMs, primaryLeaseMs } = mesh.config;
  return { mesh, fence: renewedAt + sessionLeaseMs + (sessionLeaseMs * leaseDriftMarginMs) / primaryLeaseMs };
}

describe('session leases', () => {
  test('renewLease grants sessionLeaseMs to a primary only; replies asking for it grant no more', () => {
    const mesh = warm();
    const { sessionLeaseMs } = mesh.config;
    assert.ok(sessionLeaseMs < mesh.config.primaryLeaseMs);
    assert.equal(mesh.server('a1').lastReply?.leaseMs, sessionLeaseMs, 'a session heartbeat reply');
    assert.deepEqual(mesh.c.renewLease(sid('a1'), mesh.now), { ok: true, value: sessionLeaseMs });
    assert.deepEqual(mesh.c.renewLease(sid('b1'), mesh.now), { ok: true, value: 0 }, 'a backup holds no lease');
    const pushed = mesh.c.assignment(sid('a1'), mesh.now, sessionLeaseMs);
    assert.equal(pushed.ok ? pushed.value.leaseMs : -1, sessionLeaseMs, 'a push over a session');
    assert.equal(mesh.c.renewLease(sid('nobody'), mesh.now).ok, false);
  });

  test('the promotion waits for the last renewal plus the margin, not for the last heartbeat', () => {
    const { mesh, fence } = crashAfterRenewal();
    mesh.run(fence - 1, { heartbeats: false });
    assert.equal(mesh.ofType('server_failure_detected')[0]?.serverId, 'a1', 'detected before the lease ran out');
    assert.deepEqual(mesh.ofType('failover_initiated'), [], 'the renewed lease may still run');
    mesh.run(fence + mesh.config.tickIntervalMs, { heartbeats: false });
    const [failover] = mesh.ofType('failover_initiated');
    assert.equal(failover?.newPrimaryId, 'c1');
    assert.ok((failover?.atMs ?? 0) >= fence);
  });

  test('a failed server is granted no lease', () => {
    const mesh = warm();
    mesh.silence('a1');
    mesh.run(warmUntil + 6000);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'failed');
    assert.deepEqual(mesh.c.renewLease(sid('a1'), mesh.now), { ok: true, value: 0 });
  });
});

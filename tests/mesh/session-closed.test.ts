/**
 * `Coordinator.sessionClosed`: a session that closes without a `leave` is evidence, not proof. The
 * server is suspect at once; a replication peer that reports it silent since before the close
 * confirms the crash within a tick; a server its peers still hear stays suspect until it reconnects
 * and nothing fails over; with no peer evidence the timeout path decides.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { testMeshConfig } from '../../mesh/base/config.ts';
import { expectedDetection, Mesh, rid, sid, warmSessionMesh } from './coordinator-harness.ts';

const warmUntil = 10_000;
const tick = testMeshConfig.tickIntervalMs;
const confirmAfter = testMeshConfig.sessionPeerSilenceMs;

/**
 * Standard mesh, warmed up: region-1 = a1 (primary), b1, c1 (backups); c1 ahead of b1. Every
 * server heartbeats over a session: its replies grant the short session lease.
 */
function warm(): Mesh {
  return warmSessionMesh(warmUntil, (mesh) => {
    mesh.setSeq('c1', 'region-1', 50);
    mesh.setSeq('b1', 'region-1', 40);
  });
}

/** The peers of region-1's primary send a heartbeat at once, as a server does when a peer goes silent. */
function peersReport(mesh: Mesh): void {
  mesh.hb('b1');
  mesh.hb('c1');
}

describe('Coordinator.sessionClosed', () => {
  test('a crashed process: suspect at once, failed over at the first tick after its peers report it silent', () => {
    const mesh = warm();
    const closedAt = warmUntil + 20;
    const lastHeartbeatAt = mesh.c.server(sid('a1'))!.lastHeartbeatAtMs!;
    mesh.at(closedAt);
    mesh.silence('a1');
    assert.equal(mesh.c.sessionClosed(sid('a1'), mesh.now).ok, true);
    mesh.flush();
    assert.equal(mesh.c.server(sid('a1'))?.status, 'suspect', 'suspect before any tick');
    assert.deepEqual(mesh.ofType('server_status_changed').at(-1), {
      type: 'server_status_changed', serverId: 'a1', from: 'alive', to: 'suspect', seq: mesh.ofType('server_status_changed').at(-1)?.seq, atMs: closedAt,
    });
    mesh.run(closedAt + tick, { heartbeats: false });
    assert.deepEqual(mesh.ofType('server_failure_detected'), [], 'no peer evidence yet: still only suspect');
    mesh.at(closedAt + confirmAfter);
    peersReport(mesh);
    mesh.run(closedAt + confirmAfter + tick, { heartbeats: false });
    const [detected] = mesh.ofType('server_failure_detected');
    assert.equal(detected?.serverId, 'a1');
    assert.equal(detected?.reason, 'peer_confirmed');
    assert.ok((detected?.atMs ?? Infinity) <= closedAt + confirmAfter + tick, `${detected?.atMs}`);
    assert.ok((detected?.atMs ?? 0) < expectedDetection(testMeshConfig, warmUntil).atMs, 'sooner than the phi path');
    // a1's last reply granted the session lease: no promotion before it and its drift margin (the
    // same share of the lease as on the heartbeat lease) ran out, and at the first tick after.
    const { sessionLeaseMs, leaseDriftMarginMs, primaryLeaseMs } = mesh.config;
    const fence = lastHeartbeatAt + sessionLeaseMs + (sessionLeaseMs * leaseDriftMarginMs) / primaryLeaseMs;
    mesh.run(fence - 1, { heartbeats: false });
    assert.deepEqual(mesh.ofType('failover_initiated'), [], 'the old lease may still run');
    mesh.run(fence + tick, { heartbeats: false });
    const [failover] = mesh.ofType('failover_initiated');
    assert.equal(failover?.newPrimaryId, 'c1');
    assert.ok((failover?.atMs ?? 0) >= fence, `${failover?.atMs}`);
  });

  test('a peer report shorter than sessionPeerSilenceMs confirms nothing', () => {
    const mesh = warm();
    mesh.at(warmUntil + 20);
    mesh.silence('a1');
    mesh.c.sessionClosed(sid('a1'), mesh.now);
    mesh.at(warmUntil + 20 + confirmAfter - 1);
    peersReport(mesh);
    mesh.run(warmUntil + 20 + confirmAfter + tick, { heartbeats: false });
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'suspect');
  });

  test('reports that arrived before the close do not count, however long the silence they report', () => {
    const mesh = warm();
    mesh.at(warmUntil + 20);
    mesh.silence('a1');
    mesh.at(warmUntil + 20 + 3 * confirmAfter);
    peersReport(mesh);
    mesh.at(mesh.now + 1);
    mesh.c.sessionClosed(sid('a1'), mesh.now);
    mesh.run(mesh.now + tick, { heartbeats: false });
    assert.deepEqual(mesh.ofType('server_failure_detected'), [], 'the reports predate the close');
    peersReport(mesh);
    mesh.run(mesh.now + tick, { heartbeats: false });
    assert.equal(mesh.ofType('server_failure_detected')[0]?.reason, 'peer_confirmed');
  });

  test('a closed session of a server its peers still hear is a hiccup: suspect, no failover, alive once it reconnects', () => {
    const mesh = warm();
    mesh.at(warmUntil + 20);
    mesh.cutLink('a1');
    mesh.c.sessionClosed(sid('a1'), mesh.now);
    mesh.at(warmUntil + 20 + 3 * confirmAfter);
    peersReport(mesh);
    mesh.run(warmUntil + 900, { heartbeats: false });
    assert.equal(mesh.c.server(sid('a1'))?.status, 'suspect');
    mesh.resume('a1');
    mesh.hb('a1');
    mesh.run(warmUntil + 30_000);
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    assert.deepEqual(mesh.ofType('failover_initiated'), []);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'alive');
    assert.equal(mesh.c.metrics().falseFailovers, 0);
  });

  test('every session cut at once while all servers stay healthy: nothing fails over', () => {
    const mesh = warm();
    mesh.at(warmUntil + 20);
    for (const id of mesh.servers.keys()) mesh.c.sessionClosed(id, mesh.now);
    // Every server reconnects within a second (jittered back-off) and heartbeats as usual.
    mesh.run(warmUntil + 60_000);
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    for (const id of mesh.servers.keys()) assert.equal(mesh.c.server(id)?.status, 'alive', id);
  });

  test('without peer evidence the timeout path decides, not the closed session', () => {
    const mesh = warm();
    const spare = sid('c2');
    assert.equal(mesh.c.hostedBy(spare).size, 0, 'c2 replicates nothing, so no peer watches it');
    const lastHeartbeat = mesh.c.serverRecord(spare)?.detector.lastHeartbeatAtMs ?? 0;
    mesh.at(warmUntil + 20);
    mesh.silence('c2');
    mesh.c.sessionClosed(spare, mesh.now);
    mesh.run(lastHeartbeat + testMeshConfig.failureTimeoutMs - 2 * tick);
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    assert.equal(mesh.c.server(spare)?.status, 'suspect');
    mesh.run(lastHeartbeat + testMeshConfig.failureTimeoutMs);
    assert.equal(mesh.ofType('server_failure_detected')[0]?.reason, 'timeout');
  });

  test('a heartbeat after the close clears the evidence; draining and unknown servers are left alone', () => {
    const mesh = warm();
    mesh.at(warmUntil + 20);
    mesh.c.sessionClosed(sid('a1'), mesh.now);
    mesh.at(warmUntil + 40);
    mesh.hb('a1');
    mesh.run(warmUntil + 200);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'alive');
    assert.equal(mesh.c.leave(sid('b2'), mesh.now).ok, true);
    mesh.c.sessionClosed(sid('b2'), mesh.now);
    assert.equal(mesh.c.server(sid('b2'))?.status, 'draining');
    const unknown = mesh.c.sessionClosed(sid('nobody'), mesh.now);
    assert.equal(unknown.ok ? 'ok' : unknown.code, 'unknown_server');
    assert.equal(mesh.c.replication(rid('region-1'))?.primary?.serverId, 'a1');
  });
});

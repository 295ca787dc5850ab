/**
 * Heartbeats a reply asked for sooner than the regular interval (a failover or a backup sync waits
 * on the server) must not distort the detector's expectation of the regular rhythm: a server that
 * heartbeated at the expedited cadence for a while and then crashed is suspected as soon after its
 * last heartbeat as one that never did. Before the fix its window mixed 200 ms and 1,000 ms
 * intervals, and suspicion came about 2 s after the last heartbeat instead of about 1.4 s.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { standardMesh, type Mesh } from './coordinator-harness.ts';
import type { ServerId } from '../../mesh/base/types.ts';

/**
 * Runs ticks from the mesh's current time up to `untilMs`: every up server heartbeats on whole
 * intervals, and `eager` also heartbeats whenever its last reply asked for an earlier heartbeat.
 */
function runAsked(mesh: Mesh, eager: string, untilMs: number): void {
  const { tickIntervalMs: tick, heartbeatIntervalMs: interval } = mesh.config;
  let lastEager = mesh.now;
  for (let t = mesh.now + tick; t <= untilMs; t += tick) {
    mesh.at(t);
    if (t % interval === 0) {
      for (const fake of mesh.servers.values()) if (fake.up) mesh.hb(fake.id);
      lastEager = t;
    } else {
      const asked = mesh.server(eager).lastReply?.heartbeatIntervalMs ?? interval;
      if (mesh.server(eager).up && t - lastEager >= asked) {
        mesh.hb(eager);
        lastEager = t;
      }
    }
    mesh.faults.tick(t);
    mesh.flush();
  }
  mesh.stallUntil(untilMs + tick);
}

/** Time from the server's last heartbeat to the first tick that sees it suspect (or failed). */
function suspicionDelay(mesh: Mesh, id: ServerId, lastHeartbeatMs: number): number {
  for (let t = mesh.now + mesh.config.tickIntervalMs; t <= mesh.now + 6_000; t += mesh.config.tickIntervalMs) {
    mesh.run(t);
    if (mesh.c.server(id)?.status !== 'alive') return t - lastHeartbeatMs;
  }
  return Infinity;
}

describe('the detector keeps the requested cadence apart from the regular one', () => {
  for (const expedited of [false, true]) {
    test(`a backup ${expedited ? 'asked for 200 ms heartbeats for 20 s' : 'at the regular cadence'}, then crashed: suspect about 1.4 s after its last heartbeat`, () => {
      const mesh = standardMesh();
      mesh.run(30_000);
      const region = [...mesh.c.records().regions.values()][0];
      assert.ok(region?.primary && region.backups[0]);
      const primary = region.primary;
      const backup = region.backups[0];
      // The primary loses its link to the coordinator only: its peers still hear it, so it stays
      // suspect (never failed), and the coordinator asks its backups for expedited heartbeats.
      if (expedited) mesh.cutLink(primary);
      runAsked(mesh, backup, 50_000);
      if (expedited) assert.equal(mesh.server(backup).lastReply?.heartbeatIntervalMs, mesh.config.expeditedHeartbeatIntervalMs);
      mesh.resume(primary);
      runAsked(mesh, backup, 53_000);
      assert.equal(mesh.server(backup).lastReply?.heartbeatIntervalMs, mesh.config.heartbeatIntervalMs);
      mesh.silence(backup);
      const delay = suspicionDelay(mesh, backup, 53_000);
      assert.ok(delay >= 1_300 && delay <= 1_500, `suspected ${delay} ms after the last heartbeat`);
    });
  }
});

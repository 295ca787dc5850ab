import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Coordinator } from '../../mesh/core/coordinator.ts';
import type { MeshConfig } from '../../mesh/base/config.ts';
import { defaultRealCrashMs } from '../../mesh/faults/faults.ts';
import { massServerFailureKey } from '../../mesh/core/membership.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { SeededRandom } from '../../mesh/runtime/random.ts';
import { immediateDurability, MeshRuntime } from '../../mesh/runtime/runtime.ts';
import { setupTestMesh } from '../../mesh/simulation/setup.ts';
import { Mesh, expectedDetection, harnessConfig, rid, sid, standardMesh } from './coordinator-harness.ts';
import { FaultLayer } from '../../mesh/faults/fault-layer.ts';

/*
 * Timeline used throughout. Servers register at 0 and heartbeat at 1000, 2000, ...; ticks every
 * 100 ms. A primary silenced right after its heartbeat at 10 000 is reported silent by its peers
 * from their heartbeats at 11 000 on, so it is failed, peer-confirmed, at the first tick at which
 * its phi has reached the suspect threshold (11 500 with the defaults of this writing: phi 3,
 * 100 ms pause, 100 ms minimum deviation). `expectedDetection` replays that history on a bare
 * detector to find the tick, so the scenarios follow the detector's tuning;
 * the target is detection within 3 s. Without reporting peers it would be failed by the
 * timeout at 10 000 + failureTimeoutMs.
 */
const warmUntil = 10_000;
const expected = expectedDetection(harnessConfig, warmUntil);
const detectedAt = expected.atMs;

test('the expected detection is peer-confirmed, within the 3 s target, and leaves room for the scenarios below', () => {
  assert.equal(expected.reason, 'peer_confirmed');
  assert.ok(detectedAt > warmUntil + harnessConfig.heartbeatIntervalMs - 1 && detectedAt <= warmUntil + 1800, `${detectedAt}`);
});

/** Standard mesh, warmed up, with region-1 = a1 (primary), b1, c1 (backups); c1 ahead of b1. */
function crashReady(config?: MeshConfig): Mesh {
  const mesh = standardMesh(config === undefined ? {} : { config });
  mesh.setSeq('c1', 'region-1', 50);
  mesh.setSeq('b1', 'region-1', 40);
  mesh.run(warmUntil);
  return mesh;
}

describe('Coordinator: registration and region creation', () => {
  test('server ids are generated around explicit ones, and a taken id is refused', () => {
    const mesh = new Mesh();
    assert.ok(mesh.c.registerServer({ id: 'srv-2', address: 'x', zone: 'a', capacity: 1 }, 0).ok, 'registerServer accepted');
    const first = mesh.c.registerServer({ address: 'y', zone: 'a', capacity: 1 }, 5);
    const second = mesh.c.registerServer({ address: 'z', zone: 'b', capacity: 1 }, 6);
    assert.ok(first.ok && second.ok, 'first.ok && second.ok');
    assert.equal(first.value.serverId, 'srv-1');
    assert.equal(second.value.serverId, 'srv-3', 'srv-2 is taken');
    assert.equal(first.value.status, 'alive');
    assert.equal(first.value.registeredAtMs, 5);
    const duplicate = mesh.c.registerServer({ id: 'srv-1', address: 'w', zone: 'c', capacity: 1 }, 7);
    assert.ok(!duplicate.ok, '!duplicate.ok');
    assert.equal(duplicate.code, 'duplicate_server');
    assert.equal(mesh.c.servers().length, 3);
    const stranger = mesh.c.heartbeat(sid('nobody'), { incarnation: 'x', players: 0, regions: [], peers: [] }, 8);
    assert.ok(!stranger.ok, '!stranger.ok');
    assert.equal(stranger.code, 'unknown_server');
  });

  test('regions get ids, a primary and two backups in three distinct zones, epoch 1, active', () => {
    const mesh = standardMesh({ regions: [{}, { id: 'custom', critical: true, players: 7 }, {}] });
    const regions = mesh.c.regions();
    assert.deepEqual(regions.map((r) => r.regionId), ['region-1', 'custom', 'region-2']);
    for (const r of regions) {
      assert.equal(r.state, 'active');
      assert.equal(r.epoch, 1);
      assert.equal(r.backups.length, 2);
      const zones = [r.primary?.serverId, ...r.backups.map((b) => b.serverId)].map((id) => mesh.c.server(sid(String(id)))?.zone);
      assert.equal(new Set(zones).size, 3, `${r.regionId} zones ${zones.join(',')}`);
    }
    assert.equal(mesh.c.replication(rid('custom'))?.critical, true);
    assert.equal(mesh.c.replication(rid('custom'))?.players, 7);
    // All loads are equal at first, so the lowest ids win: a1 leads region-1, backed by b1 and c1.
    assert.equal(mesh.c.replication(rid('region-1'))?.primary?.serverId, 'a1');
    assert.deepEqual(mesh.c.replication(rid('region-1'))?.backups.map((b) => b.serverId), ['b1', 'c1']);
    assert.equal(mesh.c.status(0).status, 'healthy');
    assert.equal(mesh.c.metrics().replicationCoverage, 1);
  });

  test('a duplicate region id (existing or within the batch) is refused and changes nothing', () => {
    const mesh = standardMesh();
    mesh.flush();
    for (const batch of [[{ id: 'region-1' }], [{ id: 'x' }, { id: 'x' }], [{}, { id: 'region-1' }]]) {
      const result = mesh.c.createRegions(batch, 1);
      assert.ok(!result.ok, '!result.ok');
      assert.equal(result.code, 'duplicate_region');
    }
    assert.equal(mesh.c.regions().length, 1);
    assert.deepEqual(mesh.c.drain(), [], 'no event, no write');
    const next = mesh.c.createRegions([{}], 2);
    assert.ok(next.ok, 'next.ok');
    assert.equal(next.value[0]?.id, 'region-2', 'refused batches consumed no id');
  });

  test('no_capacity: a batch needing more primaries than free slots is refused and changes nothing', () => {
    const mesh = new Mesh();
    mesh.register('a1', 'a', 2);
    mesh.register('b1', 'b', 1);
    mesh.flush();
    const refused = mesh.c.createRegions([{}, {}, {}, {}], 0);
    assert.ok(!refused.ok, '!refused.ok');
    assert.equal(refused.code, 'no_capacity');
    assert.match(refused.detail, /3 free slot/);
    assert.equal(mesh.c.regions().length, 0);
    assert.deepEqual(mesh.c.drain(), []);
    assert.equal(mesh.c.server(sid('a1'))?.primaries, 0);
    assert.ok(mesh.c.createRegions([{}, {}, {}], 0).ok, 'three fit');
  });

  test('a region created with fewer servers than replicas is under-replicated and alerted', () => {
    const mesh = new Mesh();
    mesh.register('a1', 'a');
    mesh.register('b1', 'b');
    mesh.createRegions([{}]);
    const view = mesh.c.replication(rid('region-1'));
    assert.equal(view?.state, 'under_replicated');
    assert.equal(view?.backups.length, 1);
    // Recovery looks for room at the next tick and alerts only when it finds none.
    mesh.c.tick(mesh.now);
    const alert = mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'region-under-replicated:region-1');
    assert.equal(alert?.severity, 'warning');
  });

  test('a region created under-replicated is re-replicated once a server with room registers (regression)', () => {
    const mesh = new Mesh();
    mesh.register('a1', 'a');
    mesh.register('b1', 'b');
    mesh.createRegions([{}]);
    mesh.run(3000);
    mesh.register('c1', 'c');
    mesh.run(6000);
    const view = mesh.c.replication(rid('region-1'));
    assert.deepEqual(view?.backups.map((b) => b.serverId).sort(), ['b1', 'c1']);
    assert.equal(view?.state, 'active');
  });

  test('one batch places every region it can: a server set aside for one region still serves the next (regression)', () => {
    const mesh = new Mesh();
    mesh.register('a-big', 'a', 100);
    mesh.register('a-small', 'a', 3);
    mesh.register('b1', 'b', 10);
    mesh.createRegions([{}]);
    mesh.createRegions([{}, {}]);
    // Two zones for three replicas: every region needs one same-zone pair. a-big has 97 free slots.
    for (const r of mesh.c.regions()) assert.equal(r.state, 'active', `${r.regionId} is ${r.state}`);
  });
});

describe('Coordinator: failover of a crashed primary', () => {
  test('the failed primary\'s replicated progress is dropped when the failover completes, not in the tick that fails it', () => {
    const mesh = crashReady();
    const progress = () => mesh.c.records().regions.get(rid('region-1'))?.appliedSeq;
    assert.ok(progress()?.has(sid('a1')));
    mesh.silence('a1');
    mesh.run(detectedAt);
    assert.equal(mesh.ofType('failover_initiated').length, 1);
    assert.ok(progress()?.has(sid('a1')), 'left for later: the failure tick does not stop for it');
    mesh.run(12_050);
    assert.equal(mesh.ofType('failover_completed').length, 1);
    assert.deepEqual([...(progress()?.keys() ?? [])].sort(), ['b1', 'c1']);
  });

  test('detection, promotion held until durable, acknowledgement, metrics', () => {
    const mesh = crashReady();
    mesh.autoDurable = false;
    mesh.makeDurable();
    const durableBefore = mesh.lastPersistSeq;
    mesh.silence('a1');
    mesh.run(detectedAt - 100);
    assert.deepEqual(mesh.ofType('server_failure_detected'), [], 'phi is still below the threshold');
    mesh.run(detectedAt);
    const [detected] = mesh.ofType('server_failure_detected');
    assert.equal(detected?.serverId, 'a1');
    assert.equal(detected?.reason, 'peer_confirmed');
    assert.equal(detected?.lastHeartbeatAtMs, warmUntil);
    assert.equal(detected?.atMs, detectedAt);
    const [initiated] = mesh.ofType('failover_initiated');
    assert.deepEqual({ ...initiated, seq: 0 }, {
      type: 'failover_initiated', regionId: 'region-1', failedServerId: 'a1', newPrimaryId: 'c1', epoch: 2,
      seq: 0, atMs: detectedAt,
    }, 'c1 has the highest appliedSeq');
    assert.ok((detected?.seq ?? 0) < (initiated?.seq ?? 0), 'detected before initiated');
    assert.equal(mesh.c.server(sid('a1'))?.status, 'failed');
    const alert = mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'server-failed:a1');
    assert.equal(alert?.severity, 'warning');
    assert.equal(alert?.raisedAtMs, detectedAt);

    // Not durable yet: the promoted backup is still told it is a backup, players see no primary.
    mesh.run(12_000);
    assert.equal(mesh.server('c1').roleIn('region-1'), 'backup');
    assert.equal(mesh.server('c1').lastReply?.regions[0]?.epoch, 1);
    assert.equal(mesh.c.route(rid('region-1'))?.primary, null);
    assert.equal(mesh.c.route(rid('region-1'))?.epoch, 1);
    assert.equal(mesh.c.replication(rid('region-1'))?.epoch, 2, 'the epoch itself moved');
    mesh.c.markDurable(durableBefore);
    mesh.hb('c1');
    assert.equal(mesh.server('c1').roleIn('region-1'), 'backup', 'an older durable mark releases nothing');
    assert.deepEqual(mesh.ofType('failover_completed'), []);

    // Durable: c1 is told it is primary at epoch 2; its heartbeat at epoch 2 completes the failover.
    mesh.makeDurable();
    mesh.at(12_050);
    mesh.hb('c1');
    assert.equal(mesh.server('c1').roleIn('region-1'), 'primary');
    assert.equal(mesh.server('c1').held.get(rid('region-1'))?.epoch, 2);
    const [completed] = mesh.ofType('failover_completed');
    assert.equal(completed?.regionId, 'region-1');
    assert.equal(completed?.newPrimaryId, 'c1');
    assert.equal(completed?.epoch, 2);
    assert.equal(completed?.recoveryMs, 12_050 - warmUntil);
    assert.equal(mesh.c.route(rid('region-1'))?.primary?.serverId, 'c1');

    const metrics = mesh.c.metrics();
    assert.deepEqual(metrics.failovers, { total: 1, completed: 1, in_progress: 0, failed: 0 });
    assert.equal(metrics.detectionMs.max, detectedAt - warmUntil);
    assert.equal(metrics.recoveryMs.max, 12_050 - warmUntil);
    assert.equal(metrics.falseFailovers, 0);
    const record = metrics.recent[0];
    assert.equal(record?.failedAtMs, warmUntil);
    assert.equal(record?.detectedAtMs, detectedAt);
    assert.equal(record?.promotedAtMs, detectedAt);
    assert.equal(record?.completedAtMs, 12_050);
    assert.equal(record?.outcome, 'completed');
    assert.equal(mesh.c.replication(rid('region-1'))?.lastFailover?.id, record?.id);
  });

  test('a replacement backup is assigned once the new primary acknowledged, in a zone the region does not use, and confirmed by its heartbeat', () => {
    const mesh = crashReady();
    mesh.silence('a1');
    mesh.run(detectedAt);
    // A new backup copies from the primary: nothing is assigned while c1 has not acknowledged.
    assert.deepEqual(mesh.c.replication(rid('region-1'))?.backups.map((b) => [b.serverId, b.syncing]), [['b1', false]]);
    mesh.run(12_000); // c1 acknowledges by its heartbeat at 12 000; the tick that follows assigns
    const view = mesh.c.replication(rid('region-1'));
    assert.equal(view?.primary?.acknowledged, true);
    // c1 (zone c) leads, b1 (zone b) backs up: the third replica goes to zone a, where a1 failed.
    assert.deepEqual(view?.backups.map((b) => [b.serverId, b.syncing]), [['b1', false], ['a2', true]]);
    assert.deepEqual(mesh.ofType('backup_created'), []);
    mesh.run(14_000);
    const created = mesh.ofType('backup_created');
    assert.deepEqual(created.map((e) => [e.regionId, e.backupServerId]), [['region-1', 'a2']]);
    assert.equal(mesh.server('a2').roleIn('region-1'), 'backup');
    const after = mesh.c.replication(rid('region-1'));
    assert.equal(after?.state, 'active');
    assert.equal(after?.primary?.acknowledged, true);
    assert.deepEqual(after?.backups.map((b) => b.syncing), [false, false]);
    assert.equal(mesh.c.status(14_000).regions.active, 1);
  });

  test('fencing: the partitioned old primary returns claiming epoch 1 and is told it is demoted', () => {
    const mesh = crashReady();
    const fault = mesh.faults.inject({ target: { serverId: sid('a1') }, mode: 'partition', durationMs: 20_000 }, warmUntil);
    assert.ok(fault.ok, 'fault.ok');
    mesh.run(detectedAt);
    // Its heartbeats were dropped by the overlay; its peers' sightings were replaced by silence.
    const dropped = mesh.server('a1').lastResult;
    assert.ok(dropped && !dropped.ok, 'dropped && !dropped.ok');
    assert.equal(dropped.code, 'heartbeat_dropped');
    assert.equal(mesh.ofType('server_failure_detected')[0]?.reason, 'peer_confirmed');
    mesh.run(30_000); // the partition healed at 30 000
    const reply = mesh.server('a1').lastReply;
    assert.ok(reply, 'reply');
    assert.deepEqual(reply.demoted, [{ regionId: 'region-1', epoch: 2 }]);
    assert.equal(reply.regions.some((r) => r.regionId === 'region-1'), false);
    assert.equal(mesh.server('a1').held.has(rid('region-1')), false, 'it dropped the region');
    assert.equal(mesh.c.server(sid('a1'))?.status, 'alive');
    assert.equal(mesh.c.metrics().falseFailovers, 0, 'the failure was injected');
    assert.equal(mesh.c.replication(rid('region-1'))?.primary?.serverId, 'c1');
    const open = mesh.c.listAlerts({ state: 'open' }).map((a) => a.dedupKey);
    assert.equal(open.includes('server-failed:a1'), false, 'resolved on return');
  });

  test('an old primary returning on its own (same process, no injected fault) is fenced and counted as a false failover', () => {
    const mesh = crashReady();
    mesh.silence('a1');
    mesh.run(20_000);
    mesh.resume('a1');
    mesh.run(21_000);
    assert.deepEqual(mesh.server('a1').lastReply?.demoted, [{ regionId: 'region-1', epoch: 2 }]);
    assert.equal(mesh.c.metrics().falseFailovers, 1);
  });

  test('a backup claiming primary is told it is demoted', () => {
    const mesh = crashReady();
    const held = mesh.server('b1').held.get(rid('region-1'));
    assert.ok(held, 'held');
    held.role = 'primary';
    const result = mesh.hb('b1');
    assert.ok(result.ok, 'result.ok');
    assert.deepEqual(result.value.demoted, [{ regionId: 'region-1', epoch: 1 }]);
    assert.equal(mesh.server('b1').roleIn('region-1'), 'backup');
  });

  test('a promotion not acknowledged in time is aborted and the next backup is promoted at a higher epoch', () => {
    const mesh = crashReady();
    mesh.server('c1').frozen = true; // c1 keeps heartbeating but never applies its promotion
    mesh.silence('a1');
    mesh.run(detectedAt + harnessConfig.promotionAckTimeoutMs - 100);
    assert.deepEqual(mesh.ofType('failover_aborted'), []);
    const abortAt = detectedAt + harnessConfig.promotionAckTimeoutMs;
    mesh.run(abortAt);
    const [aborted] = mesh.ofType('failover_aborted');
    assert.equal(aborted?.serverId, 'c1');
    assert.equal(aborted?.epoch, 2);
    assert.equal(aborted?.atMs, abortAt);
    // c1 received replies naming it primary (it only never applied them), each granting a lease:
    // b1 is promoted once the last of them, at c1's last heartbeat, is over.
    const lastGrant = Math.floor(abortAt / 1000) * 1000;
    const promotedAt = lastGrant + harnessConfig.primaryLeaseMs + harnessConfig.leaseDriftMarginMs;
    mesh.run(promotedAt - 100);
    assert.equal(mesh.ofType('failover_initiated').length, 1, 'no promotion while the aborted primary may hold a lease');
    mesh.run(promotedAt);
    const initiated = mesh.ofType('failover_initiated');
    assert.deepEqual(initiated.map((e) => [e.newPrimaryId, e.epoch, e.failedServerId, e.atMs]),
      [['c1', 2, 'a1', detectedAt], ['b1', 3, 'a1', promotedAt]]);
    const stuck = mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'failover-stuck:region-1');
    assert.equal(stuck?.severity, 'warning');
    const ackAt = Math.ceil(promotedAt / 1000) * 1000;
    mesh.run(ackAt); // b1 heartbeats, learns it is primary at epoch 3 and acknowledges
    const [completed] = mesh.ofType('failover_completed');
    assert.equal(completed?.newPrimaryId, 'b1');
    assert.equal(completed?.epoch, 3);
    const record = mesh.c.metrics().recent[0];
    assert.equal(mesh.c.metrics().failovers.total, 1, 'one failover, two promotions');
    assert.equal(record?.epoch, 3);
    assert.equal(record?.newPrimaryId, 'b1');
    assert.equal(record?.promotedAtMs, promotedAt);
    assert.equal(record?.recoveryMs, ackAt - warmUntil);
    assert.equal(mesh.c.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'failover-stuck:region-1'), false);
  });

  test('a live server that comes back with a new incarnation has restarted: failed at once, failed over at the next tick', () => {
    const mesh = crashReady();
    mesh.at(10_500);
    mesh.restart('a1');
    mesh.hb('a1');
    const [detected] = mesh.ofType('server_failure_detected');
    assert.equal(detected?.reason, 'restarted');
    assert.equal(detected?.atMs, 10_500);
    assert.equal(detected?.lastHeartbeatAtMs, warmUntil);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'alive', 'the new process is spare capacity at once');
    assert.deepEqual(mesh.ofType('failover_initiated'), [], 'acting waits for the tick');
    mesh.run(10_500);
    const [initiated] = mesh.ofType('failover_initiated');
    assert.equal(initiated?.regionId, 'region-1');
    assert.equal(initiated?.newPrimaryId, 'c1');
    assert.equal(initiated?.epoch, 2);
    assert.equal(mesh.c.metrics().detectionMs.max, 500);
    assert.equal(mesh.c.metrics().falseFailovers, 0);
  });
});

describe('Coordinator: suspicion without failure', () => {
  test('a server that only lost its link to the coordinator stays suspect while its peers hear it: no failover', () => {
    const mesh = crashReady();
    mesh.cutLink('a1');
    mesh.run(40_000);
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    assert.deepEqual(mesh.ofType('failover_initiated'), []);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'suspect');
    assert.equal(mesh.c.replication(rid('region-1'))?.primary?.serverId, 'a1');
    mesh.resume('a1');
    mesh.run(41_000);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'alive');
    assert.equal(mesh.c.metrics().falseFailovers, 0);
  });

  test('a failed server that restarts (new incarnation, nothing held) becomes spare capacity, not a false failover', () => {
    const mesh = crashReady();
    mesh.silence('a1');
    mesh.run(13_000);
    mesh.restart('a1');
    mesh.run(14_000);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'alive');
    assert.equal(mesh.ofType('server_failure_detected').length, 1);
    assert.equal(mesh.c.metrics().falseFailovers, 0);
    assert.deepEqual(mesh.server('a1').lastReply?.demoted, []);
    assert.equal(mesh.c.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'server-failed:a1'), false);
  });
});

describe('Coordinator: losing every replica', () => {
  test('unavailable with a critical alert; a former replica heartbeating its claim brings the region back', () => {
    const mesh = crashReady();
    for (const id of ['a1', 'b1', 'c1']) mesh.silence(id);
    // No surviving peer reports on them: they are failed by the timeout, at the last tick before
    // 5000 ms of silence after 10 000 (the tick at 15 000 would be too late by nothing, so 14 900).
    mesh.run(14_800);
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    mesh.run(14_900);
    assert.deepEqual(mesh.ofType('server_failure_detected').map((e) => [e.serverId, e.reason]),
      [['a1', 'timeout'], ['b1', 'timeout'], ['c1', 'timeout']]);
    const view = mesh.c.replication(rid('region-1'));
    assert.equal(view?.state, 'unavailable');
    assert.equal(view?.primary, null);
    assert.deepEqual(view?.backups, []);
    const alert = mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'region-unavailable:region-1');
    assert.equal(alert?.severity, 'critical');
    assert.equal(mesh.c.status(15_000).status, 'critical');
    assert.deepEqual(mesh.c.metrics().failovers, { total: 1, completed: 0, in_progress: 0, failed: 1 });
    assert.equal(mesh.c.route(rid('region-1'))?.primary, null);

    mesh.resume('b1'); // still holds region-1 as a backup
    mesh.run(20_000);
    const back = mesh.ofType('failover_initiated').at(-1);
    assert.deepEqual([back?.newPrimaryId, back?.epoch, back?.failedServerId], ['b1', 2, null]);
    assert.equal(mesh.server('b1').roleIn('region-1'), 'primary');
    const completed = mesh.ofType('failover_completed').at(-1);
    assert.equal(completed?.newPrimaryId, 'b1');
    assert.equal(completed?.recoveryMs, null, 'the failover record was closed as failed');
    mesh.run(22_000);
    const after = mesh.c.replication(rid('region-1'));
    assert.equal(after?.primary?.serverId, 'b1');
    assert.notEqual(after?.state, 'unavailable');
    assert.equal(mesh.c.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'region-unavailable:region-1'), false);
    assert.equal(after?.backups.length, 2, 'new backups from the surviving servers');
    for (const b of after?.backups ?? []) assert.ok(['a2', 'b2', 'c2'].includes(b.serverId), b.serverId);
  });
});

describe('Coordinator: capacity', () => {
  test('no room for a replacement: under-replicated with a warning, re-replicated when a server registers', () => {
    const mesh = new Mesh();
    for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?', 1);
    mesh.createRegions([{}]);
    mesh.run(warmUntil);
    mesh.silence('a1');
    mesh.run(13_000);
    const view = mesh.c.replication(rid('region-1'));
    assert.equal(view?.primary?.serverId, 'b1', 'equal state and load: zone then id');
    assert.equal(view?.primary?.acknowledged, true);
    assert.equal(view?.state, 'under_replicated');
    assert.deepEqual(view?.backups.map((b) => b.serverId), ['c1']);
    const alert = mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'region-under-replicated:region-1');
    assert.equal(alert?.severity, 'warning');

    mesh.at(13_050);
    mesh.register('d1', 'd', 5);
    mesh.run(13_100);
    assert.deepEqual(mesh.c.replication(rid('region-1'))?.backups.map((b) => [b.serverId, b.syncing]), [['c1', false], ['d1', true]]);
    mesh.run(14_000);
    assert.deepEqual(mesh.ofType('backup_created').map((e) => e.backupServerId), ['d1']);
    assert.equal(mesh.c.replication(rid('region-1'))?.state, 'active');
    assert.equal(mesh.c.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'region-under-replicated:region-1'), false);
  });
});

describe('Coordinator: graceful leave', () => {
  test('a draining primary hands off without a failover record and the server ends left', () => {
    const mesh = crashReady();
    const leaving = mesh.c.leave(sid('a1'), 10_050);
    assert.ok(leaving.ok, 'leaving.ok');
    assert.equal(leaving.value.status, 'draining');
    // A draining server is granted no lease: the hand-off waits for the one granted at 10 000.
    const handOffAt = 10_000 + harnessConfig.primaryLeaseMs + harnessConfig.leaseDriftMarginMs;
    mesh.run(handOffAt - 100);
    assert.deepEqual(mesh.ofType('failover_initiated'), []);
    assert.equal(mesh.server('a1').lastReply?.leaseMs, 0, 'no lease while draining');
    mesh.run(handOffAt);
    const [initiated] = mesh.ofType('failover_initiated');
    assert.deepEqual([initiated?.newPrimaryId, initiated?.failedServerId, initiated?.epoch], ['c1', null, 2]);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'left');
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    mesh.run(12_000);
    const [completed] = mesh.ofType('failover_completed');
    assert.equal(completed?.newPrimaryId, 'c1');
    assert.equal(completed?.recoveryMs, null);
    assert.equal(mesh.c.metrics().failovers.total, 0);
    const after = mesh.server('a1').lastResult;
    assert.ok(after && !after.ok, 'after && !after.ok');
    assert.equal(after.code, 'server_left');
    assert.equal(mesh.c.status(11_000).servers.total, 5, 'a server that left is not counted');
  });

  test('leave is refused for unknown and failed servers', () => {
    const mesh = crashReady();
    const unknown = mesh.c.leave(sid('nope'), 0);
    assert.ok(!unknown.ok, '!unknown.ok');
    assert.equal(unknown.code, 'unknown_server');
    mesh.silence('a1');
    mesh.run(detectedAt);
    const failed = mesh.c.leave(sid('a1'), detectedAt);
    assert.ok(!failed.ok, '!failed.ok');
    assert.equal(failed.code, 'server_failed');
  });
});

describe('Coordinator: TILT', () => {
  const gaps: [number, boolean][] = [[harnessConfig.tiltThresholdMs, false], [harnessConfig.tiltThresholdMs + 1, true]];
  for (const [gap, tilts] of gaps) {
    test(`a tick gap of ${gap} ms ${tilts ? 'enters' : 'does not enter'} TILT`, () => {
      const c = new Coordinator(harnessConfig, 0);
      c.tick(1000);
      c.tick(1000 + gap);
      assert.equal(c.tilted(1000 + gap), tilts);
      assert.equal(c.status(1000 + gap).tilt, tilts);
    });
  }

  test('after a stall no failure is declared for tiltRecoveryMs; then real failures are', () => {
    const mesh = crashReady();
    mesh.silence('a1'); // dies during the stall
    mesh.stallUntil(16_000);
    mesh.at(16_000);
    mesh.run(16_000, { heartbeats: false }); // the first tick after 6 s: every server looks 6 s silent
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    assert.equal(mesh.c.status(16_000).servers.suspect, 6);
    assert.equal(mesh.c.status(16_000).tilt, true);
    assert.equal(mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'coordinator-tilt')?.severity, 'warning');
    for (const id of ['b1', 'c1', 'a2', 'b2', 'c2']) mesh.hb(id); // the queued heartbeats arrive
    const until = 16_000 + harnessConfig.tiltRecoveryMs; // 17 500
    mesh.run(until - 100);
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    assert.equal(mesh.c.server(sid('a1'))?.status, 'suspect');
    assert.equal(mesh.c.server(sid('b1'))?.status, 'alive');
    mesh.run(until);
    const detected = mesh.ofType('server_failure_detected');
    assert.deepEqual(detected.map((e) => [e.serverId, e.atMs]), [['a1', until]]);
    assert.equal(mesh.c.status(until).tilt, false);
    assert.equal(mesh.c.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'coordinator-tilt'), false);
  });

  test('a pending promotion is not aborted because of the coordinator\'s own stall (regression)', () => {
    const mesh = crashReady();
    mesh.silence('a1');
    mesh.run(detectedAt); // c1 promoted; its deadline, detectedAt + promotionAckTimeoutMs, is before 15 000
    assert.ok(detectedAt + harnessConfig.promotionAckTimeoutMs < 15_000, 'deadline inside the stall');
    mesh.stallUntil(15_000);
    mesh.at(15_000);
    mesh.run(15_000, { heartbeats: false }); // nothing was processed during the stall, c1's ack included
    assert.equal(mesh.c.status(15_000).tilt, true);
    assert.deepEqual(mesh.ofType('failover_aborted'), []);
    mesh.run(16_000); // c1's heartbeat, inside TILT, acknowledges the promotion
    assert.deepEqual(mesh.ofType('failover_aborted'), []);
    assert.deepEqual(mesh.ofType('failover_completed').map((e) => [e.newPrimaryId, e.epoch]), [['c1', 2]]);
  });

  test('a promotion that stays unacknowledged is aborted at the first tick after TILT', () => {
    const mesh = crashReady();
    mesh.server('c1').frozen = true;
    mesh.silence('a1');
    mesh.run(detectedAt);
    mesh.stallUntil(15_000);
    mesh.at(15_000);
    mesh.run(15_000, { heartbeats: false });
    const tiltEnds = 15_000 + harnessConfig.tiltRecoveryMs;
    mesh.run(tiltEnds - 100);
    assert.deepEqual(mesh.ofType('failover_aborted'), []);
    mesh.run(tiltEnds);
    assert.deepEqual(mesh.ofType('failover_aborted').map((e) => [e.serverId, e.atMs]), [['c1', tiltEnds]]);
    // The next backup waits for the lease c1's last reply (at 16 000) granted.
    mesh.run(16_000 + harnessConfig.primaryLeaseMs + harnessConfig.leaseDriftMarginMs);
    assert.equal(mesh.ofType('failover_initiated').at(-1)?.newPrimaryId, 'b1');
  });
});

describe('Coordinator: restart from exportState', () => {
  /**
   * A mesh in the middle of a failover (c1 promoted at detectedAt, not acknowledged) with three
   * buffered actions, saved at 11 900 and passed through JSON as a store would.
   */
  function midFailover(): { mesh: Mesh; state: CoreState; lastEventSeq: number } {
    const mesh = crashReady();
    mesh.silence('a1');
    mesh.run(detectedAt);
    mesh.at(11_900);
    for (const [player, seq] of [['p1', 1], ['p1', 2], ['p2', 1]] as const) {
      const submitted = mesh.c.submitAction(rid('region-1'), { playerId: player, seq, payload: { seq } }, 11_900);
      assert.ok(submitted.ok && submitted.value.status === 'buffered', 'buffered');
    }
    mesh.flush();
    const state = JSON.parse(JSON.stringify(mesh.c.exportState(11_900))) as CoreState;
    return { mesh, state, lastEventSeq: mesh.events.at(-1)?.seq ?? 0 };
  }
  const restartAt = 13_900; // two seconds of coordinator downtime

  test('a persisted server is its record without the runtime parts: no hosted-regions index, no detector', () => {
    const { mesh, state } = midFailover();
    const live = mesh.c.serverRecord(sid('b1'));
    assert.ok(live !== undefined && live.hosted.size > 0, 'b1 hosts regions while running');
    const saved = state.servers.find((s) => s.id === 'b1');
    assert.deepEqual(Object.keys(saved ?? {}).sort(), ['address', 'capacity', 'credentialHash', 'id', 'incarnation', 'lastSeq', 'name',
      'players', 'registeredAtMs', 'simulated', 'status', 'statusSinceMs', 'zone']);
    const restarted = Mesh.restartedFrom(mesh, state, restartAt).c.serverRecord(sid('b1'));
    assert.deepEqual([...(restarted?.hosted ?? [])].map((r) => r.id), [...live.hosted].map((r) => r.id), 'the index is rebuilt from the regions');
    assert.equal(restarted?.detector.lastHeartbeatAtMs, restartAt, 'detection starts afresh at the restart');
  });

  test('topology, epochs, alerts, metrics and buffered actions survive; the failover completes after the restart', () => {
    const { mesh: before, state, lastEventSeq } = midFailover();
    const mesh = Mesh.restartedFrom(before, state, restartAt);
    const c = mesh.c;
    assert.deepEqual(c.servers().map((s) => [s.serverId, s.status]),
      [['a1', 'failed'], ['b1', 'alive'], ['c1', 'alive'], ['a2', 'alive'], ['b2', 'alive'], ['c2', 'alive']]);
    const view = c.replication(rid('region-1'));
    assert.equal(view?.epoch, 2);
    assert.equal(view?.primary?.serverId, 'c1');
    assert.equal(view?.primary?.acknowledged, false);
    assert.deepEqual(view?.backups.map((b) => [b.serverId, b.syncing]), [['b1', false]]);
    assert.equal(c.route(rid('region-1'))?.epoch, 2, 'what was persisted was durable: epoch 2 is announced');
    assert.ok(c.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'server-failed:a1'), 'server-failed:a1 still open');
    assert.equal(c.metrics().actions.pending, 3);
    assert.deepEqual(c.metrics().failovers, { total: 1, completed: 0, in_progress: 1, failed: 0 });

    mesh.run(14_000);
    assert.equal(mesh.server('c1').roleIn('region-1'), 'primary');
    const [completed] = mesh.ofType('failover_completed');
    assert.equal(completed?.epoch, 2);
    assert.equal(completed?.recoveryMs, 14_000 - warmUntil, 'the same failover record, measured from the failure');
    assert.equal(c.metrics().failovers.total, 1);
    assert.equal(mesh.events[0]?.seq, lastEventSeq + 1, 'event numbering continues');
    const collected = c.collectActions(rid('region-1'), sid('c1'), 14_000);
    assert.ok(collected.ok, 'collected.ok');
    assert.deepEqual(collected.value.actions.map((a) => `${a.playerId}#${a.seq}`), ['p1#1', 'p1#2', 'p2#1']);
    assert.deepEqual(mesh.ofType('server_failure_detected'), [], 'no failure after the restart');
    assert.deepEqual(c.replication(rid('region-1'))?.backups.map((b) => [b.serverId, b.syncing]), [['b1', false], ['a2', true]],
      'the replacement backup follows the acknowledgement');
  });

  test('every server gets a full detection window from the restart: nothing failed for failureTimeoutMs without heartbeats', () => {
    const { mesh: before, state } = midFailover();
    const mesh = Mesh.restartedFrom(before, state, restartAt);
    // Declared at the last tick before failureTimeoutMs of silence counted from the restart.
    const tick = harnessConfig.tickIntervalMs;
    mesh.run(restartAt + harnessConfig.failureTimeoutMs - 2 * tick, { heartbeats: false });
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    mesh.run(restartAt + harnessConfig.failureTimeoutMs - tick, { heartbeats: false });
    const failed = mesh.ofType('server_failure_detected').map((e) => e.serverId).sort();
    assert.deepEqual(failed, ['a2', 'b1', 'b2', 'c1', 'c2'], 'a1 was already failed');
    for (const e of mesh.ofType('server_failure_detected')) assert.equal(e.lastHeartbeatAtMs, restartAt);
  });

  test('with heartbeats resuming after the restart, no server is even suspected', () => {
    const { mesh: before, state } = midFailover();
    const mesh = Mesh.restartedFrom(before, state, restartAt);
    mesh.run(30_000);
    assert.deepEqual(mesh.ofType('server_failure_detected'), []);
    assert.deepEqual(mesh.ofType('server_status_changed'), []);
  });

  test('a pending promotion keeps the rest of its deadline, counted from the restart', () => {
    const { mesh: before, state } = midFailover();
    const mesh = Mesh.restartedFrom(before, state, restartAt);
    mesh.server('c1').frozen = true;
    // Promoted at detectedAt with promotionAckTimeoutMs to acknowledge, saved at 11 900: the rest
    // of that time counts from the restart (had the deadline been kept as is, it would be past).
    const remaining = detectedAt + harnessConfig.promotionAckTimeoutMs - 11_900;
    mesh.run(restartAt + remaining - 100);
    assert.deepEqual(mesh.ofType('failover_aborted'), []);
    mesh.run(restartAt + remaining);
    assert.equal(mesh.ofType('failover_aborted')[0]?.atMs, restartAt + remaining);
  });

  test('actions that aged past the limit during a long outage are reported expired on the first tick', () => {
    const { mesh: before, state } = midFailover();
    const mesh = Mesh.restartedFrom(before, state, 41_900);
    assert.equal(mesh.c.metrics().actions.pending, 3);
    mesh.run(41_900, { heartbeats: false });
    assert.deepEqual(mesh.ofType('actions_expired').map((e) => [e.regionId, e.count, e.atMs]), [['region-1', 3, 41_900]]);
    assert.equal(mesh.c.metrics().actions.pending, 0);
    assert.equal(mesh.c.metrics().actions.expired, 3);
  });
});

describe('Coordinator: player actions', () => {
  test('a healthy region refuses actions and names its primary', () => {
    const mesh = crashReady();
    const refused = mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq: 1, payload: null }, warmUntil);
    assert.ok(!refused.ok, '!refused.ok');
    assert.equal(refused.code, 'region_healthy');
    assert.deepEqual(refused.data, { primary: { serverId: 'a1', address: '10.0.0.1:a1' }, epoch: 1 });
    assert.equal(mesh.c.metrics().actions.pending, 0);
    const unknown = mesh.c.submitAction(rid('nope'), { playerId: 'p1', seq: 1, payload: null }, warmUntil);
    assert.ok(!unknown.ok, '!unknown.ok');
    assert.equal(unknown.code, 'unknown_region');
  });

  test('buffered while failing over, collected only by the announced primary, acknowledged once', () => {
    const mesh = crashReady();
    mesh.autoDurable = false;
    mesh.silence('a1');
    mesh.run(detectedAt);
    const submit = (playerId: string, seq: number, at: number) =>
      mesh.c.submitAction(rid('region-1'), { playerId, seq, payload: { n: seq } }, at);
    const first = submit('p1', 1, 11_900);
    assert.ok(first.ok, 'first.ok');
    assert.equal(first.value.status, 'buffered');
    assert.equal(first.value.expiresAtMs, 11_900 + harnessConfig.actionBufferMaxAgeMs);
    const second = submit('p1', 2, 11_900);
    const third = submit('p2', 1, 11_950);
    assert.ok(second.ok && third.ok, 'second.ok && third.ok');
    assert.ok(third.value.changeSeq > first.value.changeSeq, 'each accepted action is a change to persist');
    const duplicate = submit('p1', 1, 11_960);
    assert.ok(duplicate.ok, 'duplicate.ok');
    assert.equal(duplicate.value.status, 'duplicate');
    assert.equal(mesh.c.metrics().actions.pending, 3);

    const notPrimary = (r: ReturnType<Coordinator['collectActions']>) => !r.ok && r.code === 'not_primary';
    assert.ok(notPrimary(mesh.c.collectActions(rid('region-1'), sid('b1'), 11_970)), 'a backup cannot collect');
    assert.ok(notPrimary(mesh.c.collectActions(rid('region-1'), sid('c1'), 11_970)), 'not announced yet');
    mesh.makeDurable();
    mesh.at(12_000);
    const reply = mesh.c.heartbeat(sid('c1'), mesh.input(mesh.server('c1')), 12_000);
    assert.ok(reply.ok, 'reply.ok');
    assert.equal(reply.value.regions.find((r) => r.regionId === 'region-1')?.actionsPending, 3);
    // Told it is primary, c1 has not acknowledged the promotion yet: if the promotion were then
    // aborted, actions it collected and acknowledged would count replayed with no primary holding them.
    assert.ok(notPrimary(mesh.c.collectActions(rid('region-1'), sid('c1'), 12_000)), 'promoted but not acknowledged');
    assert.ok(!mesh.c.acknowledgeActions(rid('region-1'), sid('c1'), [{ playerId: 'p1', seq: 1 }], 12_000).ok, 'nor can it acknowledge');
    mesh.hb('c1'); // applies the reply and heartbeats again as primary: the acknowledgement
    const collected = mesh.c.collectActions(rid('region-1'), sid('c1'), 12_000);
    assert.ok(collected.ok, 'collected.ok');
    assert.equal(collected.value.epoch, 2);
    assert.deepEqual(collected.value.actions.map((a) => `${a.playerId}#${a.seq}`), ['p1#1', 'p1#2', 'p2#1']);

    mesh.flush();
    const since = mesh.mark();
    const byBackup = mesh.c.acknowledgeActions(rid('region-1'), sid('b1'), [{ playerId: 'p1', seq: 1 }], 12_010);
    assert.ok(!byBackup.ok, '!byBackup.ok');
    const acked = mesh.c.acknowledgeActions(rid('region-1'), sid('c1'), [{ playerId: 'p1', seq: 1 }, { playerId: 'p1', seq: 2 }], 12_010);
    assert.ok(acked.ok, 'acked.ok');
    assert.equal(acked.value.acknowledged, 2);
    assert.equal(acked.value.pending, 1);
    mesh.flush();
    assert.deepEqual(since().filter((e) => e.type === 'player_reconnected').map((e) => 'playerId' in e && e.playerId), ['p1']);
    const again = mesh.c.acknowledgeActions(rid('region-1'), sid('c1'), [{ playerId: 'p1', seq: 1 }], 12_020);
    assert.ok(again.ok, 'again.ok');
    assert.deepEqual([again.value.acknowledged, again.value.unknown], [0, 1], 'replayed exactly once');
    const left = mesh.c.collectActions(rid('region-1'), sid('c1'), 12_030);
    assert.ok(left.ok, 'left.ok');
    assert.deepEqual(left.value.actions.map((a) => `${a.playerId}#${a.seq}`), ['p2#1']);
  });

  test('player_reconnected names only players whose actions were acknowledged (regression)', () => {
    const mesh = crashReady();
    mesh.silence('a1');
    mesh.run(detectedAt);
    assert.ok(mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq: 1, payload: null }, 11_900).ok, 'submitAction accepted');
    mesh.hb('c1'); // c1 acknowledges its promotion: only then may it acknowledge actions
    const since = mesh.mark();
    const acked = mesh.c.acknowledgeActions(rid('region-1'), sid('c1'), [{ playerId: 'p1', seq: 1 }, { playerId: 'ghost', seq: 9 }], 11_950);
    assert.ok(acked.ok, 'acked.ok');
    assert.deepEqual([acked.value.acknowledged, acked.value.unknown], [1, 1]);
    mesh.flush();
    assert.deepEqual(since().filter((e) => e.type === 'player_reconnected').map((e) => 'playerId' in e && e.playerId), ['p1']);
  });

  test('once the new primary acknowledges its promotion, actions are refused again with the new primary', () => {
    const mesh = crashReady();
    mesh.silence('a1');
    mesh.run(12_000);
    const refused = mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq: 1, payload: null }, 12_000);
    assert.ok(!refused.ok, '!refused.ok');
    assert.equal(refused.code, 'region_healthy');
    assert.deepEqual(refused.data, { primary: { serverId: 'c1', address: '10.0.0.1:c1' }, epoch: 2 });
  });

  test('a full buffer is refused with a retry time and a warning alert, resolved by an acknowledgement', () => {
    const mesh = crashReady({ ...harnessConfig, actionBufferMaxPerPlayer: 2 });
    mesh.silence('a1');
    mesh.run(detectedAt);
    for (const seq of [1, 2]) assert.ok(mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq, payload: null }, 11_900).ok, 'submitAction accepted');
    const full = mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq: 3, payload: null }, 12_400);
    assert.ok(!full.ok, '!full.ok');
    assert.equal(full.code, 'buffer_full');
    assert.equal(full.retryAfterMs, 11_900 + harnessConfig.actionBufferMaxAgeMs - 12_400);
    assert.equal(mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'buffer-full:region-1')?.severity, 'warning');
    mesh.at(12_500);
    mesh.hb('c1'); // c1 acknowledges its promotion
    assert.ok(mesh.c.acknowledgeActions(rid('region-1'), sid('c1'), [{ playerId: 'p1', seq: 1 }], 12_500).ok, 'acknowledgeActions accepted');
    assert.equal(mesh.c.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'buffer-full:region-1'), false);
  });

  test('actions nobody collects expire after actionBufferMaxAgeMs and are reported with their count', () => {
    const mesh = crashReady();
    for (const id of ['a1', 'b1', 'c1']) mesh.silence(id);
    mesh.run(15_000); // region-1 unavailable
    for (const seq of [1, 2, 3]) assert.ok(mesh.c.submitAction(rid('region-1'), { playerId: 'p1', seq, payload: null }, 15_000).ok, 'submitAction accepted');
    mesh.run(15_000 + harnessConfig.actionBufferMaxAgeMs - 100);
    assert.deepEqual(mesh.ofType('actions_expired'), []);
    mesh.run(15_000 + harnessConfig.actionBufferMaxAgeMs);
    assert.deepEqual(mesh.ofType('actions_expired').map((e) => [e.regionId, e.count]), [['region-1', 3]]);
    assert.equal(mesh.c.metrics().actions.expired, 3);
    assert.equal(mesh.c.metrics().actions.pending, 0);
  });
});

describe('Coordinator: snapshots', () => {
  test('only the announced primary posts snapshots; a new primary posts at its epoch', () => {
    const mesh = crashReady();
    const snapshot = { playerId: 'p1', state: { hp: 10 }, sizeBytes: 9 };
    const byBackup = mesh.c.putSnapshot(rid('region-1'), sid('b1'), snapshot, warmUntil);
    assert.ok(!byBackup.ok, '!byBackup.ok');
    assert.equal(byBackup.code, 'not_primary');
    const put = mesh.c.putSnapshot(rid('region-1'), sid('a1'), snapshot, warmUntil);
    assert.ok(put.ok, 'put.ok');
    assert.equal(put.value.epoch, 1);
    const got = mesh.c.getSnapshot(rid('region-1'), 'p1');
    assert.ok(got.ok, 'got.ok');
    assert.deepEqual(got.value.state, { hp: 10 });
    assert.equal(got.value.serverId, 'a1');

    const tooLarge = mesh.c.putSnapshot(rid('region-1'), sid('a1'), { ...snapshot, sizeBytes: harnessConfig.snapshotMaxBytes + 1 }, warmUntil);
    assert.ok(!tooLarge.ok, '!tooLarge.ok');
    assert.equal(tooLarge.code, 'snapshot_too_large');
    const unknownRegion = mesh.c.putSnapshot(rid('nope'), sid('a1'), snapshot, warmUntil);
    assert.ok(!unknownRegion.ok, '!unknownRegion.ok');
    assert.equal(unknownRegion.code, 'unknown_region');
    const missing = mesh.c.getSnapshot(rid('region-1'), 'p2');
    assert.ok(!missing.ok, '!missing.ok');
    assert.equal(missing.code, 'unknown_snapshot');

    mesh.silence('a1');
    mesh.run(12_000);
    const fenced = mesh.c.putSnapshot(rid('region-1'), sid('a1'), snapshot, 12_000);
    assert.ok(!fenced.ok, '!fenced.ok');
    assert.equal(fenced.code, 'not_primary');
    const fresh = mesh.c.putSnapshot(rid('region-1'), sid('c1'), { ...snapshot, state: { hp: 7 } }, 12_000);
    assert.ok(fresh.ok, 'fresh.ok');
    assert.equal(fresh.value.epoch, 2);
    assert.ok(fresh.value.version > put.value.version, 'fresh.value.version > put.value.version');
    const latest = mesh.c.getSnapshot(rid('region-1'), 'p1');
    assert.ok(latest.ok, 'latest.ok');
    assert.deepEqual([latest.value.state, latest.value.serverId, latest.value.epoch], [{ hp: 7 }, 'c1', 2]);
  });
});

describe('Coordinator: priority and throttling', () => {
  /**
   * Servers a1, b1, c1 only at creation: every region gets a1 as primary (equal loads, lowest id)
   * and b1, c1 as backups; a2, b2, c2 register afterwards as room for replacements.
   */
  function sharedPrimary(priorities: { critical?: boolean; players: number }[], config?: MeshConfig): Mesh {
    const mesh = new Mesh(config === undefined ? {} : { config });
    for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?');
    const ids = mesh.createRegions(priorities.map(() => ({})));
    priorities.forEach((p, i) => {
      assert.ok(mesh.c.updateRegion(rid(ids[i] ?? ''), p).ok, 'mesh.c.updateRegion(rid(ids[i] ?? \'\'), p).ok');
      assert.equal(mesh.c.replication(rid(ids[i] ?? ''))?.primary?.serverId, 'a1');
    });
    for (const id of ['a2', 'b2', 'c2']) mesh.register(id, id[0] ?? '?');
    mesh.adopt();
    mesh.run(warmUntil);
    return mesh;
  }

  test('regions failing in the same tick are failed over critical first, then by players', () => {
    const mesh = sharedPrimary([{ players: 5 }, { critical: true, players: 1 }, { players: 50 }, { players: 20 }]);
    mesh.silence('a1');
    mesh.run(detectedAt);
    const initiated = mesh.ofType('failover_initiated');
    assert.deepEqual(initiated.map((e) => e.regionId), ['region-2', 'region-3', 'region-4', 'region-1']);
    assert.ok(initiated.every((e) => e.atMs === detectedAt), 'initiated.every((e) => e.atMs === detectedAt)');
    const critical = mesh.c.metrics().recent.find((r) => r.regionId === 'region-2');
    assert.equal(critical?.critical, true);
  });

  test('with maxTransitionsPerServer = 1 the best candidate of two regions takes one, the other waits for it', () => {
    const mesh = sharedPrimary([{ players: 10 }, { players: 20 }], { ...harnessConfig, maxTransitionsPerServer: 1 });
    mesh.silence('a1');
    mesh.run(detectedAt);
    // b1 and c1 are equal in state, load and zone for both regions: b1 (lower id) is best for both.
    assert.deepEqual(mesh.ofType('failover_initiated').map((e) => [e.regionId, e.newPrimaryId]), [['region-2', 'b1']]);
    assert.equal(mesh.c.replication(rid('region-1'))?.primary, null);
    mesh.run(11_900);
    assert.equal(mesh.ofType('failover_initiated').length, 1, 'still throttled while b1 has not acknowledged');
    mesh.run(12_000); // b1 acknowledges region-2 by its heartbeat at 12 000; the tick that follows frees it
    const second = mesh.ofType('failover_initiated')[1];
    assert.deepEqual([second?.regionId, second?.newPrimaryId, second?.atMs], ['region-1', 'b1', 12_000]);
  });
  test('with maxBackupAssignmentsPerTick = 1 promotions all happen at once, replacement backups one per tick by priority', () => {
    const mesh = sharedPrimary([{ players: 5 }, { critical: true, players: 1 }, { players: 50 }],
      { ...harnessConfig, maxBackupAssignmentsPerTick: 1 });
    mesh.silence('a1');
    mesh.run(detectedAt);
    assert.equal(mesh.ofType('failover_initiated').filter((e) => e.atMs === detectedAt).length, 3, 'promotions are not budgeted');
    const assignedAt = new Map<string, number>();
    for (let t = detectedAt + 100; t <= detectedAt + 2000 && assignedAt.size < 3; t += 100) {
      mesh.run(t);
      for (const id of ['region-1', 'region-2', 'region-3']) {
        const view = mesh.c.replication(rid(id));
        if (!assignedAt.has(id) && view?.backups.length === 2) assignedAt.set(id, t);
      }
    }
    const order = [...assignedAt].sort((a, b) => a[1] - b[1]);
    assert.deepEqual(order.map(([id]) => id), ['region-2', 'region-3', 'region-1'], 'critical, then by players');
    assert.deepEqual(order.map(([, t]) => t - (order[0]?.[1] ?? 0)), [0, 100, 200], 'one assignment per tick');
  });
});

describe('Coordinator: failover before re-replication', () => {
  /**
   * region-1: a1 leads, b1 and c1 back it up. region-2: b0 leads, a1 and c1 back it up. a2 is room
   * in zone a. a1's crash costs region-1 its primary and region-2 a backup, in the same tick.
   */
  function crossed(budget: number): Mesh {
    const mesh = new Mesh({ config: { ...harnessConfig, maxBackupAssignmentsPerTick: budget } });
    for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?');
    mesh.createRegions([{}]);
    mesh.register('b0', 'b');
    mesh.createRegions([{}]);
    mesh.register('a2', 'a');
    mesh.adopt();
    mesh.run(warmUntil);
    assert.equal(mesh.c.replication(rid('region-1'))?.primary?.serverId, 'a1');
    assert.equal(mesh.c.replication(rid('region-2'))?.primary?.serverId, 'b0');
    assert.deepEqual(mesh.c.replication(rid('region-2'))?.backups.map((b) => b.serverId).sort(), ['a1', 'c1']);
    mesh.silence('a1');
    mesh.run(detectedAt);
    assert.deepEqual(mesh.ofType('failover_initiated').map((e) => [e.regionId, e.atMs]), [['region-1', detectedAt]]);
    return mesh;
  }
  const region2Backups = (mesh: Mesh) => mesh.c.replication(rid('region-2'))?.backups.map((b) => b.serverId).sort();

  test('a promotion uses the tick\'s assignment budget: with a budget of 1 the replacement backup waits a tick', () => {
    const mesh = crossed(1);
    assert.deepEqual(region2Backups(mesh), ['c1'], 'no replacement in the tick that promoted');
    mesh.run(detectedAt + 100);
    assert.deepEqual(region2Backups(mesh), ['a2', 'c1']);
  });

  test('with a budget of 2 the promotion leaves room for the replacement backup in the same tick', () => {
    assert.deepEqual(region2Backups(crossed(2)), ['a2', 'c1']);
  });

  test('a region that loses a backup and its primary in one tick changes phase once', () => {
    const mesh = new Mesh();
    for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?');
    mesh.createRegions([{}]);
    mesh.register('b0', 'b');
    mesh.createRegions([{}]);
    mesh.adopt();
    mesh.run(warmUntil);
    // region-2: b0 leads, a1 backs it up; a1 is judged first (registered first).
    mesh.silence('a1');
    mesh.silence('b0');
    mesh.run(detectedAt);
    const declared = mesh.ofType('server_failure_detected');
    assert.deepEqual(declared.map((e) => [e.serverId, e.atMs]), [['a1', detectedAt], ['b0', detectedAt]]);
    const changes = mesh.ofType('region_phase_changed').filter((e) => e.regionId === 'region-2' && e.atMs === detectedAt);
    assert.deepEqual(changes.map((e) => [e.from, e.to]), [['active', 'failing_over']]);
  });
});

describe('Coordinator: degraded mode', () => {
  test('the level rises with the failure count: LIGHT at 3 failures, MODERATE at 6, told to servers', () => {
    const mesh = new Mesh();
    // 40 servers and no region: one failed server is 2.5% of the fleet, far below the share thresholds.
    for (let i = 1; i <= 40; i++) mesh.register(`s${String(i).padStart(2, '0')}`, `z${i % 4}`);
    mesh.run(warmUntil);
    // s01 falls silent at 10 000, s02 at 11 000, ...: each is failed by the timeout, at the last
    // tick before 5 s of silence (14 900, 15 900, ...).
    for (let k = 1; k <= 6; k++) {
      mesh.silence(`s0${k}`);
      mesh.run(warmUntil + k * 1000);
    }
    mesh.run(16_800);
    assert.equal(mesh.ofType('server_failure_detected').length, 2);
    assert.deepEqual(mesh.ofType('degraded_mode_activated'), []);
    mesh.run(16_900);
    const [light] = mesh.ofType('degraded_mode_activated');
    assert.deepEqual([light?.level, light?.previous, light?.atMs], ['LIGHT', 'NORMAL', 16_900]);
    assert.match(light?.reason ?? '', /3 failures/);
    assert.equal(mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'degraded-mode')?.severity, 'info');
    mesh.run(18_000);
    assert.equal(mesh.server('s10').lastReply?.degradedLevel, 'LIGHT');
    assert.equal(mesh.server('s10').lastReply?.fidelity, 0.75);
    mesh.run(20_000);
    const moderate = mesh.ofType('degraded_mode_activated')[1];
    assert.deepEqual([moderate?.level, moderate?.previous, moderate?.atMs], ['MODERATE', 'LIGHT', 19_900]);
    assert.equal(mesh.c.status(20_000).degradedLevel, 'MODERATE');
    assert.equal(mesh.c.status(20_000).fidelity, 0.5);
    assert.equal(mesh.c.listAlerts({ state: 'open' }).find((a) => a.dedupKey === 'degraded-mode')?.severity, 'warning');
  });
});

describe('Coordinator: heartbeat protocol', () => {
  const { heartbeatIntervalMs: regular, expeditedHeartbeatIntervalMs: expedited } = harnessConfig;

  test('the reply asks for the regular interval in steady state and the expedited one while something is pending', () => {
    const mesh = crashReady();
    const interval = (id: string) => mesh.server(id).lastReply?.heartbeatIntervalMs;
    assert.ok(expedited < regular, 'expedited is faster');
    assert.equal(interval('b1'), regular);
    assert.equal(interval('a2'), regular, 'hosting nothing');
    mesh.silence('a1');
    mesh.run(11_000);
    assert.equal(interval('b1'), expedited, 'b1 reported its primary silent: its next report may confirm');
    assert.equal(interval('a2'), regular);
    mesh.run(detectedAt);
    mesh.at(detectedAt + 10);
    mesh.autoDurable = false;
    const beforeDurable = mesh.c.heartbeat(sid('c1'), mesh.input(mesh.server('c1')), detectedAt + 10);
    assert.ok(beforeDurable.ok, 'heartbeat accepted');
    assert.equal(beforeDurable.value.heartbeatIntervalMs, expedited, 'c1 has a promotion to learn and acknowledge');
    mesh.makeDurable();
    mesh.autoDurable = true;
    mesh.run(12_000); // c1 acknowledges
    mesh.at(12_010);
    mesh.hb('c1');
    assert.equal(interval('c1'), regular, 'nothing pending on c1 any more');
  });

  test('a new region reaches servers only once it is durable; until then they are asked back soon', () => {
    const mesh = new Mesh();
    for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?');
    mesh.autoDurable = false;
    assert.ok(mesh.c.createRegions([{}], 0).ok, 'created');
    mesh.flush();
    const early = mesh.hb('a1');
    assert.ok(early.ok, 'heartbeat accepted');
    assert.deepEqual(early.value.regions, []);
    assert.equal(early.value.heartbeatIntervalMs, harnessConfig.expeditedHeartbeatIntervalMs);
    mesh.makeDurable();
    const later = mesh.hb('a1');
    assert.ok(later.ok, 'heartbeat accepted');
    assert.deepEqual(later.value.regions.map((r) => [r.regionId, r.role, r.epoch]), [['region-1', 'primary', 1]]);
  });

  test('a heartbeat overtaken by a later one of the same incarnation is answered but not applied', () => {
    const mesh = crashReady();
    const base = mesh.input(mesh.server('b1'));
    const stale = { ...base, regions: base.regions.map((r) => ({ ...r, role: 'primary' as const })) };
    assert.ok(mesh.c.heartbeat(sid('b1'), { ...base, seq: 5 }, 10_100).ok, 'seq 5 applied');
    const reordered = mesh.c.heartbeat(sid('b1'), { ...stale, seq: 4 }, 10_200);
    assert.ok(reordered.ok, 'answered');
    assert.deepEqual(reordered.value.demoted, [], 'its stale primary claim was not even looked at');
    assert.equal(mesh.c.server(sid('b1'))?.lastHeartbeatAtMs, 10_100, 'not counted as a sighting');
    const replayed = mesh.c.heartbeat(sid('b1'), { ...stale, seq: 5 }, 10_300);
    assert.ok(replayed.ok, 'answered');
    assert.equal(mesh.c.server(sid('b1'))?.lastHeartbeatAtMs, 10_100, 'an equal seq is a duplicate');
    const next = mesh.c.heartbeat(sid('b1'), { ...stale, seq: 6 }, 10_400);
    assert.ok(next.ok, 'answered');
    assert.deepEqual(next.value.demoted, [{ regionId: 'region-1', epoch: 1 }], 'a newer one is applied');
    assert.equal(mesh.c.server(sid('b1'))?.lastHeartbeatAtMs, 10_400);
  });
});

describe('Coordinator: fault injection', () => {
  test('targets resolve to servers and unknown targets are refused', () => {
    const mesh = standardMesh({ regions: [{}, { id: 'lonely', backups: 0 }] });
    const inject = (target: Parameters<FaultLayer['inject']>[0]['target']) =>
      mesh.faults.inject({ target, mode: 'crash', durationMs: 1000 }, 100);
    const hit = (target: Parameters<typeof inject>[0]) => {
      const r = inject(target);
      assert.ok(r.ok, JSON.stringify(r));
      return [...r.value.serverIds].sort();
    };
    assert.deepEqual(hit({ serverId: sid('b2') }), ['b2']);
    assert.deepEqual(hit({ regionId: rid('region-1'), role: 'primary' }), ['a1']);
    assert.deepEqual(hit({ regionId: rid('region-1'), role: 'backup' }), ['b1']);
    assert.deepEqual(hit({ zone: 'c' }), ['c1', 'c2']);
    const fraction = hit({ fraction: 0.5 });
    assert.equal(fraction.length, 3);
    assert.equal(new Set(fraction).size, 3);
    const refusals: [Parameters<typeof inject>[0], string][] = [
      [{ serverId: sid('zz') }, 'unknown_server'],
      [{ regionId: rid('zz'), role: 'primary' }, 'unknown_region'],
      [{ regionId: rid('lonely'), role: 'backup' }, 'no_target'],
      [{ zone: 'q' }, 'unknown_zone'],
    ];
    for (const [target, code] of refusals) {
      const r = inject(target);
      assert.ok(!r.ok, '!r.ok');
      assert.equal(r.code, code, JSON.stringify(target));
    }
    assert.equal(mesh.faults.list().length, 5, 'refused injections are not recorded');
    assert.equal(mesh.faults.list()[0]?.id, 'fault-5', 'newest first');
  });

  test('a crash of a self-registered server drops its heartbeats and silences its peers\' sightings', () => {
    const mesh = crashReady();
    assert.ok(mesh.faults.inject({ target: { serverId: sid('a1') }, mode: 'crash' }, warmUntil).ok, 'injectFailure accepted');
    mesh.run(11_000);
    const dropped = mesh.server('a1').lastResult;
    assert.ok(dropped && !dropped.ok, 'dropped && !dropped.ok');
    assert.equal(dropped.code, 'heartbeat_dropped');
    assert.match(dropped.detail, /crash/);
    mesh.run(detectedAt);
    const [detected] = mesh.ofType('server_failure_detected');
    assert.deepEqual([detected?.serverId, detected?.reason, detected?.atMs], ['a1', 'peer_confirmed', detectedAt]);
    mesh.run(warmUntil + defaultRealCrashMs - 1000);
    assert.equal(mesh.server('a1').lastResult?.ok, false);
    mesh.run(warmUntil + defaultRealCrashMs);
    assert.equal(mesh.server('a1').lastResult?.ok, true, 'a crash without duration ends after defaultRealCrashMs');
  });

  test('a simulated server\'s heartbeats are not dropped by the coordinator (its fleet carries the fault)', () => {
    const mesh = new Mesh();
    mesh.register('sim-1', 'a', 10, { simulated: true });
    assert.ok(mesh.faults.inject({ target: { serverId: sid('sim-1') }, mode: 'crash' }, 0).ok, 'injectFailure accepted');
    mesh.at(500);
    assert.ok(mesh.hb('sim-1').ok, 'mesh.hb(\'sim-1\').ok');
  });

  test('slow: a heartbeat is answered at once but applied only after the delay', () => {
    const mesh = crashReady();
    assert.ok(mesh.faults.inject({ target: { serverId: sid('a1') }, mode: 'slow', durationMs: 5000, delayMs: 700 }, warmUntil).ok, 'injectFailure accepted');
    mesh.run(11_000);
    assert.equal(mesh.server('a1').lastResult?.ok, true);
    assert.equal(mesh.c.server(sid('a1'))?.lastHeartbeatAtMs, warmUntil);
    mesh.run(11_600);
    assert.equal(mesh.c.server(sid('a1'))?.lastHeartbeatAtMs, warmUntil);
    mesh.run(11_700);
    assert.equal(mesh.c.server(sid('a1'))?.lastHeartbeatAtMs, 11_700);
    mesh.run(20_000);
    assert.deepEqual(mesh.ofType('server_failure_detected'), [], 'slow is not dead');
    assert.equal(mesh.c.server(sid('a1'))?.lastHeartbeatAtMs, 20_000, 'after the fault, heartbeats apply at once');
  });

  test('a short slow delay is not held up behind a longer one of another server (regression)', () => {
    const mesh = crashReady();
    assert.ok(mesh.faults.inject({ target: { serverId: sid('a1') }, mode: 'slow', durationMs: 20_000, delayMs: 5000 }, warmUntil).ok, 'injectFailure accepted');
    assert.ok(mesh.faults.inject({ target: { serverId: sid('b1') }, mode: 'slow', durationMs: 20_000, delayMs: 100 }, warmUntil).ok, 'injectFailure accepted');
    mesh.run(11_100); // a1 heartbeats first at 11 000 (due 16 000), then b1 (due 11 100)
    assert.equal(mesh.c.server(sid('b1'))?.lastHeartbeatAtMs, 11_100);
  });
});

describe('Coordinator: resetting the test mesh next to self-registered servers', () => {
  test('a simulated server holding replicas of self-registered regions is removed, not failed: no alert, no failure counted', () => {
    // Own servers in zones a and b, the test mesh's c9 in zone c: every own region has a replica on c9.
    const mesh = new Mesh();
    for (const id of ['a1', 'b1']) mesh.register(id, id[0] ?? '?');
    mesh.register('c9', 'c', 20, { simulated: true }); // half as loaded as a1 and b1: it leads a region
    const ids = mesh.createRegions(Array.from({ length: 3 }, () => ({})));
    const replicas = (id: string) => {
      const view = mesh.c.replication(rid(id));
      return [view?.primary?.serverId, ...(view?.backups.map((b) => b.serverId) ?? [])].sort();
    };
    assert.deepEqual(ids.map(replicas), ids.map(() => ['a1', 'b1', 'c9']));
    const ledByC9 = ids.filter((id) => mesh.c.replication(rid(id))?.primary?.serverId === 'c9').length;
    assert.ok(ledByC9 > 0, 'c9 leads a region');
    mesh.run(warmUntil);
    const seen = mesh.mark();
    mesh.c.resetTestMesh(mesh.now);
    mesh.servers.delete(sid('c9'));
    mesh.run(warmUntil + 5000);

    const removed = seen().filter((e) => e.type === 'server_failure_detected');
    assert.deepEqual(removed.map((e) => 'reason' in e && [e.serverId, e.reason]), [['c9', 'removed']]);
    assert.deepEqual(mesh.c.listAlerts({}).map((a) => a.dedupKey).filter((k) => k.startsWith('server-failed') || k === massServerFailureKey), [],
      'a removal is not a failure to alert about');
    assert.equal(Coordinator.partsForTests(mesh.c).degraded.failuresInWindow(mesh.now), 0, 'nor one that counts towards degraded mode');
    assert.equal(mesh.c.metrics().failovers.completed, ledByC9, 'the regions c9 led were failed over');
    for (const id of ids) {
      assert.deepEqual(replicas(id), ['a1', 'b1'], `${id} is left on the own servers`);
      assert.notEqual(mesh.c.replication(rid(id))?.primary, null);
    }
  });
});

describe('Coordinator: resetting the test mesh while its regions wait for recovery', () => {
  test('the removed regions are forgotten: a server that joins afterwards is given none of them', () => {
    // One backup assignment per tick, and a mesh with no room left for the backups a crash takes
    // (two of its four servers crash, so no region can have three replicas): the regions wait for
    // capacity, then for the budget, when the test mesh is reset.
    const config: MeshConfig = { ...harnessConfig, maxBackupAssignmentsPerTick: 1 };
    const random = new SeededRandom(11);
    const coordinator = new Coordinator(config, 0);
    const runtime = new MeshRuntime(new FaultLayer(coordinator, random.fork()), 0, immediateDurability());
    const mesh = setupTestMesh(coordinator, random.fork(), { regions: 6, spareServers: 0, heartbeatLoss: 0 }, 0);
    assert.ok(mesh.ok, 'test mesh created');
    runtime.fleet = mesh.value.fleet;
    runtime.advanceTo(3000);
    assert.ok(runtime.injectFailure({ target: { serverId: mesh.value.servers[0]! }, mode: 'crash' }, 3000).ok);
    assert.ok(runtime.injectFailure({ target: { serverId: mesh.value.servers[1]! }, mode: 'crash' }, 3000).ok);
    runtime.advanceTo(7000);
    assert.equal(coordinator.status(7000).regions.under_replicated, 6, 'every region waits for room');

    const late = coordinator.registerServer({ id: 'late-1', address: '10.0.0.9:7777', zone: 'zone-1', capacity: 10 }, 7000);
    assert.ok(late.ok, 'registered');
    runtime.advanceTo(7100);
    assert.equal(coordinator.server(sid('late-1'))?.backups, 1, 'the budget placed one backup; five regions wait');

    coordinator.resetTestMesh(7100);
    runtime.fleet = null;
    runtime.advanceTo(7600);
    const status = coordinator.status(7600);
    assert.equal(coordinator.server(sid('late-1'))?.backups, 0, 'no removed region was placed on the new server');
    assert.equal(status.regions.total, 0);
    for (const [phase, count] of Object.entries(status.regions)) assert.equal(count, 0, `regions ${phase}`);
    assert.equal(coordinator.listAlerts({ state: 'open' }).filter((a) => a.subject?.regionId !== undefined).length, 0,
      'no alert about a removed region');
  });
});

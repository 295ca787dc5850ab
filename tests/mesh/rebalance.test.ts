/**
 * The rebalancer's throttle and gates (issue 16, point 9), on a hand-driven mesh: at most
 * `maxRebalanceMoves` moves in flight, none planned in TILT or while another region fails over,
 * and critical regions left where they are while the mesh is degraded. Each test also shows the
 * moves that the gate held back happen once it opens, so a gate that never opens fails too.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Coordinator } from '../../mesh/core/coordinator.ts';
import { testMeshConfig, type MeshConfig } from '../../mesh/base/config.ts';
import { balanceProblems, primarySpread } from '../../mesh/simulation/balance.ts';
import { Mesh, rid, sid } from './coordinator-harness.ts';

/** Moves started and not yet completed or aborted. */
function inFlight(mesh: Mesh): number {
  return mesh.ofType('rebalance_started').length - mesh.ofType('rebalance_completed', 'rebalance_aborted').length;
}

/**
 * Two servers in zones a and b lead four regions each (one backup, in the other zone); at 2,000 ms
 * four empty servers join, two per zone: each of a1 and b1 leads two more than the even share.
 */
function crowded(config: MeshConfig = testMeshConfig): Mesh {
  const mesh = new Mesh({ config });
  for (const id of ['a1', 'b1']) mesh.register(id, id[0] ?? '?', 20);
  mesh.createRegions(Array.from({ length: 8 }, () => ({ backups: 1 })));
  mesh.run(2000);
  assert.deepEqual([...primarySpread(mesh.c).perServer.values()], [4, 4]);
  for (const id of ['a2', 'a3', 'b2', 'b3']) mesh.register(id, id[0] ?? '?', 20);
  return mesh;
}

/** Runs tick by tick to `untilMs`, calling `each` after every tick. */
function stepTo(mesh: Mesh, untilMs: number, each: () => void): void {
  for (let t = mesh.now + mesh.config.tickIntervalMs; t <= untilMs; t += mesh.config.tickIntervalMs) {
    mesh.run(t);
    each();
  }
}

describe('rebalancing throttle and gates', () => {
  test('at most maxRebalanceMoves moves are in flight; the rest follow as they complete', () => {
    const mesh = crowded({ ...testMeshConfig, maxRebalanceMoves: 2 });
    let most = 0;
    stepTo(mesh, 40_000, () => { most = Math.max(most, inFlight(mesh)); });
    assert.equal(most, 2, 'the throttle is reached and never passed');
    assert.equal(mesh.ofType('rebalance_completed').length, 4, 'a1 and b1 each hand two primaries to the new servers');
    assert.equal(inFlight(mesh), 0);
    assert.deepEqual(balanceProblems(mesh.c), []);
    assert.ok(Math.max(...primarySpread(mesh.c).perServer.values()) <= 2, 'every server at the even share, ceil(8 / 6)');
  });

  test('no move is planned or handed off while the coordinator is in TILT', () => {
    const mesh = crowded();
    // The coordinator stalls for 3 s (past tiltThresholdMs): TILT from 5,000 to 6,500 ms.
    mesh.stallUntil(5000);
    mesh.run(5000);
    assert.ok(mesh.c.tilted(5000), 'the stall entered TILT');
    const tiltEndMs = 5000 + mesh.config.tiltRecoveryMs;
    stepTo(mesh, tiltEndMs - mesh.config.tickIntervalMs, () => assert.ok(mesh.c.tilted(mesh.now)));
    assert.deepEqual(mesh.ofType('rebalance_started', 'failover_initiated'), [], 'nothing moves in TILT');
    mesh.run(30_000);
    const started = mesh.ofType('rebalance_started');
    assert.ok(started.length > 0 && started.every((e) => e.atMs >= tiltEndMs), 'moves start once TILT is over');
    assert.equal(mesh.ofType('rebalance_completed').length, 4);
    assert.deepEqual(balanceProblems(mesh.c), []);
  });

  test('no move is planned while another region fails over (a drain whose promotions wait on the store)', () => {
    const mesh = new Mesh();
    for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?', 20);
    mesh.createRegions(Array.from({ length: 9 }, () => ({ backups: 1 })));
    mesh.run(2000);
    // c1 leaves: its three primaries are handed to their backups in zones a and b once its lease
    // is over, and the promotions are not announced while the store holds the writes back (they
    // stay failing over).
    mesh.autoDurable = false;
    assert.ok(mesh.c.leave(sid('c1'), mesh.now).ok);
    mesh.run(2000 + mesh.config.primaryLeaseMs + mesh.config.leaseDriftMarginMs + 100);
    for (const id of ['a2', 'b2']) mesh.register(id, id[0] ?? '?', 20);
    const spread = primarySpread(mesh.c);
    assert.ok(Math.max(...spread.perServer.values()) > spread.bound - 1, 'a server leads more than the even share: a move is wanted');
    const heldUntilMs = 4500;
    stepTo(mesh, heldUntilMs, () => assert.ok(mesh.c.counts().phases.failing_over > 0, 'the drain is still failing over'));
    assert.deepEqual(mesh.ofType('rebalance_started'), [], 'no move while another region fails over');
    mesh.autoDurable = true;
    mesh.makeDurable();
    mesh.run(40_000);
    const started = mesh.ofType('rebalance_started');
    assert.ok(started.length > 0 && started.every((e) => e.atMs > heldUntilMs), 'moves start once the drain is done');
    assert.equal(inFlight(mesh), 0);
    assert.deepEqual(balanceProblems(mesh.c), []);
  });

  describe('critical regions while the mesh is degraded', () => {
    /**
     * Zones a, b, c with one server each lead twelve regions, half of them critical; c1 crashes and
     * its primaries fail over to a1 and b1; then a2 and b2 join. One failed server of five is a
     * failed share of 0.2 (MODERATE by default); the failure window is 3 s, so moves may start.
     */
    function afterCrash(config: MeshConfig): Mesh {
      const mesh = new Mesh({ config: { ...config, failureWindowMs: 3000 } });
      for (const id of ['a1', 'b1', 'c1']) mesh.register(id, id[0] ?? '?', 20);
      mesh.createRegions(Array.from({ length: 12 }, (_, i) => ({ backups: 1, critical: i % 2 === 0 })));
      mesh.run(2000);
      mesh.silence('c1');
      mesh.run(8000);
      assert.equal(mesh.c.counts().statuses.failed, 1, 'c1 failed');
      for (const id of ['a2', 'b2']) mesh.register(id, id[0] ?? '?', 20);
      mesh.run(60_000);
      assert.equal(inFlight(mesh), 0);
      return mesh;
    }
    const critical = (mesh: Mesh, regionId: string) => mesh.c.records().regions.get(rid(regionId))?.critical === true;

    test('degraded: only non-critical regions move; critical ones stay on servers above the even share', () => {
      const mesh = afterCrash(testMeshConfig);
      assert.notEqual(Coordinator.partsForTests(mesh.c).degraded.level, 'NORMAL', 'the mesh is degraded');
      const started = mesh.ofType('rebalance_started');
      assert.ok(started.length > 0, 'non-critical regions move');
      assert.deepEqual(started.filter((e) => critical(mesh, e.regionId)).map((e) => e.regionId), [], 'no critical region moves');
      const spread = primarySpread(mesh.c);
      const crowdedByCritical = [...mesh.c.records().regions.values()].some((r) => r.critical && r.primary !== null &&
        (spread.perServer.get(r.primary) ?? 0) > spread.bound - 1);
      assert.ok(crowdedByCritical, 'a critical region was left on a server above the even share');
    });

    test('not degraded (thresholds out of reach): the same critical regions are moved', () => {
      const mesh = afterCrash({ ...testMeshConfig,
        failedServerShareThresholds: { LIGHT: 0.9, MODERATE: 0.95, SEVERE: 0.99 },
        impairedRegionShareThresholds: { LIGHT: 0.9, MODERATE: 0.95, SEVERE: 0.99 } });
      assert.equal(Coordinator.partsForTests(mesh.c).degraded.level, 'NORMAL');
      assert.ok(mesh.ofType('rebalance_started').some((e) => critical(mesh, e.regionId)), 'a critical region moves');
      assert.deepEqual(balanceProblems(mesh.c), []);
    });
  });
});

describe('a planned hand-off under the primary lease', () => {
  /**
   * One move at a time with the production lease (2,000 ms, margin 100 ms): a1 and b1 lead four
   * regions each when four empty servers join. The first hand-off's region is watched tick by tick.
   */
  test('the old primary is made a backup at once; the new one is promoted only once the lease it held then is over', () => {
    const mesh = crowded({ ...testMeshConfig, maxRebalanceMoves: 1 });
    const { leases } = Coordinator.partsForTests(mesh.c);
    const { primaryLeaseMs } = mesh.config;
    let handedOff: { regionId: string; from: string; at: number; fence: number } | null = null;
    let grantsAfter = 0;
    let collected: string[] | null = null;
    stepTo(mesh, 20_000, () => {
      if (handedOff !== null) {
        const region = mesh.c.records().regions.get(rid(handedOff.regionId));
        if (collected === null && region !== undefined && region.primary !== null && region.primary !== sid(handedOff.from)) {
          // The new primary collects the action once it is announced and acknowledged.
          const got = mesh.c.collectActions(rid(handedOff.regionId), region.primary, mesh.now);
          if (got.ok) collected = got.value.actions.map((a) => `${a.playerId}#${a.seq}`);
        }
        if (region?.primary === null) {
          assert.ok(region.backups.includes(sid(handedOff.from)) && !region.syncing.has(sid(handedOff.from)),
            'the old primary is a confirmed backup (it keeps its state)');
          // The old primary leads other regions: its lease is renewed all along, the fence is not.
          if (leases.fenceOf(sid(handedOff.from)) > handedOff.fence) grantsAfter += 1;
          if (mesh.now - handedOff.at >= mesh.config.heartbeatIntervalMs) {
            assert.equal(mesh.server(handedOff.from).roleIn(handedOff.regionId), 'backup', 'its next reply named it backup');
          }
        }
        return;
      }
      const [started] = mesh.ofType('rebalance_started');
      const region = started === undefined ? undefined : mesh.c.records().regions.get(started.regionId);
      if (started === undefined || region?.primary !== null) return;
      // The hand_off step happened in this tick: the lease of the old primary now ends by then.
      handedOff = { regionId: started.regionId, from: started.fromServerId, at: mesh.now,
        fence: leases.fenceOf(started.fromServerId) };
      const submitted = mesh.c.submitAction(started.regionId, { playerId: 'p1', seq: 1, payload: { n: 1 } }, mesh.now);
      assert.ok(submitted.ok && submitted.value.status === 'buffered', 'an action during the hand-off is buffered (202)');
    });
    assert.ok(handedOff !== null, 'a hand-off happened');
    const { regionId, at, fence } = handedOff;
    assert.ok(fence > at + primaryLeaseMs / 2, 'the old primary held a lease when it was made a backup');
    assert.ok(grantsAfter > 0, 'the old primary was granted leases (for its other regions) while the region waited');
    const [promoted] = mesh.ofType('failover_initiated').filter((e) => e.regionId === regionId);
    const [started] = mesh.ofType('rebalance_started');
    assert.ok(promoted !== undefined && started !== undefined);
    assert.ok(promoted.atMs >= fence, `promoted at ${promoted.atMs} ms, not before the fence at ${fence} ms`);
    assert.ok(promoted.atMs <= fence + mesh.config.tickIntervalMs, 'promoted at the first tick past the fence');
    assert.deepEqual([promoted.newPrimaryId, promoted.failedServerId], [started.toServerId, null], 'to the planned server, no failure');
    assert.equal(mesh.c.records().regions.get(rid(regionId))?.primary, started.toServerId);
    assert.deepEqual(collected, ['p1#1'], 'the buffered action reaches the new primary');
    assert.equal(mesh.c.metrics().failovers.total, 0, 'no failover record');
    assert.equal(mesh.c.metrics().falseFailovers, 0);
    assert.deepEqual(mesh.ofType('administrator_alert'), [], 'no alert');
    assert.equal(mesh.ofType('rebalance_completed').length, 4);
    assert.deepEqual(balanceProblems(mesh.c), []);
  });
});

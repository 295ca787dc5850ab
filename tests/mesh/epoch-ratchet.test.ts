/**
 * Epochs never go backwards, even after an operator restores an old data file (issue 16, point 4):
 * a server that claims a higher epoch than the coordinator's record ratchets the region's epoch up
 * to the claim before the reply is built, so no reply tells a server a lower epoch than it holds,
 * and the next promotion uses the claim + 1.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { CoreState } from '../../mesh/core/state.ts';
import { Mesh, rid } from './coordinator-harness.ts';

const REGION = rid('region-1');

/** Six servers over three zones, one region; everyone heartbeats for 5 s. */
function healthy(): Mesh {
  const mesh = new Mesh();
  for (const [id, zone] of [['a1', 'z1'], ['b1', 'z2'], ['c1', 'z3'], ['a2', 'z1'], ['b2', 'z2'], ['c2', 'z3']] as const) mesh.register(id, zone, 4);
  mesh.createRegions([{ id: 'region-1' }]);
  mesh.run(5000);
  return mesh;
}

/** Fails the region's primary and runs until a new one acknowledged its promotion; returns its epoch. */
function failPrimary(mesh: Mesh, untilMs: number): number {
  const primary = mesh.c.replication(REGION)?.primary?.serverId;
  assert.ok(primary, 'the region has a primary');
  mesh.silence(primary);
  mesh.run(untilMs);
  const view = mesh.c.replication(REGION);
  assert.ok(view?.primary?.acknowledged && view.primary.serverId !== primary, `failed over from ${primary}: ${JSON.stringify(view)}`);
  return view.epoch;
}

/**
 * Watches every heartbeat through the fault layer: a reply must never give a server a lower epoch
 * for a region than the one it claimed in that heartbeat (as primary or backup), nor demote it with
 * a lower one. Those are the fencing tokens servers hold; a server adopts what the reply says.
 */
function watchFencingTokens(mesh: Mesh): string[] {
  const problems: string[] = [];
  const heartbeat = mesh.faults.heartbeat.bind(mesh.faults);
  mesh.faults.heartbeat = (id, input, nowMs) => {
    const result = heartbeat(id, input, nowMs);
    if (!result.ok) return result;
    for (const claim of input.regions) {
      const told = result.value.regions.find((r) => r.regionId === claim.regionId)?.epoch ??
        result.value.demoted.find((d) => d.regionId === claim.regionId)?.epoch;
      if (told !== undefined && told < claim.epoch) problems.push(`t=${nowMs}: ${id} held ${claim.regionId}@${claim.epoch} and was told ${told}`);
    }
    return result;
  };
  return problems;
}

describe('epoch ratchet after a restore of an older data file', () => {
  test('servers that hold newer epochs than the restored file are never told a lower one; the next promotion is max + 1', () => {
    const before = healthy();
    const old: CoreState = JSON.parse(JSON.stringify(before.c.exportState(before.now)));
    assert.equal(old.regions.find((r) => r.id === REGION)?.epoch, 1);
    failPrimary(before, 12_000);
    const newest = failPrimary(before, 24_000);
    assert.equal(newest, 3, 'two failovers after the old file was written');
    const holders = [...before.servers.values()].filter((s) => s.up && s.held.has(REGION)).map((s) => s.id);
    assert.ok(holders.length >= 2, `servers still hold the region: ${holders.join(',')}`);

    // The operator restores the file written at epoch 1; the servers kept running with epoch 3.
    const mesh = Mesh.restartedFrom(before, old, 26_000);
    const problems = watchFencingTokens(mesh);
    const epochsSeen = new Map<string, number>();
    for (let t = 26_000; t <= 60_000; t += 1000) {
      mesh.run(t);
      for (const fake of mesh.servers.values()) {
        const held = fake.held.get(REGION);
        const key = fake.id;
        if (held === undefined) continue;
        const last = epochsSeen.get(key) ?? 0;
        if (held.epoch < last) problems.push(`t=${t}: ${key} went from epoch ${last} to ${held.epoch}`);
        epochsSeen.set(key, held.epoch);
      }
    }
    assert.deepEqual(problems, []);
    const view = mesh.c.replication(REGION);
    assert.ok(view !== undefined && view.epoch > newest, `the region's epoch ${view?.epoch} is above ${newest}`);
    assert.ok(view.primary?.acknowledged, `a primary serves again: ${JSON.stringify(view)}`);
    const ratchetPromotion = mesh.ofType('failover_initiated')[0];
    assert.equal(ratchetPromotion?.epoch, newest + 1, 'the first promotion after the ratchet uses the highest claimed epoch + 1');

    // A failure after the ratchet: the next promotion is again the region's epoch + 1.
    const settled = view.epoch;
    assert.equal(failPrimary(mesh, 75_000), settled + 1);
    assert.deepEqual(problems, []);
  });
});

/**
 * New primaries are spread over zones and servers (issue 16, point 9): the test mesh of
 * `setup_test` and regions created on self-registered servers alike.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Coordinator } from '../../mesh/core/coordinator.ts';
import { testMeshConfig } from '../../mesh/base/config.ts';
import { SeededRandom } from '../../mesh/runtime/random.ts';
import { setupTestMesh } from '../../mesh/simulation/setup.ts';
import { balanceProblems, primarySpread } from '../../mesh/simulation/balance.ts';

describe('primary placement', () => {
  test('setup_test with 100 regions over 3 zones: zones within one of even, at most ceil(100/50)+1 per server, backups elsewhere', () => {
    const core = new Coordinator(testMeshConfig, 0);
    const mesh = setupTestMesh(core, new SeededRandom(1), { regions: 100, zones: 3 }, 0);
    assert.ok(mesh.ok);
    const spread = primarySpread(core);
    assert.equal(mesh.value.servers.length, 50);
    assert.deepEqual([...spread.perZone.values()].sort(), [33, 33, 34]);
    assert.ok(Math.max(...spread.perServer.values()) <= Math.ceil(100 / 50) + 1, 'per-server bound');
    assert.equal([...spread.perServer.values()].filter((n) => n > 0).length, 50, 'every server leads some region');
    assert.deepEqual(balanceProblems(core, { distinctZones: true }), []);
  });

  test('self-registered servers: six servers in three zones, six regions: each server leads exactly one', () => {
    const core = new Coordinator(testMeshConfig, 0);
    for (const id of ['a1', 'a2', 'b1', 'b2', 'c1', 'c2']) core.registerServer({ id, address: `10.0.0.1:${id}`, zone: id[0] ?? '?', capacity: 10 }, 0);
    const created = core.createRegions(Array.from({ length: 6 }, () => ({})), 0);
    assert.ok(created.ok);
    const leaders = created.value.map((r) => r.primary).sort();
    assert.deepEqual(leaders, ['a1', 'a2', 'b1', 'b2', 'c1', 'c2']);
    assert.deepEqual(balanceProblems(core, { distinctZones: true }), []);
  });

  test('zones of unequal size: the per-server bound wins over an even zone split', () => {
    const core = new Coordinator(testMeshConfig, 0);
    core.registerServer({ id: 'lone', address: '10.0.0.1:1', zone: 'small', capacity: 40 }, 0);
    for (let i = 0; i < 9; i++) core.registerServer({ id: `big-${i}`, address: `10.0.0.2:${i}`, zone: 'big', capacity: 40 }, 0);
    assert.ok(core.createRegions(Array.from({ length: 40 }, () => ({ backups: 1 })), 0).ok);
    const spread = primarySpread(core);
    assert.equal(spread.perServer.get('lone' as never), Math.ceil(40 / 10) + 1, 'the small zone takes as many as its one server may');
    assert.ok(Math.max(...spread.perServer.values()) <= spread.bound);
  });
});

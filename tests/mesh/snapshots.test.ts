import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SnapshotStore, type SnapshotInput, type SnapshotLimits } from '../../mesh/actions/snapshots.ts';
import { defaultMeshConfig } from '../../mesh/base/config.ts';
import { regionId, serverId } from '../../mesh/base/types.ts';

const limits: SnapshotLimits = { snapshotMaxBytes: 100, snapshotsMaxPerRegion: 3 };
const R1 = regionId('r1');
const R2 = regionId('r2');
const S1 = serverId('s1');
const S2 = serverId('s2');

function snap(playerId: string, epoch = 1, extra: Partial<SnapshotInput> = {}): SnapshotInput {
  const state = { hp: 10, playerId };
  return { playerId, state, sizeBytes: JSON.stringify(state).length, serverId: S1, epoch, ...extra };
}

function put(store: SnapshotStore, region = R1, input = snap('alice'), nowMs = 0): number {
  const result = store.put(region, input, nowMs);
  assert.ok(result.ok, `put ${input.playerId} was refused`);
  return result.value.version;
}

describe('SnapshotStore.put and get', () => {
  test('stores the latest snapshot with its time and version', () => {
    const store = new SnapshotStore(limits);
    assert.equal(put(store, R1, snap('alice'), 100), 1);
    assert.deepEqual(store.get(R1, 'alice'), { ...snap('alice'), updatedAtMs: 100, version: 1 });
    assert.equal(put(store, R1, snap('alice', 1, { state: { hp: 3 }, sizeBytes: 8 }), 200), 2);
    assert.deepEqual(store.get(R1, 'alice'), { playerId: 'alice', state: { hp: 3 }, sizeBytes: 8, serverId: S1, epoch: 1, updatedAtMs: 200, version: 2 });
    assert.equal(store.count(R1), 1);
  });

  test('unknown players and regions have no snapshot', () => {
    const store = new SnapshotStore(limits);
    put(store);
    assert.equal(store.get(R1, 'bob'), undefined);
    assert.equal(store.get(R2, 'alice'), undefined);
  });

  test('versions grow across players and regions', () => {
    const store = new SnapshotStore(limits);
    assert.deepEqual([put(store, R1, snap('a')), put(store, R2, snap('a')), put(store, R1, snap('b'))], [1, 2, 3]);
  });

  test('get returns a copy that cannot change the store', () => {
    const store = new SnapshotStore(limits);
    put(store);
    const got = store.get(R1, 'alice') as { epoch: number };
    got.epoch = 99;
    assert.equal(store.get(R1, 'alice')?.epoch, 1);
  });

  const epochCases = [
    { stored: 3, posted: 2, accepted: false },
    { stored: 3, posted: 3, accepted: true },
    { stored: 3, posted: 4, accepted: true },
    { stored: 0, posted: 0, accepted: true },
  ];
  for (const { stored, posted, accepted } of epochCases) {
    test(`a snapshot from epoch ${posted} over one from epoch ${stored} is ${accepted ? 'accepted' : 'refused as stale'}`, () => {
      const store = new SnapshotStore(limits);
      put(store, R1, snap('alice', stored));
      const result = store.put(R1, snap('alice', posted, { serverId: S2, state: 'new', sizeBytes: 5 }), 10);
      assert.equal(result.ok, accepted);
      if (!result.ok) {
        assert.equal(result.code, 'stale_epoch');
        assert.deepEqual(result.data, { epoch: posted, storedEpoch: stored });
      }
      assert.equal(store.get(R1, 'alice')?.serverId, accepted ? S2 : S1);
      assert.equal(store.get(R1, 'alice')?.version, accepted ? 2 : 1, 'a refusal does not use a version');
    });
  }

  test('the stale check is per player and per region', () => {
    const store = new SnapshotStore(limits);
    put(store, R1, snap('alice', 5));
    put(store, R1, snap('bob', 1));
    put(store, R2, snap('alice', 1));
  });

  const sizeCases = [
    { sizeBytes: 99, accepted: true },
    { sizeBytes: 100, accepted: true },
    { sizeBytes: 101, accepted: false },
  ];
  for (const { sizeBytes, accepted } of sizeCases) {
    test(`a ${sizeBytes}-byte snapshot with a 100-byte limit is ${accepted ? 'accepted' : 'refused'}`, () => {
      const store = new SnapshotStore(limits);
      const result = store.put(R1, snap('alice', 1, { sizeBytes }), 0);
      assert.equal(result.ok, accepted);
      if (!result.ok) {
        assert.equal(result.code, 'snapshot_too_large');
        assert.deepEqual(result.data, { sizeBytes: 101, maxBytes: 100 });
        assert.equal(store.count(), 0);
        assert.deepEqual(store.toJSON().regions, [], 'a refusal creates no region');
      }
    });
  }

  test('an oversized snapshot leaves the previous one in place', () => {
    const store = new SnapshotStore(limits);
    put(store);
    assert.equal(store.put(R1, snap('alice', 2, { sizeBytes: 1000 }), 10).ok, false);
    assert.equal(store.get(R1, 'alice')?.epoch, 1);
  });

  test('the default configuration allows 64 KiB', () => {
    const store = new SnapshotStore(defaultMeshConfig);
    assert.equal(store.put(R1, snap('a', 1, { sizeBytes: 65_536 }), 0).ok, true);
    assert.equal(store.put(R1, snap('a', 1, { sizeBytes: 65_537 }), 0).ok, false);
  });

  for (const bad of [{ sizeBytes: -1 }, { sizeBytes: 1.5 }, { epoch: -1 }, { epoch: Number.NaN }]) {
    test(`${JSON.stringify(bad)} is a programmer error`, () => {
      assert.throws(() => new SnapshotStore(limits).put(R1, snap('a', 1, bad), 0));
    });
  }
});

describe('SnapshotStore eviction', () => {
  test('evicts the least recently posted snapshot when a region is over its bound', () => {
    const store = new SnapshotStore(limits);
    for (const [i, p] of ['a', 'b', 'c'].entries()) put(store, R1, snap(p), i);
    put(store, R1, snap('a'), 10);
    put(store, R1, snap('d'), 11);
    assert.equal(store.get(R1, 'b'), undefined, 'b was posted least recently');
    assert.deepEqual(['a', 'c', 'd'].map((p) => store.get(R1, p) !== undefined), [true, true, true]);
    assert.equal(store.count(R1), 3);
    put(store, R1, snap('e'), 12);
    assert.equal(store.get(R1, 'c'), undefined);
  });

  test('the bound is per region', () => {
    const store = new SnapshotStore(limits);
    for (const p of ['a', 'b', 'c']) put(store, R1, snap(p));
    for (const p of ['a', 'b', 'c']) put(store, R2, snap(p));
    assert.equal(store.count(), 6);
  });

  test('a refused post does not refresh the posting order', () => {
    const store = new SnapshotStore(limits);
    put(store, R1, snap('a', 2));
    put(store, R1, snap('b'));
    put(store, R1, snap('c'));
    assert.equal(store.put(R1, snap('a', 1), 5).ok, false);
    put(store, R1, snap('d'));
    assert.equal(store.get(R1, 'a'), undefined);
  });
});

describe('SnapshotStore.dropRegion and count', () => {
  test('drops every snapshot of one region', () => {
    const store = new SnapshotStore(limits);
    put(store, R1, snap('a'));
    put(store, R1, snap('b'));
    put(store, R2, snap('a'));
    assert.equal(store.dropRegion(R1), 2);
    assert.equal(store.dropRegion(R1), 0);
    assert.equal(store.count(), 1);
    assert.equal(store.count(R1), 0);
    assert.equal(store.get(R1, 'a'), undefined);
    assert.equal(store.put(R1, snap('a', 0), 0).ok, true, 'the epoch memory went with the region');
  });
});

describe('SnapshotStore JSON', () => {
  test('round-trips exactly through JSON text, eviction order included', () => {
    const store = new SnapshotStore(limits);
    put(store, R2, snap('x', 4), 1);
    put(store, R1, snap('a'), 2);
    put(store, R1, snap('b'), 3);
    put(store, R1, snap('a', 2, { state: [1, 'two', null], sizeBytes: 14 }), 4);
    const text = JSON.stringify(store);
    const restored = SnapshotStore.fromJSON(JSON.parse(text), limits);
    assert.deepEqual(restored.toJSON(), store.toJSON());
    assert.equal(JSON.stringify(restored), text);
    assert.equal(restored.count(), store.count());
    for (const s of [store, restored]) {
      put(s, R1, snap('c'), 5);
      put(s, R1, snap('d'), 6);
    }
    assert.deepEqual(restored.toJSON(), store.toJSON(), 'the restored store evicts and numbers like the original');
    assert.equal(restored.get(R1, 'b'), undefined);
  });

  test('applies a smaller bound configured since the data was written', () => {
    const store = new SnapshotStore(limits);
    for (const p of ['a', 'b', 'c']) put(store, R1, snap(p));
    const restored = SnapshotStore.fromJSON(store.toJSON(), { ...limits, snapshotsMaxPerRegion: 2 });
    assert.equal(restored.count(), 2);
    assert.equal(restored.get(R1, 'a'), undefined);
  });

  test('refuses corrupt data', () => {
    const store = new SnapshotStore(limits);
    put(store);
    const data = store.toJSON();
    assert.throws(() => SnapshotStore.fromJSON({ ...data, version: 2 as 1 }, limits));
    assert.throws(() => SnapshotStore.fromJSON({ ...data, nextVersion: 1 }, limits));
    const twice = data.regions[0]?.snapshots[0];
    assert.ok(twice);
    assert.throws(() => SnapshotStore.fromJSON({ ...data, regions: [{ regionId: R1, snapshots: [twice, twice] }] }, limits));
  });
});

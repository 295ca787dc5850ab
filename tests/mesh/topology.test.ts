import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { replicatesWith } from '../../mesh/failover/topology.ts';
import { filler, region, server, sid, topologyOf } from './topology-fixtures.ts';

describe('replicatesWith (replicates with, as the failure detector asks it)', () => {
  // a1 leads r1 with b1 as backup; c1 leads r2 with d1; b1 also backs r3 of e1. a1 and c1 host
  // many filler regions, which the walk over their regions must look through.
  const servers = ['a1', 'b1', 'c1', 'd1', 'e1'].map((id) => server(id, id[0] ?? '?'));
  const topology = topologyOf(servers, [
    region('r1', { primary: 'a1', backups: ['b1'] }),
    region('r2', { primary: 'c1', backups: ['d1'] }),
    region('r3', { primary: 'e1', backups: ['b1'] }),
  ]);
  filler(topology, 'a1', 5);
  filler(topology, 'c1', 5);
  const record = (id: string) => {
    const found = topology.servers.get(sid(id));
    assert.ok(found !== undefined, `no server ${id}`);
    return found;
  };

  const cases: [string, string, string, boolean][] = [
    ['primary and its backup', 'a1', 'b1', true],
    ['backup and its primary (the other order)', 'b1', 'a1', true],
    ['a backup shared through another region', 'b1', 'e1', true],
    ['servers of different regions', 'a1', 'c1', false],
    ['a backup and a stranger', 'b1', 'd1', false],
    ['an unknown server', 'a1', 'nobody', false],
    ['a server and itself', 'a1', 'a1', false],
  ];
  for (const [name, a, b, expected] of cases) {
    test(`${name}: replicatesWith(${a}, ${b}) is ${expected}`, () => {
      assert.equal(replicatesWith(record(a), sid(b)), expected);
    });
  }

  test('follows the topology: removing the shared backup ends the relation, both ways', () => {
    const a1 = server('a1', 'a');
    const b1 = server('b1', 'b');
    const t = topologyOf([a1, b1], [region('r1', { primary: 'a1', backups: ['b1'] })]);
    assert.equal(replicatesWith(a1, sid('b1')), true);
    const r1 = t.regions.get(region('r1').id);
    assert.ok(r1 !== undefined);
    t.removeBackup(r1, sid('b1'));
    assert.equal(replicatesWith(a1, sid('b1')), false);
    assert.equal(replicatesWith(b1, sid('a1')), false);
  });
});

describe('Topology: the hosted index on the server record', () => {
  test('a server registered after regions that name it takes over their index entries', () => {
    const t = topologyOf([], [region('r1', { primary: 'late', backups: [] })]);
    assert.equal(t.hostedCount(sid('late')), 1);
    const late = server('late', 'z');
    t.addServer(late);
    assert.deepEqual([...late.hosted].map((r) => r.id), ['r1']);
    assert.equal(t.regionsOf(sid('late')), late.hosted, 'lookups by id and the record share one set');
  });
});

describe('Topology.promote', () => {
  const ids = (set: ReadonlySet<{ id: string }>) => [...set].map((r) => r.id);

  test('a promoted backup leaves the backup list and its sync entries, and keeps hosting the region', () => {
    const [a1, b1, c1] = [server('a1', 'a'), server('b1', 'b'), server('c1', 'c')];
    const t = topologyOf([a1, b1, c1], [region('r1', { primary: null, backups: ['b1', 'c1'] })]);
    const r1 = t.regions.get(region('r1').id);
    assert.ok(r1 !== undefined);
    r1.syncing.set(sid('c1'), 5000);
    r1.syncTarget.set(sid('c1'), 7);
    t.promote(r1, sid('c1'));
    assert.equal(r1.primary, sid('c1'));
    assert.deepEqual(r1.backups, [sid('b1')]);
    assert.equal(r1.syncing.size, 0);
    assert.equal(r1.syncTarget.size, 0);
    assert.deepEqual(ids(c1.hosted), ['r1']);
    assert.deepEqual(ids(b1.hosted), ['r1']);
  });

  test('the primary it replaces stops hosting the region unless it is also a backup', () => {
    const [a1, b1] = [server('a1', 'a'), server('b1', 'b')];
    const t = topologyOf([a1, b1], [region('r1', { primary: 'a1', backups: ['b1'] })]);
    const r1 = t.regions.get(region('r1').id);
    assert.ok(r1 !== undefined);
    t.promote(r1, sid('b1'));
    assert.deepEqual(ids(a1.hosted), []);
    assert.deepEqual(ids(b1.hosted), ['r1']);
    assert.deepEqual(r1.backups, []);
  });

  test('a server that was no replica (a former one bringing the region back) starts hosting it', () => {
    const a1 = server('a1', 'a');
    const t = topologyOf([a1], [region('r1', { primary: null, backups: [] })]);
    const r1 = t.regions.get(region('r1').id);
    assert.ok(r1 !== undefined);
    t.promote(r1, sid('a1'));
    assert.equal(r1.primary, sid('a1'));
    assert.deepEqual(ids(a1.hosted), ['r1']);
  });
});

describe('Topology.evict', () => {
  const ids = (set: ReadonlySet<{ id: string }>) => [...set].map((r) => r.id);

  test('a failed server leaves every region it hosts, as primary or backup, and its index entry is empty', () => {
    const [a1, b1, c1, d1] = [server('a1', 'a'), server('b1', 'b'), server('c1', 'c'), server('d1', 'a')];
    const t = topologyOf([a1, b1, c1, d1], [
      region('r1', { primary: 'a1', backups: ['b1', 'c1'] }),
      region('r2', { primary: 'b1', backups: ['c1', 'a1', 'd1'] }),
      region('r3', { primary: 'c1', backups: ['d1'] }),
    ]);
    const [r1, r2, r3] = ['r1', 'r2', 'r3'].map((id) => t.regions.get(region(id).id));
    assert.ok(r1 !== undefined && r2 !== undefined && r3 !== undefined);
    r2.syncing.set(sid('a1'), 5000);
    r2.syncTarget.set(sid('a1'), 3);
    const seen: { region: string; primary: string | null; backups: string[] }[] = [];
    t.evict(a1, (r) => seen.push({ region: r.id, primary: r.primary, backups: [...r.backups] }));
    assert.deepEqual(seen, [
      { region: 'r1', primary: 'a1', backups: ['b1', 'c1'] },
      { region: 'r2', primary: 'b1', backups: ['c1', 'a1', 'd1'] },
    ], 'each region is handed over once, before the server leaves it');
    assert.equal(r1.primary, null);
    assert.deepEqual(r1.backups, [sid('b1'), sid('c1')]);
    assert.deepEqual(r2.backups, [sid('c1'), sid('d1')], 'the other backups keep their order');
    assert.equal(r2.syncing.size, 0);
    assert.equal(r2.syncTarget.size, 0);
    assert.deepEqual(ids(a1.hosted), []);
    assert.deepEqual(ids(b1.hosted), ['r1', 'r2']);
    assert.deepEqual(ids(d1.hosted), ['r2', 'r3']);
    assert.deepEqual(t.regionsOf(sid('a1')), new Set(), 'the index lookup by id agrees');
  });
});

describe('Topology: replicated progress of servers that leave and rejoin a region', () => {
  test('forgetDeparted drops the entries of servers that no longer replicate the region, and only those', () => {
    const [a1, b1, c1] = [server('a1', 'a'), server('b1', 'b'), server('c1', 'c')];
    const t = topologyOf([a1, b1, c1], [region('r1', { primary: 'a1', backups: ['b1', 'c1'], appliedSeq: { a1: 9, b1: 8, c1: 7 } })]);
    const r1 = t.regions.get(region('r1').id);
    assert.ok(r1 !== undefined);
    t.evict(c1, () => {});
    assert.equal(r1.appliedSeq.get(sid('c1')), 7, 'a departed server keeps its entry until the bookkeeping runs');
    t.forgetDeparted(r1);
    assert.deepEqual([...r1.appliedSeq], [[sid('a1'), 9], [sid('b1'), 8]]);
  });

  test('a server assigned to a region again starts without the progress of its earlier stint', () => {
    const [a1, b1] = [server('a1', 'a'), server('b1', 'b')];
    const t = topologyOf([a1, b1], [region('r1', { primary: 'a1', backups: ['b1'], appliedSeq: { a1: 50, b1: 50 } })]);
    const r1 = t.regions.get(region('r1').id);
    assert.ok(r1 !== undefined);
    t.evict(b1, () => {});
    t.addBackup(r1, sid('b1'), 5000, 50);
    assert.equal(r1.appliedSeq.has(sid('b1')), false);
    assert.equal(r1.appliedSeq.get(sid('a1')), 50);
  });
});

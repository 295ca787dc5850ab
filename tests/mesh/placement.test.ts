import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PlacementPlanner, chooseCandidate } from '../../mesh/failover/placement.ts';
import type { RegionRecord, Topology } from '../../mesh/failover/topology.ts';
import type { ServerId, ServerStatus } from '../../mesh/base/types.ts';
import { filler, region, server, sid, topologyOf } from './topology-fixtures.ts';

const always = () => true;

/** Picks one replica for `r`, records it as a (confirmed) backup and tells the planner. */
function place(topology: Topology, planner: PlacementPlanner, r: RegionRecord): ServerId | null {
  const chosen = planner.pick(r);
  if (chosen !== null) {
    if (r.primary === null) topology.setPrimary(r, chosen);
    else topology.addBackup(r, chosen, null);
    planner.placed(chosen);
  }
  return chosen;
}

describe('PlacementPlanner: zone diversity', () => {
  test('a replica goes to a zone the region does not use yet, even when a same-zone server is less loaded', () => {
    const r = region('r', { primary: 'a1' });
    const topology = topologyOf([server('a1', 'a'), server('a2', 'a'), server('b1', 'b'), server('c1', 'c')], [r]);
    filler(topology, 'b1', 5); // b1 at 0.5
    filler(topology, 'c1', 6); // c1 at 0.6; a2 at 0.0
    const planner = new PlacementPlanner(topology, always);
    assert.equal(place(topology, planner, r), 'b1');
    assert.equal(place(topology, planner, r), 'c1', 'zones a and b are used now');
  });

  test('six regions of three replicas on three zones of two servers: every region spans three zones, loads are equal', () => {
    const servers = ['a1', 'a2', 'b1', 'b2', 'c1', 'c2'].map((id) => server(id, id[0] ?? '?'));
    const topology = topologyOf(servers);
    const planner = new PlacementPlanner(topology, always);
    for (let i = 0; i < 6; i++) {
      const r = region(`r${i}`);
      topology.addRegion(r);
      for (let k = 0; k < 3; k++) assert.notEqual(place(topology, planner, r), null);
      const zones = [r.primary, ...r.backups].map((id) => topology.servers.get(id as ServerId)?.zone);
      assert.equal(new Set(zones).size, 3, `region r${i} uses zones ${zones.join(',')}`);
    }
    for (const s of servers) assert.equal(topology.hostedCount(s.id), 3, `${s.id} hosts ${topology.hostedCount(s.id)}`);
  });

  test('when every other zone is full, the replica falls back to a used zone (least loaded there)', () => {
    const r = region('r', { primary: 'a1', backups: ['b1'] });
    const topology = topologyOf([server('a1', 'a'), server('a2', 'a'), server('b1', 'b'), server('b2', 'b'),
      server('c1', 'c', { capacity: 2 })], [r]);
    filler(topology, 'c1', 2); // c1 full
    filler(topology, 'a2', 3); // a2 at 0.3, b2 at 0.0
    const planner = new PlacementPlanner(topology, always);
    assert.equal(planner.pick(r), 'b2');
  });

  test('a server that already hosts the region is never chosen, even as a fallback', () => {
    const r = region('r', { primary: 'a1', backups: ['b1'] });
    const topology = topologyOf([server('a1', 'a'), server('b1', 'b')], [r]);
    assert.equal(new PlacementPlanner(topology, always).pick(r), null);
  });

  test('a server set aside for one region (it hosts it) stays available for the next region of the batch (regression)', () => {
    // Zone a: a1 (load 0.1, hosts r) and a2 (load 0.2). Zone b: b1, full. r needs a third replica:
    // no unused zone has room, so the fallback pass sets a1 aside and chooses a2.
    const r = region('r', { primary: 'a1', backups: ['b1'] });
    const topology = topologyOf([server('a1', 'a'), server('a2', 'a'), server('b1', 'b', { capacity: 1 })], [r]);
    filler(topology, 'a2', 2);
    const planner = new PlacementPlanner(topology, always);
    assert.equal(place(topology, planner, r), 'a2');
    // A new region in the same batch: a1 (0.1) is less loaded than a2 (0.3 now).
    const next = region('next');
    topology.addRegion(next);
    assert.equal(planner.pick(next), 'a1');
  });
});

describe('PlacementPlanner: load', () => {
  const cases: { name: string; servers: [string, number, number, number][]; expect: string }[] = [
    // [id, capacity, hosted, players]
    { name: 'the least loaded server wins', servers: [['b1', 10, 3, 0], ['b2', 10, 1, 0], ['c1', 10, 2, 0]], expect: 'b2' },
    { name: 'load is hosted regions over capacity, not a raw count', servers: [['b1', 10, 1, 0], ['b2', 100, 5, 0]], expect: 'b2' },
    { name: 'equal load: fewer players wins', servers: [['b1', 10, 1, 50], ['b2', 10, 1, 10]], expect: 'b2' },
    { name: 'equal load and players: the lower id wins', servers: [['b2', 10, 1, 5], ['b1', 10, 1, 5]], expect: 'b1' },
    { name: 'across zones the least loaded zone top wins', servers: [['b1', 10, 4, 0], ['c1', 10, 2, 0], ['d1', 10, 3, 0]], expect: 'c1' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = region('r', { primary: 'a1' });
      const topology = topologyOf([server('a1', 'a'),
        ...c.servers.map(([id, capacity, , players]) => server(id, id[0] ?? '?', { capacity, players }))], [r]);
      for (const [id, , hosted] of c.servers) filler(topology, id, hosted);
      assert.equal(new PlacementPlanner(topology, always).pick(r), c.expect);
    });
  }

  test('a placed server is seen with its new load by the next pick of the batch', () => {
    const x = region('x', { primary: 'a1' });
    const y = region('y', { primary: 'a1' });
    const topology = topologyOf([server('a1', 'a'), server('b1', 'b'), server('b2', 'b')], [x, y]);
    const planner = new PlacementPlanner(topology, always);
    assert.equal(place(topology, planner, x), 'b1');
    assert.equal(place(topology, planner, y), 'b2', 'b1 is at 0.1 now, b2 at 0');
  });
});

describe('PlacementPlanner: capacity, status and throttling', () => {
  test('a full server is never chosen; with no room anywhere the answer is null', () => {
    const r = region('r', { primary: 'a1' });
    const topology = topologyOf([server('a1', 'a'), server('b1', 'b', { capacity: 2 }), server('c1', 'c', { capacity: 3 })], [r]);
    filler(topology, 'b1', 2);
    filler(topology, 'c1', 2);
    const planner = new PlacementPlanner(topology, always);
    assert.equal(place(topology, planner, r), 'c1');
    assert.equal(planner.pick(region('other')), 'a1', 'only a1 has room now');
    assert.equal(planner.pick(r), null, 'a1 and c1 host r, b1 is full');
  });

  test('a server filled by this batch stops being offered', () => {
    const topology = topologyOf([server('b1', 'b', { capacity: 2 })]);
    const planner = new PlacementPlanner(topology, always);
    const picks = ['p', 'q', 's'].map((id) => {
      const r = region(id);
      topology.addRegion(r);
      return place(topology, planner, r);
    });
    assert.deepEqual(picks, ['b1', 'b1', null]);
  });

  const statuses: ServerStatus[] = ['suspect', 'failed', 'draining', 'left'];
  for (const status of statuses) {
    test(`a ${status} server is not used`, () => {
      const r = region('r', { primary: 'a1' });
      const topology = topologyOf([server('a1', 'a'), server('b1', 'b', { status }), server('c1', 'c')], [r]);
      filler(topology, 'c1', 5);
      assert.equal(new PlacementPlanner(topology, always).pick(r), 'c1');
    });
  }

  test('a server that cannot take another transition is skipped', () => {
    const r = region('r', { primary: 'a1' });
    const topology = topologyOf([server('a1', 'a'), server('b1', 'b'), server('c1', 'c')], [r]);
    filler(topology, 'c1', 5);
    assert.equal(new PlacementPlanner(topology, (id) => id !== 'b1').pick(r), 'c1');
    assert.equal(new PlacementPlanner(topology, () => false).pick(r), null);
  });

  test('throttling is checked at each pick, not only when the planner is built', () => {
    const busy = new Set<string>();
    const x = region('x', { primary: 'a1' });
    const y = region('y', { primary: 'a1' });
    const topology = topologyOf([server('a1', 'a'), server('b1', 'b'), server('c1', 'c')], [x, y]);
    filler(topology, 'c1', 5);
    const planner = new PlacementPlanner(topology, (id) => !busy.has(id));
    assert.equal(place(topology, planner, x), 'b1');
    busy.add('b1'); // b1 took its last allowed transition
    assert.equal(planner.pick(y), 'c1');
  });
});

describe('chooseCandidate', () => {
  const cases: {
    name: string;
    backups: [string, string, number, number][]; // [id, zone, appliedSeq, extra hosted regions]
    syncing?: string[];
    statuses?: Record<string, ServerStatus>;
    expect: string | null;
  }[] = [
    { name: 'the highest appliedSeq wins over load and id', backups: [['b1', 'b', 10, 0], ['c1', 'c', 12, 5]], expect: 'c1' },
    { name: 'equal appliedSeq: the lower load wins', backups: [['b1', 'b', 10, 3], ['c1', 'c', 10, 1]], expect: 'c1' },
    { name: 'equal seq and load: a zone no other backup uses wins over the lower id',
      backups: [['x1', 'x', 7, 0], ['x2', 'x', 7, 0], ['y9', 'y', 7, 0]], expect: 'y9' },
    { name: 'all equal: the lower id wins', backups: [['c1', 'c', 7, 0], ['b1', 'b', 7, 0]], expect: 'b1' },
    { name: 'a missing appliedSeq counts as 0', backups: [['b1', 'b', -1, 0], ['c1', 'c', 1, 9]], expect: 'c1' },
    { name: 'a syncing backup is never promoted, however far ahead', backups: [['b1', 'b', 5, 0], ['c1', 'c', 99, 0]],
      syncing: ['c1'], expect: 'b1' },
    { name: 'a suspect backup is not promoted', backups: [['b1', 'b', 5, 0], ['c1', 'c', 99, 0]],
      statuses: { c1: 'suspect' }, expect: 'b1' },
    { name: 'a failed backup is not promoted', backups: [['b1', 'b', 5, 0], ['c1', 'c', 99, 0]],
      statuses: { c1: 'failed' }, expect: 'b1' },
    { name: 'a draining backup is not promoted', backups: [['b1', 'b', 5, 0], ['c1', 'c', 99, 0]],
      statuses: { c1: 'draining' }, expect: 'b1' },
    { name: 'no usable confirmed backup: null', backups: [['b1', 'b', 5, 0], ['c1', 'c', 9, 0]],
      syncing: ['b1'], statuses: { c1: 'suspect' }, expect: null },
    { name: 'no backup at all: null', backups: [], expect: null },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const appliedSeq: Record<string, number> = { a1: 1000 };
      for (const [id, , seq] of c.backups) if (seq >= 0) appliedSeq[id] = seq;
      const r = region('r', { primary: 'a1', backups: c.backups.map(([id]) => id), syncing: c.syncing ?? [], appliedSeq });
      const topology = topologyOf([server('a1', 'a'),
        ...c.backups.map(([id, zone]) => server(id, zone, { status: c.statuses?.[id] ?? 'alive' }))], [r]);
      for (const [id, , , extra] of c.backups) filler(topology, id, extra);
      assert.equal(chooseCandidate(topology, r), c.expect === null ? null : sid(c.expect));
    });
  }

  test('the primary itself is never a candidate, however far ahead', () => {
    const r = region('r', { primary: 'a1', backups: ['b1'], appliedSeq: { a1: 100, b1: 1 } });
    const topology = topologyOf([server('a1', 'a'), server('b1', 'b')], [r]);
    assert.equal(chooseCandidate(topology, r), 'b1');
  });
});

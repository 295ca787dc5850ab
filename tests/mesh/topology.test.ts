import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { filler, region, server, sid, topologyOf } from './topology-fixtures.ts';

describe('Topology.arePeers (replicates with, as the failure detector asks it)', () => {
  // a1 leads r1 with b1 as backup; c1 leads r2 with d1; b1 also backs r3 of e1. a1 and c1 host
  // many filler regions, so the walk over the smaller set runs in both directions.
  const topology = topologyOf(['a1', 'b1', 'c1', 'd1', 'e1'].map((id) => server(id, id[0] ?? '?')), [
    region('r1', { primary: 'a1', backups: ['b1'] }),
    region('r2', { primary: 'c1', backups: ['d1'] }),
    region('r3', { primary: 'e1', backups: ['b1'] }),
  ]);
  filler(topology, 'a1', 5);
  filler(topology, 'c1', 5);

  const cases: [string, string, string, boolean][] = [
    ['primary and its backup', 'a1', 'b1', true],
    ['backup and its primary (the other order)', 'b1', 'a1', true],
    ['a backup shared through another region', 'b1', 'e1', true],
    ['servers of different regions', 'a1', 'c1', false],
    ['a backup and a stranger', 'b1', 'd1', false],
    ['an unknown server', 'a1', 'nobody', false],
    ['an unknown server, the other order', 'nobody', 'a1', false],
  ];
  for (const [name, a, b, expected] of cases) {
    test(`${name}: arePeers(${a}, ${b}) is ${expected}`, () => {
      assert.equal(topology.arePeers(sid(a), sid(b)), expected);
    });
  }

  test('follows the topology: removing the shared backup ends the relation', () => {
    const t = topologyOf(['a1', 'b1'].map((id) => server(id, id)), [region('r1', { primary: 'a1', backups: ['b1'] })]);
    assert.equal(t.arePeers(sid('a1'), sid('b1')), true);
    const r1 = t.regions.get(region('r1').id);
    assert.ok(r1 !== undefined);
    t.removeBackup(r1, sid('b1'));
    assert.equal(t.arePeers(sid('a1'), sid('b1')), false);
  });
});

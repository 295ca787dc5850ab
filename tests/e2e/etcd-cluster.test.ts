/**
 * The etcd harness itself: a real three-member cluster that keeps serving with one member down,
 * refuses writes without quorum and serves again once quorum is back. The HA tests rely on each.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { needsEtcd, startEtcdCluster, type EtcdCluster } from './etcd-cluster.ts';

let cluster: EtcdCluster | undefined;
after(async () => { await cluster?.stop(); });

test('a three-member etcd cluster survives one member and stops writing without quorum', needsEtcd(), async () => {
  cluster = await startEtcdCluster();
  const client = new Etcd3({ hosts: [...cluster.endpoints], dialTimeout: 1_000 });
  try {
    await client.put('harness/a').value('1');
    await cluster.kill(0);
    await client.put('harness/b').value('2');
    assert.equal(await client.get('harness/a').string(), '1');

    await cluster.kill(1);
    await assert.rejects(client.put('harness/c').value('3').options({ deadline: Date.now() + 2_000 }).exec());

    await cluster.start(1);
    await client.put('harness/d').value('4');
    assert.equal(await client.get('harness/b').string(), '2');
    // A write that timed out is undecided, not undone: when the member left alone was the Raft
    // leader, its log holds the proposal, which commits once a second member is back.
    assert.ok([null, '3'].includes(await client.get('harness/c').string()));
  } finally {
    client.close();
  }
});

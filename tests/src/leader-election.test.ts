/**
 * Leader election on a real three-member etcd cluster: one leader at a time, followers that know
 * its URL, a hand-over when the leader leaves, and the leader's own fence: cut off from etcd, it
 * stops leading before its lease could have expired on etcd's side (the key is still there when it
 * steps down), and a follower takes over once etcd expires it.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { LeaderElection, type Term } from '../../src/ha/leader-election.ts';
import { createLogger } from '../../src/logger.ts';
import { needsEtcd, startEtcdCluster, type EtcdCluster } from '../e2e/etcd-cluster.ts';
import { waitFor } from '../e2e/service-process.ts';

let cluster: EtcdCluster | undefined;
const clients: Etcd3[] = [];
const elections: LeaderElection[] = [];
let keys = 0;

function client(endpoints: readonly string[]): Etcd3 {
  const made = new Etcd3({ hosts: [...endpoints], dialTimeout: 1000 });
  clients.push(made);
  return made;
}

interface Candidate {
  readonly election: LeaderElection;
  readonly elected: { term: Term; atMs: number }[];
  readonly deposed: { reason: string; atMs: number }[];
}

function candidate(etcd: Etcd3, key: string, url: string, ttlSeconds = 2): Candidate {
  const elected: Candidate['elected'] = [];
  const deposed: Candidate['deposed'] = [];
  const election = new LeaderElection({
    client: etcd, key, selfUrl: url, ttlSeconds, now: () => performance.now(), log: createLogger({ level: 'error' }),
    onElected: (term) => elected.push({ term, atMs: performance.now() }),
    onDeposed: (reason) => deposed.push({ reason, atMs: performance.now() }),
  });
  elections.push(election);
  return { election, elected, deposed };
}

describe('leader election on an etcd lease', needsEtcd(), () => {
  before(async () => {
    cluster = await startEtcdCluster();
  });
  after(async () => {
    for (const election of elections) await election.stop().catch(() => {});
    for (const made of clients) made.close();
    await cluster?.stop();
  });

  test('elects one leader, tells the follower its URL, and hands over at once when it leaves', async () => {
    assert.ok(cluster);
    const key = `/election-${++keys}/leader`;
    const a = candidate(client(cluster.endpoints), key, 'http://a.test');
    await a.election.start();
    await waitFor('a leads', async () => (a.election.isLeader() ? true : undefined), { timeoutMs: 10_000 });
    const b = candidate(client(cluster.endpoints), key, 'http://b.test');
    await b.election.start();
    await waitFor('b knows a', async () => (b.election.view().leaderUrl === 'http://a.test' ? true : undefined), { timeoutMs: 10_000 });
    assert.equal(b.election.view().role, 'follower');
    assert.equal(b.election.fence(), undefined, 'a follower has no fence to write under');
    const fence = a.election.fence();
    assert.ok(fence);
    const stored = await client(cluster.endpoints).get(key).exec();
    assert.equal(stored.kvs[0]?.create_revision, fence.createRevision, 'the fence is the leader key\'s create revision');

    const leftAt = performance.now();
    await a.election.stop();
    await waitFor('b leads', async () => (b.election.isLeader() ? true : undefined), { timeoutMs: 10_000 });
    // A revoked lease deletes the key at once: no TTL to wait for.
    assert.ok(b.elected[0]!.atMs - leftAt < 1500, `b took over ${Math.round(b.elected[0]!.atMs - leftAt)} ms after a left`);
    assert.ok(BigInt(b.election.fence()!.createRevision) > BigInt(fence.createRevision), 'a new term has a higher revision');
    assert.equal(a.election.isLeader(), false);
  });

  test('a leader cut off from etcd stops before its lease expires there; a follower then takes over', async () => {
    assert.ok(cluster);
    const key = `/election-${++keys}/leader`;
    // The leader reaches etcd only through member 0; the follower and the observer through 1 and 2.
    const a = candidate(client([cluster.endpoints[0]!]), key, 'http://a.test');
    await a.election.start();
    await waitFor('a leads', async () => (a.election.isLeader() ? true : undefined), { timeoutMs: 10_000 });
    const others = [cluster.endpoints[1]!, cluster.endpoints[2]!];
    const b = candidate(client(others), key, 'http://b.test');
    await b.election.start();
    const observer = client(others);
    await waitFor('b knows a', async () => (b.election.view().leaderUrl === 'http://a.test' ? true : undefined), { timeoutMs: 10_000 });

    cluster.pause(0);
    try {
      // Watch the key from the other side while a notices nothing but failed keep-alives.
      const deposedAt = await waitFor('a steps down', async () => a.deposed[0]?.atMs, { timeoutMs: 10_000, intervalMs: 20 });
      const stillThere = await observer.get(key).string();
      assert.equal(stillThere, 'http://a.test', 'a stepped down while etcd still held its key: before its lease could expire');
      assert.equal(a.election.isLeader(), false);
      assert.equal(a.election.fence(), undefined);
      assert.match(a.deposed[0]!.reason, /local deadline/);
      await waitFor('b leads', async () => (b.election.isLeader() ? true : undefined), { timeoutMs: 10_000 });
      assert.ok(b.elected[0]!.atMs > deposedAt, 'b was elected after a had stopped');
    } finally {
      cluster.resume(0);
    }
  });
});

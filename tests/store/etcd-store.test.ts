/**
 * The etcd store against a real three-member etcd cluster on loopback: the shared store contract,
 * etcd's limits (a mass-failure-sized batch that no single transaction could carry, written in
 * steps and cut off between them), the leader's fence, a follower's watch, and the cluster losing a
 * member and then its quorum.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EtcdStore, FencedError, type EtcdStoreOptions, type EtcdWriteStep } from '../../src/store/etcd-store.ts';
import { applyRecords } from '../../src/store/etcd-layout.ts';
import { encodeBatch, type ChangeRecord } from '../../src/store/store.ts';
import { needsEtcd, useEtcdCluster } from '../e2e/etcd-cluster.ts';
import { RecordSource, stored, storeContract } from './store-contract.ts';

let etcd: ReturnType<typeof useEtcdCluster>;
let prefixes = 0;

/** A store under a prefix no other test uses. */
function freshStore(options: Partial<EtcdStoreOptions> = {}): EtcdStore {
  prefixes += 1;
  return new EtcdStore({ client: etcd.client(), prefix: `/test-${prefixes}`, ...options });
}

/** A second store over the same keys, as another process (or a restarted one) would open them. */
function reopen(store: EtcdStore, options: Partial<EtcdStoreOptions> = {}): EtcdStore {
  return new EtcdStore({ client: etcd.client(), prefix: store.keys.prefix, ...options });
}

/** Every key under a prefix, now. */
async function keysUnder(prefix: string): Promise<string[]> {
  return etcd.client().getAll().prefix(prefix).keys();
}

/**
 * A batch as large as 30% of a 1,000-region mesh failing produces: every region, the failed servers,
 * a failover record per region, sized like the core's records (about 1 KB for a region with its
 * sync maps), about 1.9 MB in all: more than etcd's 1.5 MiB per request and 128 operations.
 */
function massFailureBatch(tag: string): ChangeRecord[] {
  const records: ChangeRecord[] = [];
  for (let i = 0; i < 1000; i += 1) {
    records.push({ key: `region:r${i}`, value: { id: `r${i}`, epoch: 7, tag, backups: [`s${i}`, `s${i + 1}`], pad: 'x'.repeat(1200) } });
  }
  for (let i = 0; i < 300; i += 1) records.push({ key: `server:s${i}`, value: { id: `s${i}`, status: 'failed', tag } });
  for (let i = 0; i < 300; i += 1) records.push({ key: `failover:fo-${i}`, value: { id: `fo-${i}`, region: `r${i}`, tag, pad: 'y'.repeat(200) } });
  return records;
}

/** A write hook that throws once at one step, as a process dying there would stop the write. */
function cutAt(phase: EtcdWriteStep['phase'], index: number): (step: EtcdWriteStep) => void {
  let armed = true;
  return (step) => {
    if (armed && step.phase === phase && step.index === index) {
      armed = false;
      throw new Error(`cut off before ${phase} ${index}`);
    }
  };
}

describe('EtcdStore on a real three-member cluster', needsEtcd(), () => {
  etcd = useEtcdCluster();

  storeContract('EtcdStore', async (options) => freshStore({
    duringWrite: (step) => (step.phase === 'commit' ? options.duringWrite?.() : undefined),
  }));

  describe('keys and limits', () => {
    it('keeps one key per record under the prefix and the seq under meta/', async () => {
      const store = freshStore();
      const source = new RecordSource();
      source.set('server:a', { id: 'a' });
      await store.append(source.take, source.set('player:["r","p"]', { n: 1 }));
      assert.deepEqual(await keysUnder(store.keys.prefix), [
        `${store.keys.prefix}/meta/seq`, `${store.keys.prefix}/records/player:["r","p"]`, `${store.keys.prefix}/records/server:a`,
      ]);
      assert.equal(await etcd.client().get(`${store.keys.prefix}/meta/seq`).string(), '2');
    });

    it('never lowers the stored seq', async () => {
      const store = freshStore();
      await store.append(() => encodeBatch({ seq: 12, records: [{ key: 'a', value: 1 }] }), 12);
      await store.append(() => encodeBatch({ seq: 1, records: [{ key: 'b', value: 2 }] }), 1);
      assert.equal((await reopen(store).load())?.seq, 12);
    });

    it('writes a one-record batch in one transaction', async () => {
      const counts: number[] = [];
      const store = freshStore({ onWritten: (_ms, transactions) => counts.push(transactions) });
      const source = new RecordSource();
      await store.append(source.take, source.set('a', 1));
      await store.append(source.take, source.set('a', 2));
      assert.deepEqual(counts, [1, 1]);
    });

    it('etcd refuses the mass-failure batch as a single transaction (so the test below means something)', async () => {
      const client = etcd.client();
      const ops = massFailureBatch('one').slice(0, 200).map(({ key, value }) => ({
        request_put: { key: Buffer.from(`/refused/${key}`), value: Buffer.from(JSON.stringify(value)) },
      }));
      await assert.rejects(client.kv.txn({ compare: [], success: ops, failure: [] }), /too many operations/);
    });

    it('writes a mass-failure batch atomically in steps within the limits, and reads it back whole', async () => {
      const counts: number[] = [];
      const store = freshStore({ onWritten: (_ms, transactions) => counts.push(transactions) });
      const batch = massFailureBatch('first');
      await store.append(() => encodeBatch({ seq: 10, records: batch }), 10);
      assert.ok(counts[0]! > 10, `${counts[0]} transactions`);
      const loaded = await reopen(store).load();
      assert.equal(loaded?.seq, 10);
      assert.deepEqual(loaded?.records, applyRecords(new Map(), batch));
      assert.deepEqual(await keysUnder(`${store.keys.prefix}/log/`), [], 'the log is removed once applied');
      assert.equal(await etcd.client().get(store.keys.pending).string(), null);
    });

    it('a cut-off after the commit marker: load replays the whole batch, and the next write carries it forward', async () => {
      const store = freshStore();
      const source = new RecordSource();
      await store.append(source.take, source.set('region:r1', { old: true }));
      const cutOff = reopen(store, { duringWrite: cutAt('apply', 3) });
      const batch = massFailureBatch('second');
      await assert.rejects(cutOff.append(() => encodeBatch({ seq: 20, records: batch }), 20), /cut off before apply 3/);
      assert.notEqual(await etcd.client().get(store.keys.pending).string(), null, 'the marker is still there');

      const restarted = reopen(store);
      const loaded = await restarted.load();
      assert.equal(loaded?.seq, 20);
      assert.deepEqual(loaded?.records, applyRecords(new Map(), batch));
      // A small write after the restart removes the marker and keeps the batch's records.
      await restarted.append(() => encodeBatch({ seq: 21, records: [{ key: 'server:s0', value: { id: 's0', status: 'alive' } }] }), 21);
      assert.equal(await etcd.client().get(store.keys.pending).string(), null);
      assert.deepEqual(await keysUnder(`${store.keys.prefix}/log/`), []);
      const after = await reopen(store).load();
      assert.equal(after?.seq, 21);
      assert.deepEqual(after?.records, applyRecords(applyRecords(new Map(), batch), [{ key: 'server:s0', value: { id: 's0', status: 'alive' } }]));
    });

    it('a cut-off before the commit marker: load ignores the slices, the old state stays, the next large batch removes them', async () => {
      const store = freshStore();
      const source = new RecordSource();
      await store.append(source.take, source.set('region:r1', { old: true }));
      const before = await stored(store);
      const cutOff = reopen(store, { duringWrite: cutAt('commit', 0) });
      await assert.rejects(cutOff.append(() => encodeBatch({ seq: 30, records: massFailureBatch('lost') }), 30), /cut off before commit/);
      assert.ok((await keysUnder(`${store.keys.prefix}/log/`)).length > 0, 'slices were written');

      const restarted = reopen(store);
      assert.deepEqual(await stored(restarted), before);
      assert.equal(restarted.durableSeq(), 1);
      const batch = massFailureBatch('third');
      await restarted.append(() => encodeBatch({ seq: 31, records: batch }), 31);
      assert.deepEqual(await keysUnder(`${store.keys.prefix}/log/`), []);
      assert.deepEqual((await reopen(store).load())?.records, applyRecords(new Map([['region:r1', { old: true }]]), batch));
    });
  });

  describe('fencing', () => {
    it('writes under a fence that holds; a stale fence changes nothing and fails with FencedError', async () => {
      const client = etcd.client();
      const fenceKey = `/fence-${prefixes}`;
      await client.put(fenceKey).value('leader-1');
      const first = (await client.get(fenceKey).exec()).kvs[0]!.create_revision;
      let fence = { key: fenceKey, createRevision: first };
      const store = freshStore({ fence: () => fence });
      const source = new RecordSource();
      await store.append(source.take, source.set('a', 1));

      // Another leader: the key is deleted and created again, so its create revision moves on.
      await client.delete().key(fenceKey);
      await client.put(fenceKey).value('leader-2');
      const before = await keysUnder(store.keys.prefix);
      const revisionBefore = (await client.get(fenceKey).exec()).header.revision;
      await assert.rejects(store.append(source.take, source.set('a', 2)), FencedError);
      await assert.rejects(store.append(() => encodeBatch({ seq: 99, records: massFailureBatch('fenced') }), 99), FencedError);
      assert.equal((await client.get(fenceKey).exec()).header.revision, revisionBefore, 'no revision: nothing was written');
      assert.deepEqual(await keysUnder(store.keys.prefix), before);
      assert.deepEqual(await stored(reopen(store)), { a: 1 });

      // Without any fence (not the leader), nothing is even attempted.
      fence = undefined as unknown as typeof fence;
      await assert.rejects(store.append(source.take, source.set('a', 3)), /no fence/);
      assert.equal((await client.get(fenceKey).exec()).header.revision, revisionBefore);
    });
  });

  describe('a follower', () => {
    it('keeps a copy equal to the durable records through read and watch, large batches included', async () => {
      const leader = freshStore();
      const source = new RecordSource();
      await leader.append(source.take, source.set('a', 1));
      const follower = reopen(leader);
      const snapshot = await follower.read();
      const copy = new Map(snapshot.records);
      let seq = snapshot.seq;
      const seen: string[] = [];
      let firstOfLarge: number | undefined;
      const watch = await follower.watch(snapshot.revision, (change) => {
        seen.push(change.revision);
        if (firstOfLarge === undefined && change.records.some((r) => r.key === 'region:r0')) firstOfLarge = change.records.length;
        applyRecords(copy, change.records);
        seq = change.seq ?? seq;
      });
      try {
        await leader.append(source.take, source.set('b', 2));
        await leader.append(source.take, source.set('a', null));
        await leader.append(() => encodeBatch({ seq: 50, records: massFailureBatch('watched') }), 50);
        await leader.append(() => encodeBatch({ seq: 51, records: [{ key: 'region:r5', value: null }] }), 51);
        const expected = await reopen(leader).load();
        const deadline = Date.now() + 10_000;
        while (seq < 51 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(seq, 51);
        assert.deepEqual(copy, expected?.records);
        assert.equal(firstOfLarge, 1600, 'the large batch arrives whole, at its commit');
        assert.deepEqual(seen, [...seen].sort((x, y) => Number(BigInt(x) - BigInt(y))), 'in revision order');
      } finally {
        await watch.close();
      }
    });
  });

  describe('etcd members failing', () => {
    it('one member of three down changes nothing; without quorum writes fail, and succeed again once it returns', async () => {
      const cluster = etcd.cluster();
      const store = freshStore();
      const source = new RecordSource();
      await store.append(source.take, source.set('a', 1));

      await cluster.kill(0);
      await store.append(source.take, source.set('b', 2));
      await store.append(() => encodeBatch({ seq: 60, records: massFailureBatch('degraded') }), 60);
      assert.equal(store.failing(), false);

      await cluster.kill(1);
      const started = Date.now();
      await assert.rejects(store.append(() => encodeBatch({ seq: 61, records: [{ key: 'c', value: 3 }] }), 61));
      assert.ok(Date.now() - started < 30_000, `failed after ${Date.now() - started} ms`);
      assert.equal(store.failing(), true);
      assert.equal(store.durableSeq(), 60);

      await cluster.start(1);
      await cluster.start(0);
      const deadline = Date.now() + 30_000;
      while (store.failing() && Date.now() < deadline) await store.flush().catch(() => new Promise((resolve) => setTimeout(resolve, 200)));
      assert.equal(store.failing(), false);
      assert.equal(store.durableSeq(), 61);
      const loaded = await reopen(store).load();
      assert.equal(loaded?.records.get('c'), 3);
      assert.deepEqual(loaded?.records.get('b'), 2);
      assert.equal(loaded?.records.size, 1600 + 3);
    });
  });
});

/**
 * The contract every `Store` implementation must meet, written once and run against each of them
 * (`memory-store.test.ts`, `lowdb-store.test.ts`), so that the in-memory twin cannot drift from the
 * file store in the semantics the service relies on.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { encodeBatch, StoreClosedError, type EncodedBatch, type Store } from '../../src/store/store.ts';

/** How a test wants the store built. */
export interface ContractOptions {
  /**
   * Runs inside every physical write, before the data becomes durable; may delay it (slow disk)
   * or throw (failed write).
   */
  readonly duringWrite?: () => Promise<void> | void;
}

/** Builds a fresh, empty store of the implementation under test. */
export type StoreFactory = (options: ContractOptions) => Promise<Store>;

/**
 * A stand-in for the core: keyed values with a change seq, handing out what changed since its last
 * take, as `Coordinator.takeChanges` does.
 */
export class RecordSource {
  seq = 0;
  private readonly values = new Map<string, unknown>();
  private readonly dirty = new Set<string>();

  /** Changes one record (null deletes it) and returns the change's seq. */
  set(key: string, value: unknown): number {
    if (value === null) this.values.delete(key);
    else this.values.set(key, value);
    this.dirty.add(key);
    return ++this.seq;
  }

  /** The `take` of an append: the changed records as of now, encoded as the service hands them out. */
  readonly take = (): EncodedBatch => {
    const records = [...this.dirty].map((key) => ({ key, value: this.values.get(key) ?? null }));
    this.dirty.clear();
    return encodeBatch({ seq: this.seq, records });
  };
}

/** The durable records as a plain object (for deepEqual). */
export async function stored(store: Store): Promise<Record<string, unknown> | undefined> {
  const loaded = await store.load();
  return loaded && Object.fromEntries(loaded.records);
}

/** A write hook that lets writes through until told to make the next few throw. */
export function faultSwitch(): { hook: () => void; failNext: (count: number) => void } {
  let left = 0;
  return {
    hook: () => {
      if (left > 0) {
        left -= 1;
        throw new Error('injected write failure');
      }
    },
    failNext: (count) => {
      left = count;
    },
  };
}

/** Registers the contract suite for one implementation. */
export function storeContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    it('loads undefined from a fresh store and has written nothing', async () => {
      const store = await factory({});
      assert.equal(await store.load(), undefined);
      assert.equal(store.durableSeq(), 0);
      assert.equal(store.writes(), 0);
      await store.close();
    });

    it('round-trips records and their seq; a record is captured when taken', async () => {
      const store = await factory({});
      const source = new RecordSource();
      const original = { items: ['a'] };
      source.set('doc:1', original);
      const seq = source.set('doc:2', { n: 2 });
      await store.append(source.take, seq);
      original.items.push('mutated after the write');
      assert.deepEqual(await stored(store), { 'doc:1': { items: ['a'] }, 'doc:2': { n: 2 } });
      assert.equal(store.durableSeq(), 2);
      assert.equal(store.writes(), 1);
      await store.close();
    });

    it('deletes a record written as null, and keeps the others', async () => {
      const store = await factory({});
      const source = new RecordSource();
      source.set('a', 1);
      await store.append(source.take, source.set('b', 2));
      await store.append(source.take, source.set('a', null));
      assert.deepEqual(await stored(store), { b: 2 });
      await store.close();
    });

    it('coalesces a burst of 1000 unawaited appends into a handful of writes', async () => {
      const store = await factory({ duringWrite: () => delay(20) });
      const source = new RecordSource();
      const pending: Promise<void>[] = [];
      const started = Date.now();
      for (let i = 1; i <= 1000; i += 1) {
        const seq = source.set(`key:${i % 7}`, { i });
        // Every promise must resolve only once its own seq is durable.
        pending.push(store.append(source.take, seq).then(() => assert.ok(store.durableSeq() >= seq)));
        if (i % 10 === 0) await delay(1);
      }
      await Promise.all(pending);
      const elapsed = Date.now() - started;
      // One write in flight plus one queued: the count follows elapsed time, not the 1000 requests.
      assert.ok(store.writes() <= Math.ceil(elapsed / 20) + 2, `${store.writes()} writes in ${elapsed} ms`);
      assert.ok(store.writes() < 30, `${store.writes()} writes for 1000 appends`);
      assert.deepEqual((await stored(store))?.['key:6'], { i: 1000 - ((1000 - 6) % 7) });
      assert.equal(store.durableSeq(), 1000);
      await store.close();
    });

    it('merges a synchronous burst into at most two writes', async () => {
      const store = await factory({ duringWrite: () => delay(5) });
      const source = new RecordSource();
      const pending: Promise<void>[] = [];
      for (let i = 1; i <= 1000; i += 1) pending.push(store.append(source.take, source.set('counter', i)));
      await Promise.all(pending);
      assert.ok(store.writes() <= 2, `${store.writes()} writes`);
      assert.deepEqual(await stored(store), { counter: 1000 });
      await store.close();
    });

    it('takes the records when the write starts, not when the append is requested', async () => {
      const store = await factory({ duringWrite: () => delay(10) });
      const source = new RecordSource();
      const first = store.append(source.take, source.set('counter', 1));
      await delay(2);
      const second = store.append(source.take, source.set('counter', 2));
      source.set('counter', 3); // Changed after the request, before the queued write starts.
      await Promise.all([first, second]);
      assert.deepEqual(await stored(store), { counter: 3 });
      await store.close();
    });

    it('keeps durableSeq monotonic', async () => {
      const store = await factory({ duringWrite: () => delay(1) });
      const seen: number[] = [];
      const take = (): EncodedBatch => encodeBatch({ seq: 0, records: [] });
      const appends = [5, 3, 9, 9, 2, 12].map((seq) => store.append(take, seq).then(() => seen.push(store.durableSeq())));
      await Promise.all(appends);
      await store.append(take, 1);
      seen.push(store.durableSeq());
      for (let i = 1; i < seen.length; i += 1) assert.ok(seen[i]! >= seen[i - 1]!, `durableSeq went ${seen.join(' -> ')}`);
      assert.equal(store.durableSeq(), 12);
      await store.close();
    });

    it('rejects the callers of a failed write, and writes its records with the next one', async () => {
      const faults = faultSwitch();
      const store = await factory({ duringWrite: faults.hook });
      const source = new RecordSource();
      await store.append(source.take, source.set('a', 1));
      faults.failNext(1);
      await assert.rejects(store.append(source.take, source.set('b', 2)), /injected write failure/);
      assert.equal(store.durableSeq(), 1, 'a failed write must not advance durableSeq');
      assert.equal(store.failing(), true);
      assert.deepEqual(await stored(store), { a: 1 });
      // The failed batch's record b is not taken again from the source: the store kept it.
      await store.append(source.take, source.set('c', 3));
      assert.equal(store.durableSeq(), 3);
      assert.equal(store.failing(), false);
      assert.deepEqual(await stored(store), { a: 1, b: 2, c: 3 });
      assert.equal(store.writes(), 3);
      await store.close();
    });

    it('recovers after N failed writes in a row, losing nothing', async () => {
      const faults = faultSwitch();
      const store = await factory({ duringWrite: faults.hook });
      const source = new RecordSource();
      faults.failNext(4);
      for (let i = 1; i <= 4; i += 1) await assert.rejects(store.append(source.take, source.set(`k${i}`, i)), /injected write failure/);
      assert.equal(store.durableSeq(), 0);
      await store.flush();
      assert.equal(store.durableSeq(), 4);
      assert.deepEqual(await stored(store), { k1: 1, k2: 2, k3: 3, k4: 4 });
      await store.close();
    });

    it('rejects an append whose take throws', async () => {
      const store = await factory({});
      await assert.rejects(store.append(() => { throw new Error('take failed'); }, 1), /take failed/);
      assert.equal(store.durableSeq(), 0);
      // The change is still owed, so close retries it and reports that it could not be made durable.
      await assert.rejects(store.close(), /take failed/);
      await assert.rejects(store.append(() => encodeBatch({ seq: 2, records: [] }), 2), StoreClosedError);
    });

    it('flush waits for queued appends; flush on an idle store resolves at once', async () => {
      const store = await factory({ duringWrite: () => delay(10) });
      const source = new RecordSource();
      await store.flush();
      void store.append(source.take, source.set('a', 1));
      void store.append(source.take, source.set('a', 2));
      await store.flush();
      assert.equal(store.durableSeq(), 2);
      await store.close();
    });

    it('close flushes pending appends, then rejects every later append', async () => {
      const store = await factory({ duringWrite: () => delay(5) });
      const source = new RecordSource();
      const pending = store.append(source.take, source.set('a', 1));
      await store.close();
      await pending;
      assert.equal(store.durableSeq(), 1);
      assert.deepEqual(await stored(store), { a: 1 });
      await assert.rejects(store.append(source.take, source.set('a', 2)), StoreClosedError);
      await store.close();
      assert.equal(store.durableSeq(), 1);
    });
  });
}

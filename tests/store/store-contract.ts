/**
 * The contract every `Store` implementation must meet, written once and run against each of them
 * (`memory-store.test.ts`, `lowdb-store.test.ts`), so that the in-memory twin cannot drift from the
 * file store in the semantics the service relies on.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { StoreClosedError, type Store } from '../../src/store/store.ts';

/** The document used by the contract: small, JSON-only, with a counter that identifies the version. */
export interface ContractDoc {
  counter: number;
  items: string[];
}

/** How a test wants the store built. */
export interface ContractOptions {
  /**
   * Runs inside every physical write, before the data becomes visible; may delay it (slow disk)
   * or throw (failed write).
   */
  readonly duringWrite?: () => Promise<void> | void;
}

/** Builds a fresh, empty store of the implementation under test. */
export type StoreFactory = (options: ContractOptions) => Promise<Store<ContractDoc>>;

function doc(counter: number): ContractDoc {
  return { counter, items: [`item-${counter}`] };
}

/** A write hook that lets writes through until told to make the next few throw. */
function faultSwitch(): { hook: () => void; failNext: (count: number) => void } {
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

    it('round-trips a document and its seq', async () => {
      const store = await factory({});
      const original = doc(7);
      await store.save(() => original, 7);
      original.items.push('mutated after the save');
      assert.deepEqual(await store.load(), doc(7));
      assert.equal(store.durableSeq(), 7);
      assert.equal(store.writes(), 1);
      await store.close();
    });

    it('coalesces a burst of 1000 unawaited saves into a handful of writes', async () => {
      const store = await factory({ duringWrite: () => delay(20) });
      let current = 0;
      const pending: Promise<void>[] = [];
      const started = Date.now();
      for (let seq = 1; seq <= 1000; seq += 1) {
        current = seq;
        // Every promise must resolve only once its own seq is durable.
        pending.push(store.save(() => doc(current), seq).then(() => assert.ok(store.durableSeq() >= seq)));
        if (seq % 10 === 0) await delay(1);
      }
      await Promise.all(pending);
      const elapsed = Date.now() - started;
      // One write in flight plus one queued: the count follows elapsed time, not the 1000 requests.
      assert.ok(store.writes() <= Math.ceil(elapsed / 20) + 2, `${store.writes()} writes in ${elapsed} ms`);
      assert.ok(store.writes() < 30, `${store.writes()} writes for 1000 saves`);
      assert.deepEqual(await store.load(), doc(1000));
      assert.equal(store.durableSeq(), 1000);
      await store.close();
    });

    it('merges a synchronous burst into at most two writes', async () => {
      const store = await factory({ duringWrite: () => delay(5) });
      let current = 0;
      const pending: Promise<void>[] = [];
      for (let seq = 1; seq <= 1000; seq += 1) {
        current = seq;
        pending.push(store.save(() => doc(current), seq));
      }
      await Promise.all(pending);
      assert.ok(store.writes() <= 2, `${store.writes()} writes`);
      assert.deepEqual(await store.load(), doc(1000));
      await store.close();
    });

    it('calls the document thunk when the write starts, not when the save is requested', async () => {
      const store = await factory({ duringWrite: () => delay(10) });
      let current = 1;
      const first = store.save(() => doc(current), 1);
      await delay(2);
      const second = store.save(() => doc(current), 2);
      current = 3; // Changed after the request, before the queued write starts.
      await Promise.all([first, second]);
      assert.deepEqual(await store.load(), doc(3));
      await store.close();
    });

    it('keeps durableSeq monotonic', async () => {
      const store = await factory({ duringWrite: () => delay(1) });
      const seen: number[] = [];
      const saves = [5, 3, 9, 9, 2, 12].map((seq) => store.save(() => doc(seq), seq).then(() => seen.push(store.durableSeq())));
      await Promise.all(saves);
      await store.save(() => doc(1), 1);
      seen.push(store.durableSeq());
      for (let i = 1; i < seen.length; i += 1) assert.ok(seen[i]! >= seen[i - 1]!, `durableSeq went ${seen.join(' -> ')}`);
      assert.equal(store.durableSeq(), 12);
      await store.close();
    });

    it('rejects the callers of a failed write, and a later save succeeds', async () => {
      const faults = faultSwitch();
      const store = await factory({ duringWrite: faults.hook });
      await store.save(() => doc(1), 1);
      faults.failNext(1);
      await assert.rejects(store.save(() => doc(2), 2), /injected write failure/);
      assert.equal(store.durableSeq(), 1, 'a failed write must not advance durableSeq');
      assert.deepEqual(await store.load(), doc(1));
      await store.save(() => doc(3), 3);
      assert.equal(store.durableSeq(), 3);
      assert.deepEqual(await store.load(), doc(3));
      assert.equal(store.writes(), 3);
      await store.close();
    });

    it('retries an owed write on flush after a failure', async () => {
      const faults = faultSwitch();
      const store = await factory({ duringWrite: faults.hook });
      faults.failNext(1);
      await assert.rejects(store.save(() => doc(4), 4), /injected write failure/);
      await store.flush();
      assert.equal(store.durableSeq(), 4);
      assert.deepEqual(await store.load(), doc(4));
      await store.close();
    });

    it('rejects a save whose document thunk throws', async () => {
      const store = await factory({});
      await assert.rejects(store.save(() => { throw new Error('snapshot failed'); }, 1), /snapshot failed/);
      assert.equal(store.durableSeq(), 0);
      // The change is still owed, so close retries it and reports that it could not be made durable.
      await assert.rejects(store.close(), /snapshot failed/);
      await assert.rejects(store.save(() => doc(2), 2), StoreClosedError);
    });

    it('flush waits for queued saves; flush on an idle store resolves at once', async () => {
      const store = await factory({ duringWrite: () => delay(10) });
      await store.flush();
      void store.save(() => doc(1), 1);
      void store.save(() => doc(2), 2);
      await store.flush();
      assert.equal(store.durableSeq(), 2);
      await store.close();
    });

    it('close flushes pending saves, then rejects every later save', async () => {
      const store = await factory({ duringWrite: () => delay(5) });
      const pending = store.save(() => doc(1), 1);
      await store.close();
      await pending;
      assert.equal(store.durableSeq(), 1);
      assert.deepEqual(await store.load(), doc(1));
      await assert.rejects(store.save(() => doc(2), 2), StoreClosedError);
      await store.close();
      assert.equal(store.durableSeq(), 1);
    });
  });
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { storeContract, type ContractDoc } from './store-contract.ts';

storeContract('MemoryStore', async (options) => new MemoryStore<ContractDoc>({ beforeWrite: options.duringWrite }));

describe('MemoryStore', () => {
  it('keeps a copy: mutating the returned or the saved object changes nothing stored', async () => {
    const store = new MemoryStore<ContractDoc>();
    const original: ContractDoc = { counter: 1, items: ['a'] };
    await store.save(() => original, 1);
    original.items.push('b');
    const loaded = await store.load();
    loaded?.items.push('c');
    assert.deepEqual(await store.load(), { counter: 1, items: ['a'] });
  });

  it('starts from an initial document and seq, as after a restart', async () => {
    const store = new MemoryStore<ContractDoc>({ initial: { doc: { counter: 5, items: [] }, seq: 5 } });
    assert.equal(store.durableSeq(), 5);
    assert.deepEqual(await store.load(), { counter: 5, items: [] });
    assert.equal(store.writes(), 0);
  });

  it('reports every failed write to onError as well as to the callers', async () => {
    const errors: unknown[] = [];
    const store = new MemoryStore<ContractDoc>({
      beforeWrite: () => { throw new Error('disk on fire'); },
      onError: (error) => errors.push(error),
    });
    await assert.rejects(store.save(() => ({ counter: 1, items: [] }), 1));
    assert.equal(errors.length, 1);
  });
});

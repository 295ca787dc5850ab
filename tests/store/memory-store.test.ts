import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { encodeBatch } from '../../src/store/store.ts';
import { RecordSource, stored, storeContract } from './store-contract.ts';

storeContract('MemoryStore', async (options) => new MemoryStore({ beforeWrite: options.duringWrite }));

describe('MemoryStore', () => {
  it('keeps copies: mutating the returned records changes nothing stored', async () => {
    const store = new MemoryStore();
    const source = new RecordSource();
    await store.append(source.take, source.set('a', { items: ['a'] }));
    const loaded = await store.load();
    (loaded?.records.get('a') as { items: string[] }).items.push('c');
    assert.deepEqual(await stored(store), { a: { items: ['a'] } });
  });

  it('starts from initial records and seq, as after a restart', async () => {
    const store = new MemoryStore({ initial: { records: [{ key: 'a', value: 5 }], seq: 5 } });
    assert.equal(store.durableSeq(), 5);
    assert.deepEqual(await stored(store), { a: 5 });
    assert.equal(store.writes(), 0);
  });

  it('reports every failed write to onError as well as to the callers', async () => {
    const errors: unknown[] = [];
    const store = new MemoryStore({
      beforeWrite: () => { throw new Error('disk on fire'); },
      onError: (error) => errors.push(error),
    });
    await assert.rejects(store.append(() => encodeBatch({ seq: 1, records: [] }), 1));
    assert.equal(errors.length, 1);
  });
});

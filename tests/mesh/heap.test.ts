import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MinHeap } from '../../mesh/base/heap.ts';

const less = (a: number, b: number) => a < b;

function drain(heap: MinHeap<number>): number[] {
  const out: number[] = [];
  for (let next = heap.pop(); next !== undefined; next = heap.pop()) out.push(next);
  return out;
}

describe('MinHeap', () => {
  test('pops pushed items in order', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -1000, max: 1000 })), (items) => {
      const heap = new MinHeap(less);
      for (const item of items) heap.push(item);
      assert.equal(heap.size, items.length);
      assert.deepEqual(drain(heap), [...items].sort((a, b) => a - b));
    }));
  });

  test('a heap built from initial items pops them in order, and pushes mix in', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -1000, max: 1000 })), fc.array(fc.integer({ min: -1000, max: 1000 })),
      (initial, later) => {
        const heap = new MinHeap(less, [...initial]);
        assert.equal(heap.peek(), initial.length === 0 ? undefined : Math.min(...initial));
        for (const item of later) heap.push(item);
        assert.deepEqual(drain(heap), [...initial, ...later].sort((a, b) => a - b));
      }));
  });

  test('retain keeps the items that pass, still in heap order', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -1000, max: 1000 })), (items) => {
      const heap = new MinHeap(less);
      for (const item of items) heap.push(item);
      heap.retain((item) => item % 3 !== 0);
      assert.deepEqual(drain(heap), items.filter((item) => item % 3 !== 0).sort((a, b) => a - b));
    }));
  });

  test('an empty heap pops undefined', () => {
    assert.equal(new MinHeap(less).pop(), undefined);
    assert.equal(new MinHeap(less).peek(), undefined);
  });
});

/**
 * The slicer's fair share: on an idle event loop a slice runs its configured length; after a long
 * turn of other work (thousands of sockets readable at once) the next slice may run a share of that
 * turn, up to a bound, so that a write still progresses when every turn of the loop takes long.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Slicer } from '../../api/slicer.ts';

function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* the event loop is held, as by other work */ }
}

/** A slicer of 2 ms slices whose last pause was held `heldMs` by other work of the loop. */
async function pausedBehind(heldMs: number): Promise<Slicer> {
  const slicer = new Slicer(2);
  if (heldMs > 0) setImmediate(() => busyFor(heldMs));
  await slicer.pause();
  return slicer;
}

test('on an idle loop a slice runs its configured length', async () => {
  const slicer = await pausedBehind(0);
  busyFor(10);
  assert.equal(slicer.overdue(), true, 'a 2 ms slice is over after 10 ms');
});

test('after a long turn of other work the next slice takes a share of it', async () => {
  const slicer = await pausedBehind(200);
  busyFor(10);
  assert.equal(slicer.overdue(), false, 'the loop was held for 200 ms: the slice may run a quarter of it');
  busyFor(50);
  assert.equal(slicer.overdue(), true, 'but not longer');
});

test('however long the loop was held, a slice runs at most 50 ms', async () => {
  const slicer = await pausedBehind(400);
  busyFor(60);
  assert.equal(slicer.overdue(), true, 'a quarter of 400 ms would be 100 ms');
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, type Effect } from '../../mesh/effects/outbox.ts';
import { regionId, serverId } from '../../mesh/base/types.ts';

const r1 = regionId('region-1');
const r2 = regionId('region-2');
const s1 = serverId('srv-1');

/** A new status event at `atMs` (the outbox numbers events in place, so each emit needs its own). */
const statusEvent = (atMs: number) => ({ type: 'server_status_changed', serverId: s1, from: 'alive', to: 'suspect', seq: 0, atMs } as const);

describe('Outbox events', () => {
  test('events get consecutive sequence numbers and their time, and drain in emission order', () => {
    const outbox = new Outbox();
    const first = outbox.emit(statusEvent(100));
    const second = outbox.emit({ type: 'actions_expired', regionId: r1, count: 2, seq: 0, atMs: 250 });
    assert.equal(first.seq, 1);
    assert.equal(first.atMs, 100);
    assert.equal(second.seq, 2);
    assert.equal(second.atMs, 250);
    const effects = outbox.drain();
    assert.deepEqual(effects, [{ type: 'emit', event: first }, { type: 'emit', event: second }]);
  });

  test('emitting alone requests no persistence', () => {
    const outbox = new Outbox();
    outbox.emit(statusEvent(1));
    assert.equal(outbox.drain().some((e) => e.type === 'persist'), false);
  });

  test('a drain empties the outbox; the next one returns only what came after', () => {
    const outbox = new Outbox();
    outbox.emit(statusEvent(1));
    outbox.changed();
    assert.equal(outbox.drain().length, 2);
    assert.deepEqual(outbox.drain(), []);
    const later = outbox.emit(statusEvent(2));
    assert.deepEqual(outbox.drain(), [{ type: 'emit', event: later }]);
  });

  test('the emitted event is the literal numbered in place (callers hand over a fresh literal, no copy is made)', () => {
    const outbox = new Outbox();
    const literal = { type: 'actions_expired' as const, regionId: r1, count: 1, seq: 0 as const, atMs: 5 };
    const event = outbox.emit(literal);
    assert.equal(event, literal);
    assert.deepEqual(event, { type: 'actions_expired', regionId: r1, count: 1, seq: 1, atMs: 5 });
    assert.deepEqual(Object.keys(event), ['type', 'regionId', 'count', 'seq', 'atMs'], 'seq and atMs come last, as published');
  });
});

describe('Outbox persistence requests', () => {
  test('several changes coalesce into one persist carrying the latest change, before the events', () => {
    const outbox = new Outbox();
    assert.equal(outbox.changed(), 1);
    const event = outbox.emit(statusEvent(10));
    assert.equal(outbox.changed(), 2);
    assert.equal(outbox.changed(), 3);
    const effects: Effect[] = outbox.drain();
    assert.deepEqual(effects, [{ type: 'persist', seq: 3 }, { type: 'emit', event }]);
  });

  test('positions report event, change and durable sequence numbers', () => {
    const outbox = new Outbox();
    outbox.emit(statusEvent(1));
    outbox.changed();
    outbox.changed();
    assert.deepEqual(outbox.positions(), { eventSeq: 1, changeSeq: 2, durableSeq: 0 });
    outbox.markDurable(1);
    assert.deepEqual(outbox.positions(), { eventSeq: 1, changeSeq: 2, durableSeq: 1 });
  });

  test('a restored outbox continues the sequences and counts everything restored as durable', () => {
    const outbox = new Outbox({ eventSeq: 41, changeSeq: 17 });
    assert.deepEqual(outbox.positions(), { eventSeq: 41, changeSeq: 17, durableSeq: 17 });
    assert.equal(outbox.emit(statusEvent(0)).seq, 42);
    assert.equal(outbox.changed(), 18);
    // Nothing was changed before the restart that still needs a write: no persist until a change.
    assert.deepEqual(new Outbox({ eventSeq: 3, changeSeq: 3 }).drain(), []);
  });
});

describe('Outbox held announcements (rule 2: persist the epoch before announcing it)', () => {
  test('an announcement is released once the change that made it is durable, not before', () => {
    const outbox = new Outbox();
    outbox.changed(); // 1: something unrelated
    outbox.holdAnnouncement(r1, 2); // 2
    assert.deepEqual(outbox.drain(), [{ type: 'persist', seq: 2 }]);
    assert.deepEqual(outbox.markDurable(1), []);
    assert.deepEqual(outbox.markDurable(2), [{ regionId: r1, epoch: 2 }]);
    assert.deepEqual(outbox.markDurable(2), [], 'released only once');
  });

  test('releases come oldest first and stop at the durable watermark', () => {
    const outbox = new Outbox();
    outbox.holdAnnouncement(r1, 2); // 1
    outbox.holdAnnouncement(r2, 5); // 2
    outbox.changed(); // 3
    outbox.holdAnnouncement(r1, 3); // 4
    assert.deepEqual(outbox.markDurable(3), [{ regionId: r1, epoch: 2 }, { regionId: r2, epoch: 5 }]);
    assert.deepEqual(outbox.markDurable(4), [{ regionId: r1, epoch: 3 }]);
  });

  const watermarks: { name: string; marks: number[]; durable: number }[] = [
    { name: 'never moves backwards', marks: [3, 1], durable: 3 },
    { name: 'is clamped to the latest change (a future seq is not durable yet)', marks: [99], durable: 3 },
    { name: 'ignores a mark of zero', marks: [0], durable: 0 },
    { name: 'takes the highest of several marks', marks: [1, 2, 2], durable: 2 },
  ];
  for (const { name, marks, durable } of watermarks) {
    test(`the durable watermark ${name}`, () => {
      const outbox = new Outbox();
      outbox.changed();
      outbox.changed();
      outbox.changed();
      for (const mark of marks) outbox.markDurable(mark);
      assert.equal(outbox.positions().durableSeq, durable);
    });
  }

  test('a too-high mark before a promotion does not release the promotion made after it', () => {
    const outbox = new Outbox();
    outbox.changed(); // 1
    outbox.markDurable(50); // clamped to 1
    outbox.holdAnnouncement(r1, 2); // 2
    assert.deepEqual(outbox.markDurable(1), []);
    assert.deepEqual(outbox.markDurable(2), [{ regionId: r1, epoch: 2 }]);
  });
});

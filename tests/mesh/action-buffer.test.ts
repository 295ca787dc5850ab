import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ActionBuffer, ackMemoryAgeFactor, type ActionBufferLimits, type BufferedAction } from '../../mesh/actions/action-buffer.ts';
import { defaultMeshConfig } from '../../mesh/base/config.ts';
import { regionId, type RegionId } from '../../mesh/base/types.ts';

const limits: ActionBufferLimits = { actionBufferMaxPerPlayer: 3, actionBufferMaxAgeMs: 1000 };
const R1 = regionId('r1');
const R2 = regionId('r2');
const ackMemoryMs = ackMemoryAgeFactor * limits.actionBufferMaxAgeMs;

/** Submits and asserts the submission was accepted (buffered or duplicate). */
function submit(buffer: ActionBuffer, region: RegionId, playerId: string, seq: number, nowMs: number, payload: unknown = { seq }) {
  const result = buffer.submit(region, { playerId, seq, payload }, nowMs);
  assert.ok(result.ok, `submit ${playerId}#${seq} was refused`);
  return result.value;
}

const keys = (items: readonly BufferedAction[]) => items.map((a) => `${a.playerId}#${a.seq}`);

describe('ActionBuffer.submit', () => {
  test('buffers an action and reports the player pending count and expiry', () => {
    const buffer = new ActionBuffer(limits);
    assert.deepEqual(submit(buffer, R1, 'alice', 0, 100), { status: 'buffered', pending: 1, expiresAtMs: 1100 });
    assert.deepEqual(submit(buffer, R1, 'alice', 1, 150), { status: 'buffered', pending: 2, expiresAtMs: 1150 });
    assert.deepEqual(submit(buffer, R1, 'bob', 0, 150), { status: 'buffered', pending: 1, expiresAtMs: 1150 });
    assert.equal(buffer.pending(R1), 3);
    assert.equal(buffer.pending(R2), 0);
    assert.equal(buffer.pendingTotal(), 3);
  });

  const duplicateCases = [
    { name: 'seq already held', seq: 4, expected: { status: 'duplicate', pending: 2, expiresAtMs: 1010 } },
    { name: 'seq equal to the highest acknowledged', seq: 3, expected: { status: 'duplicate', pending: 2, expiresAtMs: 500 } },
    { name: 'seq below the highest acknowledged but never seen (out of order) is accepted', seq: 1, expected: { status: 'buffered', pending: 3, expiresAtMs: 1500 } },
    { name: 'seq above the highest acknowledged', seq: 6, expected: { status: 'buffered', pending: 3, expiresAtMs: 1500 } },
  ] as const;
  for (const { name, seq, expected } of duplicateCases) {
    test(`duplicate detection: ${name}`, () => {
      const buffer = new ActionBuffer(limits);
      submit(buffer, R1, 'alice', 3, 0);
      submit(buffer, R1, 'alice', 4, 10);
      submit(buffer, R1, 'alice', 5, 20);
      assert.deepEqual(buffer.acknowledge(R1, [{ playerId: 'alice', seq: 3 }], 30), { acknowledged: 1, unknown: 0 });
      const before = buffer.toJSON();
      assert.deepEqual(submit(buffer, R1, 'alice', seq, 500), expected);
      if (expected.status === 'duplicate') {
        assert.deepEqual(buffer.toJSON().regions, before.regions, 'a duplicate changes nothing');
        assert.equal(buffer.counters().duplicates, 1);
      } else {
        assert.equal(buffer.counters().duplicates, 0);
      }
    });
  }

  test('a repeat with the same payload in another key order is a duplicate', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'alice', 0, 0, { a: 1, b: [1, { c: 2, d: 3 }] });
    assert.equal(submit(buffer, R1, 'alice', 0, 10, { b: [1, { d: 3, c: 2 }], a: 1 }).status, 'duplicate');
  });

  const conflictCases = [
    { name: 'seq still held', seq: 4 },
    { name: 'seq already acknowledged (replayed)', seq: 3 },
  ] as const;
  for (const { name, seq } of conflictCases) {
    test(`a repeated seq with another payload is refused as action_conflict: ${name}; the first payload stands`, () => {
      const buffer = new ActionBuffer(limits);
      submit(buffer, R1, 'alice', 3, 0);
      submit(buffer, R1, 'alice', 4, 10);
      buffer.acknowledge(R1, [{ playerId: 'alice', seq: 3 }], 30);
      const before = buffer.toJSON();
      const refused = buffer.submit(R1, { playerId: 'alice', seq, payload: 'another payload' }, 500);
      assert.equal(refused.ok, false);
      assert.equal(!refused.ok && refused.code, 'action_conflict');
      assert.deepEqual(buffer.toJSON(), before, 'a conflict changes nothing');
      assert.deepEqual(buffer.collect(R1, 600).map((a) => a.payload), [{ seq: 4 }]);
    });
  }

  test('the digests survive toJSON/fromJSON: a conflict is still recognised after a restart', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'alice', 1, 0);
    submit(buffer, R1, 'alice', 2, 0);
    buffer.acknowledge(R1, [{ playerId: 'alice', seq: 1 }], 10);
    const restored = ActionBuffer.fromJSON(JSON.parse(JSON.stringify(buffer.toJSON())), limits);
    for (const seq of [1, 2]) {
      const again = restored.submit(R1, { playerId: 'alice', seq, payload: 'other' }, 20);
      assert.equal(!again.ok && again.code, 'action_conflict', `seq ${seq}`);
      assert.equal(submit(restored, R1, 'alice', seq, 20).status, 'duplicate', `seq ${seq} with its own payload`);
    }
  });

  test('an acknowledgement recorded without a digest (older data file) treats any repeat as a duplicate', () => {
    const restored = ActionBuffer.fromJSON({
      version: 1, counters: { buffered: 1, replayed: 1, expired: 0, rejected: 0, duplicates: 0 },
      regions: [{ regionId: R1, players: [{ playerId: 'alice', highestAckedSeq: 1, lastAckedAtMs: 0, ackedSeqs: [1], ackedFloor: null, actions: [] }] }],
    }, limits);
    assert.equal(submit(restored, R1, 'alice', 1, 10, 'anything').status, 'duplicate');
  });

  test('a full player buffer is refused with retryAfterMs until its oldest action expires', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'alice', 0, 100);
    submit(buffer, R1, 'alice', 1, 200);
    submit(buffer, R1, 'alice', 2, 300);
    const before = buffer.toJSON().regions;
    const refused = buffer.submit(R1, { playerId: 'alice', seq: 3, payload: null }, 600);
    assert.equal(refused.ok, false);
    assert.ok(!refused.ok);
    assert.equal(refused.code, 'buffer_full');
    assert.equal(refused.retryAfterMs, 500);
    assert.match(refused.detail, /alice/);
    assert.deepEqual(buffer.toJSON().regions, before, 'a refusal changes nothing');
    assert.equal(buffer.counters().rejected, 1);
    // Other players and other regions are not affected by alice's bound.
    submit(buffer, R1, 'bob', 0, 600);
    submit(buffer, R2, 'alice', 0, 600);
  });

  test('retryAfterMs is at least 1 when the oldest action is due but not yet expired', () => {
    const buffer = new ActionBuffer(limits);
    for (const seq of [0, 1, 2]) submit(buffer, R1, 'alice', seq, 0);
    const refused = buffer.submit(R1, { playerId: 'alice', seq: 3, payload: null }, 5000);
    assert.ok(!refused.ok);
    assert.equal(refused.retryAfterMs, 1);
  });

  test('acknowledging frees room in a full buffer', () => {
    const buffer = new ActionBuffer(limits);
    for (const seq of [0, 1, 2]) submit(buffer, R1, 'alice', seq, 0);
    buffer.acknowledge(R1, [{ playerId: 'alice', seq: 0 }], 10);
    assert.equal(submit(buffer, R1, 'alice', 3, 20).status, 'buffered');
  });

  test('the default configuration holds 100 actions per player', () => {
    const buffer = new ActionBuffer(defaultMeshConfig);
    for (let seq = 0; seq < 100; seq++) assert.equal(submit(buffer, R1, 'p', seq, seq).status, 'buffered');
    const refused = buffer.submit(R1, { playerId: 'p', seq: 100, payload: null }, 100);
    assert.ok(!refused.ok);
    assert.equal(refused.retryAfterMs, 9900);
  });

  for (const seq of [-1, 1.5, Number.NaN]) {
    test(`a seq of ${seq} is a programmer error`, () => {
      assert.throws(() => new ActionBuffer(limits).submit(R1, { playerId: 'p', seq, payload: null }, 0));
    });
  }
});

describe('ActionBuffer.collect', () => {
  test('groups per player in ascending seq, players by oldest acceptance then id', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'carol', 7, 50);
    submit(buffer, R1, 'bob', 2, 10);
    submit(buffer, R1, 'carol', 5, 60);
    submit(buffer, R1, 'alice', 1, 10);
    submit(buffer, R1, 'bob', 1, 20);
    submit(buffer, R2, 'zed', 0, 0);
    assert.deepEqual(keys(buffer.collect(R1, 100)), ['alice#1', 'bob#1', 'bob#2', 'carol#5', 'carol#7']);
    assert.deepEqual(buffer.collect(R1, 100)[0], { playerId: 'alice', seq: 1, payload: { seq: 1 }, acceptedAtMs: 10 });
  });

  const limitCases = [
    { limit: 0, expected: [] },
    { limit: 2, expected: ['a#0', 'a#1'] },
    { limit: 3, expected: ['a#0', 'a#1', 'b#0'] },
    { limit: 10, expected: ['a#0', 'a#1', 'b#0'] },
  ];
  for (const { limit, expected } of limitCases) {
    test(`limit ${limit} cuts the flattened list`, () => {
      const buffer = new ActionBuffer(limits);
      submit(buffer, R1, 'a', 0, 0);
      submit(buffer, R1, 'a', 1, 0);
      submit(buffer, R1, 'b', 0, 5);
      assert.deepEqual(keys(buffer.collect(R1, 10, limit)), expected);
    });
  }

  test('hands un-acknowledged actions out again and removes nothing', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    submit(buffer, R1, 'a', 1, 0);
    assert.deepEqual(keys(buffer.collect(R1, 10)), ['a#0', 'a#1']);
    assert.deepEqual(keys(buffer.collect(R1, 20)), ['a#0', 'a#1']);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 30);
    assert.deepEqual(keys(buffer.collect(R1, 40)), ['a#1']);
    assert.equal(buffer.pending(R1), 1);
  });

  test('leaves out actions that reached their maximum age, even before expire runs', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    submit(buffer, R1, 'a', 1, 1);
    assert.deepEqual(keys(buffer.collect(R1, 999)), ['a#0', 'a#1']);
    assert.deepEqual(keys(buffer.collect(R1, 1000)), ['a#1']);
    assert.deepEqual(keys(buffer.collect(R1, 1001)), []);
  });

  test('orders players by their oldest unexpired action', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'b', 0, 0);
    submit(buffer, R1, 'a', 0, 500);
    submit(buffer, R1, 'b', 1, 600);
    assert.deepEqual(keys(buffer.collect(R1, 700)), ['b#0', 'b#1', 'a#0']);
    assert.deepEqual(keys(buffer.collect(R1, 1000)), ['a#0', 'b#1']);
  });
});

describe('ActionBuffer.acknowledge', () => {
  test('acknowledging twice counts once', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    assert.deepEqual(buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 10), { acknowledged: 1, unknown: 0 });
    assert.deepEqual(buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 20), { acknowledged: 0, unknown: 1 });
    submit(buffer, R1, 'a', 1, 30);
    assert.deepEqual(buffer.acknowledge(R1, [{ playerId: 'a', seq: 1 }, { playerId: 'a', seq: 1 }], 40), { acknowledged: 1, unknown: 1 });
    assert.equal(buffer.counters().replayed, 2);
    assert.equal(buffer.pendingTotal(), 0);
  });

  test('acks for unknown players, seqs or regions change nothing', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    const acks = [{ playerId: 'nobody', seq: 0 }, { playerId: 'a', seq: 9 }];
    assert.deepEqual(buffer.acknowledge(R1, acks, 10), { acknowledged: 0, unknown: 2 });
    assert.deepEqual(buffer.acknowledge(R2, [{ playerId: 'a', seq: 0 }], 10), { acknowledged: 0, unknown: 1 });
    assert.equal(buffer.pending(R1), 1);
  });

  test('an ack out of order keeps the lower seqs pending and makes them duplicates on resubmission', () => {
    const buffer = new ActionBuffer(limits);
    for (const seq of [0, 1, 2]) submit(buffer, R1, 'a', seq, 0);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 2 }], 10);
    assert.deepEqual(keys(buffer.collect(R1, 20)), ['a#0', 'a#1']);
    assert.equal(submit(buffer, R1, 'a', 1, 30).status, 'duplicate');
  });

  test('an action acknowledged is never reported expired', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    submit(buffer, R1, 'a', 1, 0);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 10);
    assert.deepEqual(buffer.expire(1000), [{ regionId: R1, playerId: 'a', seq: 1 }]);
    assert.deepEqual(buffer.counters(), { buffered: 2, replayed: 1, expired: 1, rejected: 0, duplicates: 0 });
  });
});

describe('ActionBuffer.expire', () => {
  const boundaryCases = [
    { nowMs: 1099, expected: [] },
    { nowMs: 1100, expected: ['a#0'] },
    { nowMs: 1199, expected: ['a#0'] },
    { nowMs: 1200, expected: ['a#0', 'b#0'] },
  ];
  for (const { nowMs, expected } of boundaryCases) {
    test(`at ${nowMs} ms expires exactly the actions with acceptedAtMs + maxAge <= now`, () => {
      const buffer = new ActionBuffer(limits);
      submit(buffer, R1, 'a', 0, 100);
      submit(buffer, R2, 'b', 0, 200);
      const expired = buffer.expire(nowMs);
      assert.deepEqual(expired.map((r) => `${r.playerId}#${r.seq}`), expected);
      assert.equal(buffer.counters().expired, expected.length);
      assert.equal(buffer.pendingTotal(), 2 - expected.length);
      assert.deepEqual(buffer.expire(nowMs), [], 'expiring again reports nothing');
    });
  }

  test('reports in acceptance order with the region of each action', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R2, 'b', 1, 20);
    submit(buffer, R1, 'a', 0, 10);
    submit(buffer, R2, 'b', 0, 20);
    assert.deepEqual(buffer.expire(5000), [
      { regionId: R1, playerId: 'a', seq: 0 },
      { regionId: R2, playerId: 'b', seq: 0 },
      { regionId: R2, playerId: 'b', seq: 1 },
    ]);
  });

  test('an expired action never acknowledged may be submitted again as a new action', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    buffer.expire(1000);
    assert.equal(submit(buffer, R1, 'a', 0, 1001).status, 'buffered');
    assert.equal(buffer.counters().buffered, 2);
  });

  test('idle ticks expire nothing, with 10,000 regions holding actions, until they are due', () => {
    const buffer = new ActionBuffer(defaultMeshConfig);
    for (let i = 0; i < 10_000; i++) submit(buffer, regionId(`r${i}`), 'p', 0, 1000 + i);
    for (let tick = 0; tick < 100; tick++) assert.equal(buffer.expire(10_000).length, 0);
    assert.equal(buffer.expire(30_000).length, 10_000);
  });

  test('an acknowledged seq below the highest is still a duplicate; one beyond the memory bound is treated as replayed', () => {
    const buffer = new ActionBuffer({ actionBufferMaxPerPlayer: 2, actionBufferMaxAgeMs: 1000 });
    for (const seq of [3, 5]) submit(buffer, R1, 'alice', seq, 0);
    buffer.acknowledge(R1, [{ playerId: 'alice', seq: 5 }, { playerId: 'alice', seq: 3 }], 10);
    assert.equal(submit(buffer, R1, 'alice', 3, 20).status, 'duplicate');
    assert.equal(submit(buffer, R1, 'alice', 4, 20).status, 'buffered');
    // Memory holds 4 x 2 = 8 acknowledged seqs; acknowledging 8 more forgets 3 and 5 (floor 5).
    buffer.acknowledge(R1, [{ playerId: 'alice', seq: 4 }], 30);
    for (let seq = 10; seq < 17; seq += 2) {
      submit(buffer, R1, 'alice', seq, 40);
      submit(buffer, R1, 'alice', seq + 1, 40);
      buffer.acknowledge(R1, [{ playerId: 'alice', seq }, { playerId: 'alice', seq: seq + 1 }], 50);
    }
    assert.equal(submit(buffer, R1, 'alice', 2, 60).status, 'duplicate', 'below the forgotten floor');
    assert.equal(submit(buffer, R1, 'alice', 9, 60).status, 'buffered', 'above the floor and never seen');
    const restored = ActionBuffer.fromJSON(JSON.parse(JSON.stringify(buffer.toJSON())), { actionBufferMaxPerPlayer: 2, actionBufferMaxAgeMs: 1000 });
    const again = restored.submit(R1, { playerId: 'alice', seq: 12, payload: { seq: 12 } }, 70);
    assert.ok(again.ok && again.value.status === 'duplicate', 'the acknowledged-seq memory survives a restart');
  });
});

describe('ActionBuffer bounds', () => {
  test('forgets a player acknowledged long ago once nothing is pending', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 5, 0);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 5 }], 0);
    buffer.expire(ackMemoryMs - 1);
    assert.equal(submit(buffer, R1, 'a', 5, ackMemoryMs - 1).status, 'duplicate');
    buffer.expire(ackMemoryMs);
    assert.deepEqual(buffer.toJSON().regions, []);
    assert.equal(submit(buffer, R1, 'a', 5, ackMemoryMs).status, 'buffered', 'the memory of the ack is gone');
  });

  test('keeps the ack memory of a player that still holds actions, then forgets it', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 0);
    submit(buffer, R1, 'a', 1, ackMemoryMs - 10);
    buffer.expire(ackMemoryMs);
    assert.equal(buffer.toJSON().regions[0]?.players[0]?.highestAckedSeq, 0);
    assert.deepEqual(buffer.expire(ackMemoryMs + 990), [{ regionId: R1, playerId: 'a', seq: 1 }]);
    assert.equal(buffer.toJSON().regions.length, 1, 'the ack is remembered until the re-check');
    buffer.expire(ackMemoryMs + 1000);
    assert.deepEqual(buffer.toJSON().regions, []);
  });

  test('a later ack extends the memory', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 0);
    submit(buffer, R1, 'a', 1, 5000);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 1 }], 5000);
    buffer.expire(ackMemoryMs);
    assert.equal(submit(buffer, R1, 'a', 1, ackMemoryMs).status, 'duplicate');
    buffer.expire(5000 + ackMemoryMs);
    assert.equal(submit(buffer, R1, 'a', 1, 5000 + ackMemoryMs).status, 'buffered');
  });

  test('a player that never had an ack is forgotten as soon as its actions expire', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    buffer.expire(1000);
    assert.deepEqual(buffer.toJSON().regions, []);
  });

  test('many submit and ack cycles keep the pending count exact', () => {
    const buffer = new ActionBuffer(limits);
    for (let seq = 0; seq < 5000; seq++) {
      submit(buffer, R1, 'a', seq, seq);
      buffer.acknowledge(R1, [{ playerId: 'a', seq }], seq);
    }
    assert.equal(buffer.pendingTotal(), 0);
    assert.deepEqual(buffer.expire(100_000), []);
    assert.equal(buffer.counters().replayed, 5000);
  });
});

describe('ActionBuffer.dropRegion', () => {
  test('reports the region actions as expired and forgets its ack memory', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 0);
    submit(buffer, R1, 'a', 1, 10);
    submit(buffer, R1, 'b', 0, 5);
    submit(buffer, R2, 'a', 0, 0);
    assert.deepEqual(buffer.dropRegion(R1), [{ regionId: R1, playerId: 'b', seq: 0 }, { regionId: R1, playerId: 'a', seq: 1 }]);
    assert.equal(buffer.counters().expired, 2);
    assert.equal(buffer.pending(R1), 0);
    assert.equal(buffer.pendingTotal(), 1);
    assert.deepEqual(buffer.dropRegion(R1), []);
    assert.deepEqual(buffer.expire(5000), [{ regionId: R2, playerId: 'a', seq: 0 }], 'dropped actions do not expire twice');
    assert.equal(submit(buffer, R1, 'a', 0, 5000).status, 'buffered');
  });
});

describe('ActionBuffer.dropRegion and later use of the region', () => {
  test('a record created after a drop keeps its own ack memory', () => {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R1, 'a', 0, 0);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 0);
    buffer.dropRegion(R1);
    submit(buffer, R1, 'a', 3, 5000);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 3 }], 5000);
    buffer.expire(ackMemoryMs);
    assert.equal(submit(buffer, R1, 'a', 3, ackMemoryMs).status, 'duplicate', 'the dropped record must not forget the new one');
  });
});

describe('ActionBuffer JSON', () => {
  function populated(): ActionBuffer {
    const buffer = new ActionBuffer(limits);
    submit(buffer, R2, 'b', 2, 5, { move: [1, 2] });
    submit(buffer, R1, 'a', 0, 0);
    submit(buffer, R1, 'a', 1, 10, 'text');
    submit(buffer, R1, 'c', 4, 20, null);
    buffer.acknowledge(R1, [{ playerId: 'a', seq: 0 }], 30);
    submit(buffer, R1, 'a', 1, 40, 'text');
    buffer.submit(R1, { playerId: 'c', seq: 9, payload: null }, 50);
    return buffer;
  }

  test('round-trips exactly through JSON text', () => {
    const original = populated();
    const text = JSON.stringify(original);
    const restored = ActionBuffer.fromJSON(JSON.parse(text), limits);
    assert.deepEqual(restored.toJSON(), original.toJSON());
    assert.equal(JSON.stringify(restored), text);
    assert.deepEqual(restored.counters(), original.counters());
    assert.equal(restored.pendingTotal(), original.pendingTotal());
    assert.deepEqual(restored.collect(R1, 100), original.collect(R1, 100));
    assert.deepEqual(restored.submit(R1, { playerId: 'a', seq: 0, payload: 1 }, 60), original.submit(R1, { playerId: 'a', seq: 0, payload: 1 }, 60));
    assert.deepEqual(restored.expire(1010), original.expire(1010));
    assert.deepEqual(restored.toJSON(), original.toJSON());
  });

  test('is canonical: the same content gives the same JSON whatever the history', () => {
    const one = new ActionBuffer(limits);
    submit(one, R1, 'a', 1, 0);
    submit(one, R2, 'b', 0, 0);
    submit(one, R1, 'a', 0, 0);
    const two = new ActionBuffer(limits);
    submit(two, R2, 'b', 0, 0);
    submit(two, R1, 'a', 0, 0);
    submit(two, R1, 'a', 1, 0);
    assert.deepEqual(one.toJSON(), two.toJSON());
  });

  test('restores actions that expired while the process was down, to be reported by the next expire', () => {
    const restored = ActionBuffer.fromJSON(JSON.parse(JSON.stringify(populated())), limits);
    assert.equal(restored.expire(1_000_000).length, 4);
    assert.equal(restored.pendingTotal(), 0);
  });

  test('refuses corrupt data', () => {
    const data = populated().toJSON();
    assert.throws(() => ActionBuffer.fromJSON({ ...data, version: 2 as 1 }, limits));
    const repeated = { playerId: 'x', highestAckedSeq: null, lastAckedAtMs: null, actions: [{ seq: 1, payload: 0, acceptedAtMs: 0 }, { seq: 1, payload: 0, acceptedAtMs: 0 }] };
    assert.throws(() => ActionBuffer.fromJSON({ ...data, regions: [{ regionId: R1, players: [repeated] }] }, limits));
  });
});

type Step =
  | { kind: 'submit'; region: number; player: number; seq: number; advanceMs: number }
  | { kind: 'collect'; region: number; limit: number | undefined }
  | { kind: 'ackCollected'; region: number; count: number }
  | { kind: 'ackAny'; region: number; player: number; seq: number }
  | { kind: 'expire'; advanceMs: number }
  | { kind: 'drop'; region: number }
  | { kind: 'roundTrip' };

const region = fc.integer({ min: 0, max: 1 });
const player = fc.integer({ min: 0, max: 2 });
const seq = fc.integer({ min: 0, max: 6 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('submit' as const), region, player, seq, advanceMs: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('collect' as const), region, limit: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('ackCollected' as const), region, count: fc.integer({ min: 0, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ackAny' as const), region, player, seq }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('expire' as const), advanceMs: fc.integer({ min: 0, max: 1200 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), region }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('roundTrip' as const) }) },
);

/** Reference model: which accepted action (by acceptance number) is live under each key, and how each ended. */
class Ledger {
  readonly live = new Map<string, { id: number; acceptedAtMs: number }>();
  readonly outcomes: ('pending' | 'replayed' | 'expired')[] = [];

  accept(key: string, acceptedAtMs: number): void {
    assert.ok(!this.live.has(key), `${key} accepted while already held`);
    this.live.set(key, { id: this.outcomes.push('pending') - 1, acceptedAtMs });
  }

  end(key: string, outcome: 'replayed' | 'expired'): void {
    const entry = this.live.get(key);
    assert.ok(entry, `${key} ended as ${outcome} but is not held`);
    assert.equal(this.outcomes[entry.id], 'pending', `${key} ended twice`);
    this.outcomes[entry.id] = outcome;
    this.live.delete(key);
  }

  count(outcome: 'pending' | 'replayed' | 'expired'): number {
    return this.outcomes.filter((o) => o === outcome).length;
  }
}

describe('ActionBuffer property', () => {
  test('every accepted action is replayed once or expired once, never both; collect is ascending per player', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 80 }), (steps) => {
        let buffer = new ActionBuffer(limits);
        const ledger = new Ledger();
        const collected = new Map<number, BufferedAction[]>();
        const rid = (r: number) => regionId(`r${r}`);
        let nowMs = 0;
        for (const step of steps) {
          switch (step.kind) {
            case 'submit': {
              nowMs += step.advanceMs;
              const key = `${step.region}|p${step.player}|${step.seq}`;
              const held = [...ledger.live.keys()].filter((k) => k.startsWith(`${step.region}|p${step.player}|`)).length;
              const result = buffer.submit(rid(step.region), { playerId: `p${step.player}`, seq: step.seq, payload: [step.region, step.player, step.seq] }, nowMs);
              if (!result.ok) assert.equal(held, limits.actionBufferMaxPerPlayer, 'refused below the bound');
              else if (result.value.status === 'buffered') ledger.accept(key, nowMs);
              else assert.ok(ledger.live.has(key) || result.value.expiresAtMs === nowMs, 'a duplicate neither held nor acknowledged');
              break;
            }
            case 'collect': {
              const items = buffer.collect(rid(step.region), nowMs, step.limit);
              checkCollectOrder(items, nowMs);
              for (const a of items) assert.ok(ledger.live.has(`${step.region}|${a.playerId}|${a.seq}`), 'handed out an action not held');
              collected.set(step.region, items);
              break;
            }
            case 'ackCollected':
            case 'ackAny': {
              const acks = step.kind === 'ackAny'
                ? [{ playerId: `p${step.player}`, seq: step.seq }]
                : (collected.get(step.region) ?? []).slice(0, step.count).map(({ playerId, seq }) => ({ playerId, seq }));
              let expected = 0;
              for (const ack of acks) {
                const key = `${step.region}|${ack.playerId}|${ack.seq}`;
                if (ledger.live.has(key)) { ledger.end(key, 'replayed'); expected++; }
              }
              assert.deepEqual(buffer.acknowledge(rid(step.region), acks, nowMs), { acknowledged: expected, unknown: acks.length - expected });
              break;
            }
            case 'expire': {
              nowMs += step.advanceMs;
              for (const ref of buffer.expire(nowMs)) {
                const key = `${ref.regionId.slice(1)}|${ref.playerId}|${ref.seq}`;
                const acceptedAtMs = ledger.live.get(key)?.acceptedAtMs ?? Number.NaN;
                assert.ok(acceptedAtMs + limits.actionBufferMaxAgeMs <= nowMs, `${key} expired early`);
                ledger.end(key, 'expired');
              }
              for (const { acceptedAtMs } of ledger.live.values()) assert.ok(acceptedAtMs + limits.actionBufferMaxAgeMs > nowMs, 'an expired action is still held');
              break;
            }
            case 'drop':
              for (const ref of buffer.dropRegion(rid(step.region))) ledger.end(`${step.region}|${ref.playerId}|${ref.seq}`, 'expired');
              assert.ok(![...ledger.live.keys()].some((k) => k.startsWith(`${step.region}|`)), 'drop left actions behind');
              break;
            case 'roundTrip': {
              const restored = ActionBuffer.fromJSON(JSON.parse(JSON.stringify(buffer)), limits);
              assert.deepEqual(restored.toJSON(), buffer.toJSON());
              buffer = restored;
              break;
            }
          }
          assert.equal(buffer.pendingTotal(), ledger.live.size);
          const c = buffer.counters();
          assert.deepEqual([c.buffered, c.replayed, c.expired], [ledger.outcomes.length, ledger.count('replayed'), ledger.count('expired')]);
        }
        for (const ref of buffer.expire(nowMs + limits.actionBufferMaxAgeMs)) ledger.end(`${ref.regionId.slice(1)}|${ref.playerId}|${ref.seq}`, 'expired');
        assert.equal(ledger.count('pending'), 0, 'an accepted action neither replayed nor expired');
        assert.equal(buffer.pendingTotal(), 0);
      }),
      { numRuns: 300 },
    );
  });
});

/** Each player's items are contiguous, strictly ascending in seq and unexpired. */
function checkCollectOrder(items: readonly BufferedAction[], nowMs: number): void {
  const finished = new Set<string>();
  let previous: BufferedAction | undefined;
  for (const item of items) {
    assert.ok(item.acceptedAtMs + limits.actionBufferMaxAgeMs > nowMs, 'handed out an expired action');
    if (previous?.playerId === item.playerId) assert.ok(item.seq > previous.seq, 'seqs not ascending');
    else {
      if (previous) finished.add(previous.playerId);
      assert.ok(!finished.has(item.playerId), 'a player appears in two groups');
    }
    previous = item;
  }
}

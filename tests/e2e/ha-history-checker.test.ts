/**
 * The history checker of the replicas' Jepsen-style test, on hand-made histories: a good one passes,
 * and each broken guarantee is caught by its own check (and only by it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHistory, leaderChanges } from './ha-history-checker.ts';
import type { EtcdChange, HeartbeatReply, History } from './ha-history.ts';

const L1 = 'http://127.0.0.1:1001';
const L2 = 'http://127.0.0.1:1002';
const P = '/j';

function beat(server: string, sentAt: number, regions: HeartbeatReply['regions'], extra: Partial<HeartbeatReply> = {}): HeartbeatReply {
  return { server, sentAt, receivedAt: sentAt + 5, by: L1, status: 'alive', regions, demoted: [], leaseMs: 2000, ...extra };
}

function change(type: 'put' | 'delete', key: string, mod: number, create: number, value = ''): EtcdChange {
  return { type, key: `${P}${key}`, modRevision: String(mod), createRevision: String(create), value };
}

/**
 * L1 leads term 2 and writes; s1 leads castle at epoch 1. L1 is paused; its key is deleted at
 * revision 5; L2 leads term 6, fails castle over to s2 (s1 was killed), and the paused L1 is woken
 * at revision 9 and then follows.
 */
function good(): History {
  return {
    prefix: P,
    actions: [
      { region: 'castle', player: 'p1', seq: 1, sentAt: 100, receivedAt: 110, status: 202, by: L1 },
      { region: 'castle', player: 'p1', seq: 2, sentAt: 3000, receivedAt: 3010, status: 202, by: L2 },
      { region: 'castle', player: 'p1', seq: 3, sentAt: 3100, receivedAt: 3110, status: null, by: undefined },
    ],
    collects: [{ server: 's1', region: 'castle', epoch: 1, sentAt: 190, receivedAt: 200, by: L1, actions: [{ player: 'p1', seq: 1 }] }],
    heartbeats: [
      beat('s1', 0, [{ region: 'castle', role: 'primary', epoch: 1 }]),
      beat('s2', 10, [{ region: 'castle', role: 'backup', epoch: 1 }]),
      beat('s2', 4000, [{ region: 'castle', role: 'primary', epoch: 2 }], { by: L2 }),
      beat('s2', 5000, [{ region: 'castle', role: 'primary', epoch: 2 }], { by: L2 }),
    ],
    leaders: [{ at: 0, url: L1, term: '2' }, { at: 2500, url: L2, term: '6' }],
    faults: [
      { kind: 'pause-leader', at: 1000, url: L1, term: '2' },
      { kind: 'kill-server', at: 1500, server: 's1' },
      { kind: 'resume-leader', at: 4500, url: L1, term: '2', revision: '9', followedAt: 4700 },
    ],
    events: [{ id: 'a.1', data: '{"seq":1}' }, { id: 'b.2', data: '{"seq":2}' }, { id: 'b.2', data: '{"seq":2}' }],
    etcd: [
      change('put', '/leader', 2, 2, L1), change('put', '/records/r1', 3, 3, '{}'), change('put', '/meta/seq', 4, 4, '1'),
      change('delete', '/leader', 5, 0), change('put', '/leader', 6, 6, L2), change('put', '/records/r1', 7, 3, '{}'),
      change('put', '/meta/seq', 8, 4, '2'),
    ],
    final: {
      buffered: [{ region: 'castle', player: 'p1', seq: 2 }],
      failovers: [{ region: 'castle', failedServer: 's1' }],
      servers: [{ id: 's1', status: 'failed' }, { id: 's2', status: 'alive' }],
    },
  };
}

/** The checks that fail on `history`. */
function failing(history: History): string[] {
  return [...new Set(checkHistory(history).map((v) => v.check))].sort();
}

describe('history checker of the replicas', () => {
  test('a history that keeps every guarantee passes, and leader changes are counted', () => {
    assert.deepEqual(checkHistory(good()), []);
    assert.equal(leaderChanges(good()), 1);
  });

  test('an action answered 202 that is neither collected nor buffered at the end is lost', () => {
    const h = good();
    const lost = checkHistory({ ...h, final: { ...h.final, buffered: [] } });
    assert.deepEqual(lost.map((v) => v.check), ['lost-action']);
    assert.match(lost[0]!.detail, /castle\/p1#2/);
  });

  test('two servers told primary of one region in one epoch', () => {
    const h = good();
    assert.deepEqual(failing({ ...h, heartbeats: [...h.heartbeats, beat('s3', 20, [{ region: 'castle', role: 'primary', epoch: 1 }])] }), ['two-primaries']);
  });

  test('a new primary told while the previous primary\'s lease could still run', () => {
    const h = good();
    const early = beat('s2', 1000, [{ region: 'castle', role: 'primary', epoch: 2 }], { receivedAt: 1500 });
    const found = checkHistory({ ...h, heartbeats: [beat('s1', 0, [{ region: 'castle', role: 'primary', epoch: 1 }]), early] });
    assert.deepEqual(found.map((v) => v.check), ['two-primaries']);
    assert.match(found[0]!.detail, /within the lease of s1 at epoch 1 \(until 2000\)/);
  });

  test('an epoch lower than one announced before the reply was sent, to another server or the same one', () => {
    const h = good();
    const stale = beat('s3', 4100, [{ region: 'castle', role: 'backup', epoch: 1 }], { by: L2 });
    assert.deepEqual(failing({ ...h, heartbeats: [...h.heartbeats, stale] }), ['epoch-decreased']);
    const own = beat('s2', 4500, [{ region: 'castle', role: 'backup', epoch: 1 }], { by: L2, receivedAt: 4000 });
    const found = checkHistory({ ...h, heartbeats: [...h.heartbeats.slice(0, 3), own] });
    assert.ok(found.some((v) => v.check === 'epoch-decreased' && /s2 held castle@2/.test(v.detail)), JSON.stringify(found));
  });

  test('a healthy server judged failed, demoted, failed over, or losing a region it led', () => {
    const h = good();
    const unfaulted = { ...h, faults: h.faults.filter((f) => f.kind !== 'kill-server') };
    assert.deepEqual(failing(unfaulted), ['false-failover']);
    const judged = beat('s2', 6000, [{ region: 'castle', role: 'primary', epoch: 2 }], { by: L2, status: 'failed' });
    assert.deepEqual(failing({ ...h, heartbeats: [...h.heartbeats, judged] }), ['false-failover']);
    const demoted = beat('s2', 6000, [{ region: 'castle', role: 'backup', epoch: 2 }], { by: L2, demoted: ['castle'] });
    const found = checkHistory({ ...h, heartbeats: [...h.heartbeats, demoted] }).map((v) => v.detail);
    assert.ok(found.some((d) => /demoted from castle/.test(d)) && found.some((d) => /lost castle, which it led at epoch 2/.test(d)), found.join('\n'));
  });

  test('a write outside every term, a change seq going back, a paused leader woken inside its term', () => {
    const h = good();
    const gap = [...h.etcd.slice(0, 4), change('put', '/records/r2', 5, 5, '{}'), ...h.etcd.slice(4)];
    assert.match(checkHistory({ ...h, etcd: renumbered(gap) }).map((v) => v.detail).join('\n'), /lies in no leader's term/);
    const back = [...h.etcd, change('put', '/meta/seq', 9, 4, '1')];
    assert.deepEqual(failing({ ...h, etcd: [...h.etcd, change('put', '/meta/seq', 9, 4, '2')] }), [], 'a counter-only write keeps the seq');
    assert.deepEqual(failing({ ...h, etcd: back }), ['stale-leader-write']);
    const early = h.faults.map((f) => (f.kind === 'resume-leader' ? { ...f, revision: '4' } : f));
    assert.deepEqual(failing({ ...h, faults: early }), ['stale-leader-write']);
  });

  test('a paused leader that answers a request sent while it was stopped, before it is seen following', () => {
    const h = good();
    const late = (sentAt: number, receivedAt: number) => ({ region: 'castle', player: 'p2', seq: 1, sentAt, receivedAt, status: 202, by: L1 });
    const kept = { ...h.final, buffered: [...h.final.buffered, { region: 'castle', player: 'p2', seq: 1 }] };
    assert.deepEqual(failing({ ...h, actions: [...h.actions, late(2000, 4600)], final: kept }), ['stale-leader-answer']);
    assert.deepEqual(failing({ ...h, actions: [...h.actions, late(990, 4600)], final: kept }), [], 'sent before the pause: it may have been decided then');
    assert.deepEqual(failing({ ...h, actions: [...h.actions, late(4750, 4800)], final: kept }), [], 'answered after it was seen following (it led again)');
  });

  test('one event id naming two events', () => {
    const h = good();
    assert.deepEqual(failing({ ...h, events: [...h.events, { id: 'a.1', data: '{"seq":1,"other":true}' }] }), ['event-id-reused']);
  });
});

/** Keeps revisions increasing after an inserted change: each change's revision is its position + 2. */
function renumbered(changes: EtcdChange[]): EtcdChange[] {
  return changes.map((c, i) => {
    const mod = String(i + 2);
    return { ...c, modRevision: mod, createRevision: c.createRevision === c.modRevision ? mod : c.createRevision };
  });
}

/**
 * Checks a history of coordinator replicas (tests/e2e/ha-history.ts) against the guarantees of
 * issue 20. Pure: it reads the history only, so its unit tests feed it hand-made bad histories.
 *
 * - `lost-action`: an action answered 202 was never collected by a primary and is not buffered at the end.
 * - `two-primaries`: two servers were told primary of one region in one epoch, or a server learnt it
 *   leads a region at a higher epoch while the previous primary's lease (from when it sent the
 *   heartbeat that got it) could still be running.
 * - `epoch-decreased`: a reply gave a region a lower epoch than a reply the same server had before,
 *   or than any reply received before it was sent (a new leader must know every announced epoch).
 * - `false-failover`: a server that was never killed nor failed by injection was judged failed,
 *   demoted, or lost a region it led.
 * - `stale-leader-write`: a write in etcd outside the term of any leader key, the change seq going
 *   back (a deposed leader's late write), or a paused leader woken before its term ended.
 * - `stale-leader-answer`: a paused leader answered a request sent while it was stopped, before it was seen following.
 * - `event-id-reused`: one event id named two different events.
 */
import type { EtcdChange, Fault, History, HeartbeatReply } from './ha-history.ts';

/** One broken guarantee. */
export interface Violation {
  readonly check: 'lost-action' | 'two-primaries' | 'epoch-decreased' | 'false-failover' | 'stale-leader-write' | 'stale-leader-answer' | 'event-id-reused';
  readonly detail: string;
}

/** Every violation in the history (empty when it keeps every guarantee). */
export function checkHistory(history: History): Violation[] {
  return [
    ...lostActions(history), ...twoPrimaries(history), ...decreasedEpochs(history), ...falseFailovers(history),
    ...staleWrites(history), ...staleAnswers(history), ...reusedEventIds(history),
  ];
}

/** How many times the leader changed: distinct terms seen, less the first. */
export function leaderChanges(history: History): number {
  return Math.max(0, new Set(history.leaders.map((l) => l.term)).size - 1);
}

const actionKey = (region: string, player: string, seq: number) => `${region}/${player}#${seq}`;

function lostActions(history: History): Violation[] {
  const kept = new Set<string>();
  for (const c of history.collects) for (const a of c.actions) kept.add(actionKey(c.region, a.player, a.seq));
  for (const a of history.final.buffered) kept.add(actionKey(a.region, a.player, a.seq));
  const acked = new Set(history.actions.filter((a) => a.status === 202).map((a) => actionKey(a.region, a.player, a.seq)));
  return [...acked].filter((key) => !kept.has(key))
    .map((key) => ({ check: 'lost-action', detail: `${key} was answered 202, never collected and is not buffered at the end` }));
}

function twoPrimaries(history: History): Violation[] {
  const primaries = new Map<string, Set<string>>();
  for (const reply of history.heartbeats) {
    for (const a of reply.regions) {
      if (a.role !== 'primary') continue;
      const key = `${a.region}@${a.epoch}`;
      const set = primaries.get(key) ?? new Set<string>();
      set.add(reply.server);
      primaries.set(key, set);
    }
  }
  return [...primaries].filter(([, servers]) => servers.size > 1)
    .map(([key, servers]): Violation => ({ check: 'two-primaries', detail: `${key} had primaries ${[...servers].sort().join(', ')}` }))
    .concat(overlappingLeases(history));
}

/** A new primary told before an older epoch's primary lease was surely over. */
function overlappingLeases(history: History): Violation[] {
  const out: Violation[] = [];
  // Per region, the latest lease end granted per epoch.
  const leases = new Map<string, Map<number, { server: string; until: number }>>();
  for (const reply of history.heartbeats) {
    for (const a of reply.regions) {
      if (a.role !== 'primary' || reply.leaseMs <= 0) continue;
      const byEpoch = leases.get(a.region) ?? new Map<number, { server: string; until: number }>();
      const until = reply.sentAt + reply.leaseMs;
      if ((byEpoch.get(a.epoch)?.until ?? -Infinity) < until) byEpoch.set(a.epoch, { server: reply.server, until });
      leases.set(a.region, byEpoch);
    }
  }
  for (const reply of history.heartbeats) {
    for (const a of reply.regions) {
      if (a.role !== 'primary') continue;
      for (const [epoch, lease] of leases.get(a.region) ?? []) {
        if (epoch < a.epoch && lease.server !== reply.server && reply.receivedAt < lease.until) {
          out.push({ check: 'two-primaries', detail: `${reply.server} learnt it leads ${a.region}@${a.epoch} at ${reply.receivedAt}, ` +
            `within the lease of ${lease.server} at epoch ${epoch} (until ${lease.until})` });
        }
      }
    }
  }
  return out;
}

function decreasedEpochs(history: History): Violation[] {
  const out: Violation[] = [];
  const bySent = [...history.heartbeats].sort((a, b) => a.sentAt - b.sentAt);
  const byReceived = [...history.heartbeats].sort((a, b) => a.receivedAt - b.receivedAt);
  const known = new Map<string, { epoch: number; reply: HeartbeatReply }>();
  const held = new Map<string, number>();
  let next = 0;
  for (const reply of bySent) {
    // Every reply received before this one was sent: its epochs were announced already.
    for (; next < byReceived.length && byReceived[next]!.receivedAt < reply.sentAt; next++) {
      const earlier = byReceived[next]!;
      for (const a of earlier.regions) {
        if ((known.get(a.region)?.epoch ?? -1) < a.epoch) known.set(a.region, { epoch: a.epoch, reply: earlier });
      }
    }
    for (const a of reply.regions) {
      const announced = known.get(a.region);
      if (announced !== undefined && a.epoch < announced.epoch) {
        out.push({ check: 'epoch-decreased', detail: `${reply.server} was given ${a.region}@${a.epoch} by ${reply.by} at ${reply.receivedAt}, ` +
          `after ${announced.reply.server} had ${a.region}@${announced.epoch} from ${announced.reply.by} at ${announced.reply.receivedAt}` });
      }
      const mine = held.get(`${reply.server} ${a.region}`);
      if (mine !== undefined && a.epoch < mine) {
        out.push({ check: 'epoch-decreased', detail: `${reply.server} held ${a.region}@${mine}, then was given epoch ${a.epoch} by ${reply.by}` });
      }
      held.set(`${reply.server} ${a.region}`, Math.max(mine ?? -1, a.epoch));
    }
  }
  return out;
}

/** When each game server was killed or failed by injection (first time). */
function faultedAt(faults: readonly Fault[]): Map<string, number> {
  const at = new Map<string, number>();
  for (const f of faults) {
    if (f.kind !== 'kill-server' && f.kind !== 'inject-server') continue;
    at.set(f.server, Math.min(at.get(f.server) ?? Infinity, f.at));
  }
  return at;
}

function falseFailovers(history: History): Violation[] {
  const faulted = faultedAt(history.faults);
  const healthyAt = (server: string, t: number) => t < (faulted.get(server) ?? Infinity);
  const out: Violation[] = [];
  const led = new Map<string, Map<string, number>>();
  for (const reply of [...history.heartbeats].sort((a, b) => a.sentAt - b.sentAt)) {
    if (!healthyAt(reply.server, reply.sentAt)) continue;
    const fail = (what: string) => out.push({ check: 'false-failover', detail: `${reply.server} (healthy) ${what} (reply of ${reply.by} at ${reply.receivedAt})` });
    if (reply.status === 'failed') fail('was judged failed');
    if (reply.demoted.length > 0) fail(`was demoted from ${reply.demoted.join(', ')}`);
    const before = led.get(reply.server) ?? new Map<string, number>();
    const now = new Map<string, number>();
    for (const a of reply.regions) if (a.role === 'primary') now.set(a.region, a.epoch);
    for (const [region, epoch] of before) {
      if (now.get(region) !== epoch) fail(`lost ${region}, which it led at epoch ${epoch}`);
    }
    led.set(reply.server, now);
  }
  for (const f of history.final.failovers) {
    if (f.failedServer !== null && !faulted.has(f.failedServer)) {
      out.push({ check: 'false-failover', detail: `${f.region} was failed over from ${f.failedServer}, which was never faulted` });
    }
  }
  for (const s of history.final.servers) {
    if (s.status === 'failed' && !faulted.has(s.id)) out.push({ check: 'false-failover', detail: `${s.id} is failed at the end, never faulted` });
  }
  return out;
}

/** Terms in revision space: from the leader key's creation to its deletion (or on). */
function terms(history: History): { create: bigint; end: bigint | undefined }[] {
  const key = `${history.prefix}/leader`;
  const out: { create: bigint; end: bigint | undefined }[] = [];
  for (const change of history.etcd.filter((c) => c.key === key)) {
    if (change.type === 'put' && change.createRevision === change.modRevision) out.push({ create: BigInt(change.createRevision), end: undefined });
    const open = out.at(-1);
    if (change.type === 'delete' && open !== undefined && open.end === undefined) open.end = BigInt(change.modRevision);
  }
  return out;
}

function staleWrites(history: History): Violation[] {
  const out: Violation[] = [];
  const spans = terms(history);
  const writes = history.etcd.filter((c) => c.key !== `${history.prefix}/leader`);
  for (const w of writes) {
    const r = BigInt(w.modRevision);
    if (!spans.some((t) => t.create < r && (t.end === undefined || r < t.end))) {
      out.push({ check: 'stale-leader-write', detail: `${w.type} of ${w.key} at revision ${w.modRevision} lies in no leader's term` });
    }
  }
  // A write that changes only counters (a duplicate action's) keeps the seq: equal is allowed.
  let last: EtcdChange | undefined;
  for (const w of writes.filter((c) => c.key === `${history.prefix}/meta/seq` && c.type === 'put')) {
    if (last !== undefined && Number(w.value) < Number(last.value)) {
      out.push({ check: 'stale-leader-write', detail: `the change seq went from ${last.value} (revision ${last.modRevision}) to ${w.value} (revision ${w.modRevision})` });
    }
    last = w;
  }
  for (const f of history.faults) {
    if (f.kind !== 'resume-leader') continue;
    const term = spans.find((t) => String(t.create) === f.term);
    if (term?.end === undefined || term.end > BigInt(f.revision)) {
      out.push({ check: 'stale-leader-write', detail: `${f.url} was woken at revision ${f.revision} before its term ${f.term} ended in etcd` });
    }
  }
  return out;
}

/**
 * Time allowed for SIGSTOP to take effect after the test's kill(2) returned: a request sent later
 * reached the replica while it was stopped, so only a woken replica can have answered it.
 */
const STOP_EFFECT_MS = 20;

function staleAnswers(history: History): Violation[] {
  const out: Violation[] = [];
  const answers = [
    ...history.heartbeats.map((h) => ({ by: h.by, sentAt: h.sentAt, at: h.receivedAt, what: `heartbeat of ${h.server}` })),
    ...history.actions.filter((a) => a.status === 202).map((a) => ({ by: a.by, sentAt: a.sentAt, at: a.receivedAt, what: `action ${actionKey(a.region, a.player, a.seq)}` })),
    ...history.collects.map((c) => ({ by: c.by, sentAt: c.sentAt, at: c.receivedAt, what: `collect of ${c.server} in ${c.region}` })),
  ];
  for (const f of history.faults) {
    if (f.kind !== 'resume-leader') continue;
    const paused = history.faults.find((p) => p.kind === 'pause-leader' && p.url === f.url && p.term === f.term);
    if (paused === undefined) continue;
    // Sent once it was stopped, answered by it before it was seen following: decided after it woke.
    for (const a of answers) {
      if (a.by === f.url && a.sentAt > paused.at + STOP_EFFECT_MS && a.at <= f.followedAt) {
        out.push({ check: 'stale-leader-answer', detail: `${f.url}, paused at ${paused.at} and woken at ${f.at} after leading term ${f.term}, answered the ${a.what} sent at ${a.sentAt}` });
      }
    }
  }
  return out;
}

function reusedEventIds(history: History): Violation[] {
  const seen = new Map<string, string>();
  const out: Violation[] = [];
  for (const e of history.events) {
    const before = seen.get(e.id);
    if (before !== undefined && before !== e.data) out.push({ check: 'event-id-reused', detail: `event id ${e.id} named ${before} and ${e.data}` });
    seen.set(e.id, before ?? e.data);
  }
  return out;
}

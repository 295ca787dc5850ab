/**
 * Leader election among coordinator processes on an etcd lease: the leader is the process whose
 * create-if-absent put of `<prefix>/leader` (value: its advertised URL) succeeded under its lease.
 * The key's create revision names the term and is the fence the store checks on every write, so a
 * deposed leader's writes fail even when it does not know yet that it was deposed.
 *
 * The leader also fences itself: it counts its lease valid only until the last keep-alive it SENT
 * plus the TTL minus a margin, on the monotonic clock. etcd refreshes the lease when it receives the
 * keep-alive (later than the send) and a new etcd leader only extends leases, so this local deadline
 * passes before the lease could have expired on etcd's side, whatever happened in between (a lost
 * connection, a SIGSTOP). `isLeader()` reads the deadline on every call; a timer steps down at it.
 */
import type { Etcd3, IKeyValue, Lease, Watcher } from 'etcd3';
import type { Logger } from '../logger.ts';

/** What a process is in the election. */
export type Role = 'leader' | 'follower';

/** The leader's term: its election key and that key's create revision (the store's fence). */
export interface Term {
  readonly key: string;
  readonly createRevision: string;
}

/** What this process saw before it took over. */
export interface TakeOver {
  /** How long it knew of no valid leader (null: it never knew one). */
  readonly leaderlessMs: number | null;
  /** How long ago one of its calls to etcd last failed (null: none did). */
  readonly etcdFailedMsAgo: number | null;
}

/** How an election is set up. */
export interface ElectionOptions {
  readonly client: Etcd3;
  /** The election key, `<prefix>/leader`. */
  readonly key: string;
  /** This process's URL as clients reach it; the leader key's value. */
  readonly selfUrl: string;
  /** The lease TTL in whole seconds (etcd's unit). */
  readonly ttlSeconds: number;
  /** The monotonic clock, in ms. */
  readonly now: () => number;
  readonly log: Logger;
  /** Called when this process becomes leader; `term` is the fence of its writes. */
  readonly onElected: (term: Term, before: TakeOver) => void;
  /** Called once when this process stops being leader, with why. */
  readonly onDeposed: (reason: string) => void;
}

/** The part of the lease's validity kept back for clock rate differences and a late timer. */
export function leaseMarginMs(ttlMs: number): number {
  return ttlMs / 4;
}

/**
 * How often the leader renews its lease. Often, so that the last renewal before etcd becomes
 * unreachable (an etcd leader change, a member down) is recent: the leader then rides out about
 * TTL - margin - this interval of etcd unavailability without stepping down.
 */
export function keepAliveIntervalMs(ttlMs: number): number {
  return ttlMs / 8;
}

/** A term this process holds, with its lease and its local deadline. */
interface HeldTerm {
  readonly term: Term;
  readonly lease: Lease;
  validUntilMs: number;
  timer: NodeJS.Timeout | undefined;
  keepAlive: NodeJS.Timeout | undefined;
}

/** One process's side of the election. */
export class LeaderElection {
  private held: HeldTerm | undefined;
  /** The leader as last read from etcd, and until when that reading can still be true. */
  private known: { url: string; createRevision: string; untilMs: number } | undefined;
  private watcher: Watcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private campaigning = false;
  /** When this process last knew of a valid leader (itself included). */
  private leaderSeenAtMs: number | undefined;
  /** When a call of this process to etcd last failed. */
  private etcdFailedAtMs: number | undefined;
  private stopped = false;
  private readonly ttlMs: number;

  constructor(private readonly options: ElectionOptions) {
    this.ttlMs = options.ttlSeconds * 1000;
  }

  /** Starts campaigning and watching the leader key. */
  async start(): Promise<void> {
    this.watcher = await this.options.client.watch().key(this.options.key).create();
    this.watcher.on('put', (kv) => this.sawLeader(kv));
    this.watcher.on('delete', () => this.sawVacancy());
    this.watcher.on('error', (error) => this.options.log.warn('watching the leader key failed; polling meanwhile', { error }));
    this.schedulePoll(0);
  }

  /** Whether this process leads now: it holds a term whose local deadline has not passed. */
  isLeader(): boolean {
    const held = this.held;
    if (held === undefined) return false;
    if (this.options.now() < held.validUntilMs) return true;
    this.stepDown('the leader lease could not be renewed in time (local deadline passed)');
    return false;
  }

  /** The fence of the store's writes: the held term while it is valid. */
  fence(): Term | undefined {
    return this.isLeader() ? this.held?.term : undefined;
  }

  /** The role and the leader as this process knows them now (the leader's URL, if any is known). */
  view(): { role: Role; leaderUrl: string | undefined; term: string | undefined } {
    if (this.isLeader()) return { role: 'leader', leaderUrl: this.options.selfUrl, term: this.held?.term.createRevision };
    const known = this.known;
    const fresh = known !== undefined && this.options.now() < known.untilMs && known.url !== this.options.selfUrl;
    return { role: 'follower', leaderUrl: fresh ? known.url : undefined, term: fresh ? known.createRevision : undefined };
  }

  /** Gives up the term held (a take-over that failed), so that another replica can lead. */
  resign(): void {
    this.stepDown('gave up the term');
  }

  /** Leaves the election: a leader revokes its lease so that a follower takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.poll);
    const held = this.held;
    this.stepDown('shutting down');
    if (held) await held.lease.revoke({ deadline: Date.now() + 1000 }).catch(() => {});
    await this.watcher?.cancel().catch(() => {});
  }

  /** A put of the leader key: someone leads (this process only if the revision is its own). */
  private sawLeader(kv: IKeyValue): void {
    const createRevision = String(kv.create_revision);
    if (this.held && this.held.term.createRevision !== createRevision) {
      this.stepDown(`another coordinator holds the leader key (term ${createRevision})`);
    }
    this.known = { url: kv.value.toString('utf8'), createRevision, untilMs: this.options.now() + this.ttlMs };
    this.leaderSeenAtMs = this.options.now();
  }

  /** The leader key is gone: its lease expired or was revoked. Campaign at once. */
  private sawVacancy(): void {
    if (this.held) this.stepDown('the leader key was deleted');
    this.known = undefined;
    this.schedulePoll(0);
  }

  /** Reads (and, when vacant, takes) the leader key now and again every third of the TTL. */
  private schedulePoll(inMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.poll);
    this.poll = setTimeout(() => void this.campaign().finally(() => this.schedulePoll(this.ttlMs / 3)), inMs);
  }

  /** One attempt: a create-if-absent put under a fresh lease; otherwise note who leads. */
  private async campaign(): Promise<void> {
    if (this.campaigning || this.stopped || this.held) return;
    this.campaigning = true;
    const { client, key, selfUrl } = this.options;
    let lease: Lease | undefined;
    try {
      const sentAtMs = this.options.now();
      const current = await client.get(key).options({ deadline: Date.now() + this.ttlMs / 2 }).exec();
      const kv = current.kvs[0];
      if (kv !== undefined) return this.sawLeader(kv);
      lease = client.lease(this.options.ttlSeconds, { autoKeepAlive: false });
      const id = await lease.grant();
      const result = await client.if(key, 'Create', '==', 0)
        .then(client.put(key).value(selfUrl).lease(id))
        .else(client.get(key))
        .options({ deadline: Date.now() + this.ttlMs / 2 })
        .commit();
      if (result.succeeded && !this.stopped) {
        this.elected({ key, createRevision: String(result.header.revision) }, lease, sentAtMs);
        lease = undefined;
        return;
      }
      const other = result.responses[0]?.response_range?.kvs?.[0];
      if (other) this.sawLeader(other);
    } catch (error) {
      this.etcdFailedAtMs = this.options.now();
      this.options.log.debug('campaign for the leader key failed', { error });
    } finally {
      this.campaigning = false;
      // A lease that did not win is given back rather than left to expire.
      if (lease) void lease.revoke({ deadline: Date.now() + 1000 }).catch(() => {});
    }
  }

  private elected(term: Term, lease: Lease, sentAtMs: number): void {
    const held: HeldTerm = { term, lease, validUntilMs: sentAtMs + this.ttlMs - leaseMarginMs(this.ttlMs), timer: undefined, keepAlive: undefined };
    this.held = held;
    this.known = { url: this.options.selfUrl, createRevision: term.createRevision, untilMs: held.validUntilMs };
    this.armDeadline(held);
    this.scheduleKeepAlive(held);
    const seen = this.leaderSeenAtMs;
    // Since this process last knew of a valid leader (a crashed leader's lease takes a TTL to expire).
    const leaderlessMs = seen === undefined ? null : Math.max(0, sentAtMs - seen);
    this.leaderSeenAtMs = sentAtMs;
    const failed = this.etcdFailedAtMs;
    const before: TakeOver = { leaderlessMs, etcdFailedMsAgo: failed === undefined ? null : Math.max(0, sentAtMs - failed) };
    this.options.log.info('elected leader', { term: term.createRevision, ttlSeconds: this.options.ttlSeconds, ...before });
    this.options.onElected(term, before);
  }

  /**
   * Steps down at the local deadline unless a keep-alive moved it first. A timer may fire a little
   * before the deadline on the monotonic clock, so one that finds the term still valid re-arms.
   */
  private armDeadline(held: HeldTerm): void {
    clearTimeout(held.timer);
    held.timer = setTimeout(() => {
      if (this.held === held && this.isLeader()) this.armDeadline(held);
    }, Math.max(1, Math.ceil(held.validUntilMs - this.options.now())));
  }

  private scheduleKeepAlive(held: HeldTerm, inMs = keepAliveIntervalMs(this.ttlMs)): void {
    held.keepAlive = setTimeout(() => void this.keepAlive(held), inMs);
  }

  /** Renews the lease once; success moves the deadline to the send time + TTL - margin. */
  private async keepAlive(held: HeldTerm): Promise<void> {
    if (this.held !== held) return;
    const sentAtMs = this.options.now();
    let nextInMs = keepAliveIntervalMs(this.ttlMs);
    try {
      const reply = await held.lease.keepaliveOnce({ deadline: Date.now() + this.ttlMs / 4 });
      if (this.held !== held) return;
      if (Number(reply.TTL) <= 0) return this.stepDown('etcd says the leader lease has expired');
      held.validUntilMs = Math.max(held.validUntilMs, sentAtMs + this.ttlMs - leaseMarginMs(this.ttlMs));
      this.armDeadline(held);
    } catch (error) {
      if (this.held !== held) return;
      if ((error as Error).name === 'EtcdLeaseInvalidError') return this.stepDown('etcd says the leader lease has expired');
      this.etcdFailedAtMs = this.options.now();
      this.options.log.warn('renewing the leader lease failed; retrying until the local deadline', {
        error, msLeft: Math.round(held.validUntilMs - this.options.now()),
      });
      // Soon, not a third of the TTL later: the client picks another member (one may be down).
      nextInMs = Math.min(nextInMs, 100);
    }
    if (this.held === held && this.isLeader()) this.scheduleKeepAlive(held, nextInMs);
  }

  private stepDown(reason: string): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    this.leaderSeenAtMs = Math.min(this.options.now(), held.validUntilMs);
    clearTimeout(held.timer);
    clearTimeout(held.keepAlive);
    held.lease.release();
    if (this.known?.createRevision === held.term.createRevision) this.known = undefined;
    this.options.log.warn('stepped down as leader', { term: held.term.createRevision, reason });
    this.options.onDeposed(reason);
    void this.giveBack(held.lease);
    this.schedulePoll(0);
  }

  /**
   * The key may still exist under a lease etcd has not expired yet (etcd refreshes every lease when
   * it regains quorum): revoke it as soon as etcd answers, so that the next leader need not wait for
   * the TTL. Harmless once the lease is gone; bounded in attempts.
   */
  private async giveBack(lease: Lease): Promise<void> {
    for (let attempt = 0; attempt < 100 && !this.stopped; attempt++) {
      try {
        await lease.revoke({ deadline: Date.now() + 500 });
        return;
      } catch (error) {
        if ((error as Error).name === 'EtcdLeaseInvalidError') return;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }
}

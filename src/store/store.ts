/**
 * The persistence port of the service and the group-commit scheduler that every implementation
 * shares. The core hands out a JSON-serialisable snapshot of what must survive a restart; a store
 * makes "the state as of change `seq`" durable while bounding the physical write rate, whatever
 * the rate of requests: at most one write is in flight and at most one more is queued behind it.
 */

/**
 * A durable home for one JSON document of type `T`.
 *
 * `save` is a group commit: a request only says "make the state as of change `seq` durable".
 * Requests that arrive while a write is in flight are merged into one next write, which calls the
 * `doc` thunk when it starts and so captures the latest state. A caller's promise resolves only
 * after a write that started after its request has completed, so a resolved `save` means durable.
 */
export interface Store<T> {
  /** Reads the last durable document, or `undefined` when the store has never been written. */
  load(): Promise<T | undefined>;
  /**
   * Asks for the state as of change `seq` to be durable. `doc` is called when the covering write
   * starts, not now. Rejects if that write fails (the caller must not treat the change as durable)
   * or if the store is closed; a later `save` or `flush` retries.
   */
  save(doc: () => T, seq: number): Promise<void>;
  /** Highest change sequence number known to be on durable storage. Never decreases. */
  durableSeq(): number;
  /** Number of physical writes attempted so far; lets tests prove that heartbeats write nothing. */
  writes(): number;
  /** Resolves when every save requested so far is durable; retries a failed write if one is owed. */
  flush(): Promise<void>;
  /** Flushes, then refuses every later save. Idempotent. */
  close(): Promise<void>;
}

/** One physical write: the document as captured at write start and the highest seq it covers. */
export type WriteFn<T> = (doc: T, seq: number) => Promise<void>;

/** Callbacks of one caller waiting for a write to cover its request. */
interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Requests merged into one write that has not started yet. */
interface Batch<T> {
  thunk: () => T;
  seq: number;
  readonly waiters: Waiter[];
}

/** Raised for a save requested after `close`. */
export class StoreClosedError extends Error {
  constructor() {
    super('store is closed: no further saves are accepted');
    this.name = 'StoreClosedError';
  }
}

/**
 * The coalescing scheduler behind every `Store`. It owns the queue, the durable sequence number and
 * the write counter; implementations only supply the physical write. Keeping this in one place means
 * the memory and file stores cannot drift apart in the semantics the contract suite checks.
 */
export class GroupCommit<T> {
  private readonly write: WriteFn<T>;
  private readonly onError: (error: unknown) => void;
  private queued: Batch<T> | undefined;
  private inFlight: Batch<T> | undefined;
  private durable: number;
  private attempts = 0;
  /** The last request, kept so that `flush` can retry after a failed write without a new caller. */
  private latest: { thunk: () => T; seq: number } | undefined;
  private owed = false;
  private closed = false;

  /**
   * @param write performs one physical write; it is never called concurrently with itself.
   * @param initialSeq the seq already on storage (from `load`), so `durableSeq` starts there.
   * @param onError told about every failed write, besides the callers it rejects, so that the
   *   service can log a failure that happened while nobody awaited it.
   */
  constructor(write: WriteFn<T>, initialSeq = 0, onError: (error: unknown) => void = () => {}) {
    this.write = write;
    this.durable = initialSeq;
    this.onError = onError;
  }

  /** See {@link Store.save}. */
  save(thunk: () => T, seq: number): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return this.enqueue(thunk, seq);
  }

  /** See {@link Store.flush}. */
  flush(): Promise<void> {
    const batch = this.queued ?? this.inFlight;
    if (batch) return new Promise((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (this.owed && this.latest) return this.enqueue(this.latest.thunk, this.latest.seq);
    return Promise.resolve();
  }

  /** Refuses later saves, then flushes what was already requested. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** See {@link Store.durableSeq}. */
  durableSeq(): number {
    return this.durable;
  }

  /** Raises the durable seq after a load; it never goes down. */
  noteDurable(seq: number): void {
    this.durable = Math.max(this.durable, seq);
  }

  /** See {@link Store.writes}. */
  writes(): number {
    return this.attempts;
  }

  private enqueue(thunk: () => T, seq: number): Promise<void> {
    this.latest = { thunk, seq: Math.max(seq, this.latest?.seq ?? seq) };
    const promise = new Promise<void>((resolve, reject) => {
      const batch = this.queued ?? (this.queued = { thunk, seq, waiters: [] });
      batch.thunk = thunk;
      batch.seq = Math.max(batch.seq, seq);
      batch.waiters.push({ resolve, reject });
    });
    // A microtask rather than an immediate start lets changes made in one synchronous burst share
    // a write, and keeps the thunk from running inside the caller's own stack frame.
    if (!this.inFlight) queueMicrotask(() => this.startNext());
    return promise;
  }

  private startNext(): void {
    if (this.inFlight || !this.queued) return;
    const batch = this.queued;
    this.queued = undefined;
    this.inFlight = batch;
    void this.run(batch);
  }

  private async run(batch: Batch<T>): Promise<void> {
    const failure = await this.attempt(batch);
    // Clear the slot before settling anyone: a caller resumed by this batch may call `flush`, which
    // must not join a batch whose waiters have already been settled.
    this.inFlight = undefined;
    for (const waiter of batch.waiters) {
      if (failure) waiter.reject(failure.error);
      else waiter.resolve();
    }
    this.startNext();
  }

  /** Performs one physical write; returns the failure, if any, instead of throwing it. */
  private async attempt(batch: Batch<T>): Promise<{ error: unknown } | undefined> {
    try {
      const doc = batch.thunk();
      this.attempts += 1;
      await this.write(doc, batch.seq);
      this.durable = Math.max(this.durable, batch.seq);
      this.owed = false;
      return undefined;
    } catch (error) {
      this.owed = true;
      this.onError(error);
      return { error };
    }
  }
}

/**
 * What every store shares: all of {@link Store} but `load` goes through one {@link GroupCommit},
 * so the implementations differ only in how they read and write one document.
 */
export abstract class GroupCommittedStore<T> implements Store<T> {
  protected abstract readonly commit: GroupCommit<T>;

  abstract load(): Promise<T | undefined>;

  save(doc: () => T, seq: number): Promise<void> {
    return this.commit.save(doc, seq);
  }

  durableSeq(): number {
    return this.commit.durableSeq();
  }

  writes(): number {
    return this.commit.writes();
  }

  flush(): Promise<void> {
    return this.commit.flush();
  }

  /** Flushes what is owed and refuses later saves; each write closes its own files. */
  close(): Promise<void> {
    return this.commit.close();
  }
}

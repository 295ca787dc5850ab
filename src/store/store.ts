/**
 * The persistence port of the service and the group-commit scheduler that every implementation
 * shares. The core hands out change records (what changed since its last hand-out, keyed); a store
 * makes "the changes up to `seq`" durable while bounding the physical write rate, whatever the rate
 * of requests: at most one write is in flight and at most one more is queued behind it.
 */
import type { ChangeBatch, ChangeRecord } from '../../mesh/core/change-records.ts';

export type { ChangeBatch, ChangeRecord };

/**
 * The changes of one write as a store takes them: each changed record's value as the UTF-8 bytes of
 * its JSON text by key, or null when the record is gone. Records are serialised as they are taken
 * from the core, so a store never holds the core's objects, and no store serialises a value twice.
 * Bytes rather than strings: a buffer's contents live outside the V8 heap, so the records a large
 * write holds (and the file store's image keeps) are not copied by every minor garbage collection
 * that runs meanwhile; the JSON strings die at once, and dead objects cost a collection nothing.
 */
export interface EncodedBatch {
  readonly seq: number;
  readonly records: ReadonlyMap<string, Buffer | null>;
}

/**
 * A record's value as the JSON bytes that stores keep (null: the record is gone). Each in a buffer
 * of its own: slices of Node's shared 8 KiB pool would keep a whole slab alive for one record that
 * was not rewritten since, and the file store keeps every record.
 */
export function encodeValue(value: unknown): Buffer | null {
  if (value === null) return null;
  const json = JSON.stringify(value);
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(json));
  bytes.write(json);
  return bytes;
}

/** A batch of change records, encoded (the last record of a key wins). */
export function encodeBatch(batch: ChangeBatch): EncodedBatch {
  const records = new Map<string, Buffer | null>();
  for (const { key, value } of batch.records) records.set(key, encodeValue(value));
  return { seq: batch.seq, records };
}

/**
 * What a store gives back at start-up: every live record (deletions applied) and the highest change
 * seq they cover. The values belong to the store: read them, do not change them.
 */
export interface LoadedRecords {
  readonly seq: number;
  readonly records: ReadonlyMap<string, unknown>;
}

/**
 * A durable home for the core's change records (mesh/core/change-records.ts).
 *
 * `append` is a group commit: a request only says "make the changes up to `seq` durable". Requests
 * that arrive while a write is in flight are merged into one next write, which calls `take` when it
 * starts and so takes every change made by then. A caller's promise resolves only after a write that
 * started after its request has completed, so a resolved `append` means durable. A failed write's
 * records are kept and written again with the next write (merged under newer values of the same keys).
 */
export interface Store {
  /** Reads the durable records, or `undefined` when the store has never been written. */
  load(): Promise<LoadedRecords | undefined>;
  /**
   * Asks for the changes up to `seq` to be durable. `take` is called when the covering write starts,
   * not now, and may take its records in slices (a promise): the write waits for it. Rejects if that
   * write fails (the caller must not treat the change as durable) or if the store is closed; a later
   * `append` or `flush` retries.
   */
  append(take: Take, seq: number): Promise<void>;
  /** Highest change sequence number known to be on durable storage. Never decreases. */
  durableSeq(): number;
  /** Number of physical writes attempted so far; lets tests prove that heartbeats write nothing. */
  writes(): number;
  /** Whether a write failed and nothing has succeeded since (something is owed). */
  failing(): boolean;
  /** Resolves when every append requested so far is durable; retries a failed write if one is owed. */
  flush(): Promise<void>;
  /** Flushes, then refuses every later append. Idempotent. */
  close(): Promise<void>;
}

/** Hands out the changes to write; a promise when it takes them in slices between turns of the event loop. */
export type Take = () => EncodedBatch | Promise<EncodedBatch>;

/** One physical write: the document as captured at write start and the highest seq it covers. */
export type WriteFn<T> = (doc: T, seq: number) => Promise<void>;

/** Callbacks of one caller waiting for a write to cover its request. */
interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Requests merged into one write that has not started yet. */
interface Batch<T> {
  thunk: () => T | Promise<T>;
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
  private latest: { thunk: () => T | Promise<T>; seq: number } | undefined;
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
  save(thunk: () => T | Promise<T>, seq: number): Promise<void> {
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

  /** See {@link Store.failing}. */
  failing(): boolean {
    return this.owed;
  }

  private enqueue(thunk: () => T | Promise<T>, seq: number): Promise<void> {
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
      const doc = await batch.thunk();
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
 * What every store shares: group commit, and the records of a failed write kept for the next one.
 * Implementations supply `load` and one physical write of a batch of records.
 */
export abstract class RecordStore implements Store {
  protected readonly commit: GroupCommit<EncodedBatch>;
  /** Records taken from the core but not yet durable (a failed write's), by key; newer values win. */
  private readonly unwritten = new Map<string, Buffer | null>();

  /** @param onError told about every failed write, besides the callers it rejects. */
  constructor(onError?: (error: unknown) => void) {
    this.commit = new GroupCommit<EncodedBatch>((batch, seq) => this.writeMerged(batch, seq), 0, onError);
  }

  abstract load(): Promise<LoadedRecords | undefined>;

  /**
   * Makes `records` (JSON bytes by key, null deletes) durable as one atomic batch covering changes up
   * to `seq`. The map does not change until this settles.
   */
  protected abstract writeRecords(records: ReadonlyMap<string, Buffer | null>, seq: number): Promise<void>;

  append(take: Take, seq: number): Promise<void> {
    return this.commit.save(take, seq);
  }

  durableSeq(): number {
    return this.commit.durableSeq();
  }

  writes(): number {
    return this.commit.writes();
  }

  failing(): boolean {
    return this.commit.failing();
  }

  flush(): Promise<void> {
    return this.commit.flush();
  }

  /** Flushes what is owed and refuses later appends. */
  close(): Promise<void> {
    return this.commit.close();
  }

  /**
   * Writes the batch, under it whatever a failed write left. The batch is copied into `unwritten`
   * only when that is needed: copying every record of a large write up front would hold the event
   * loop for nothing in the usual case, a write that succeeds.
   */
  private async writeMerged(batch: EncodedBatch, seq: number): Promise<void> {
    const merging = this.unwritten.size > 0;
    if (merging) for (const [key, json] of batch.records) this.unwritten.set(key, json);
    const records = merging ? this.unwritten : batch.records;
    try {
      await this.writeRecords(records, Math.max(seq, batch.seq));
    } catch (error) {
      if (!merging) for (const [key, json] of batch.records) this.unwritten.set(key, json);
      throw error;
    }
    this.unwritten.clear();
  }
}

/**
 * The store on etcd: one key per change record under a prefix (src/store/etcd-layout.ts), so that
 * several coordinator processes share the state and a follower can watch it change.
 *
 * A batch that fits one transaction (etcd: at most 128 operations and 1.5 MiB by default) is one
 * transaction: its records, the new seq and, when one may be left over, the removal of an earlier
 * large batch's marker. A larger batch (a mass failure touches every region) is made durable in
 * steps, as a database commits a long transaction through its log:
 * 1. its JSON is written as slices under `log/<batch>/`;
 * 2. one transaction writes the last slice and the commit marker `meta/pending`: from here on the
 *    batch is durable, because `load` replays a marked batch over the records;
 * 3. its records are applied in transactions that fit, and the last of them writes the seq, removes
 *    the marker and the log.
 * A crash before step 2 leaves slices that nothing names (ignored, removed by the next large batch);
 * a crash after it leaves a marker that `load` replays and that the next write carries forward.
 *
 * Fencing: when a `fence` is given (the leader's election key and the revision it was created at),
 * every transaction compares it, so that a deposed leader's write changes nothing and fails with
 * {@link FencedError}.
 */
import { randomUUID } from 'node:crypto';
import type { Etcd3, IRequestOp, ICompare, IKeyValue } from 'etcd3';
import {
  applyRecords, defaultEtcdLimits, encodeRecords, EtcdKeys, fitsOneTransaction, groupForTransactions, parseMarker,
  prefixEnd, sliceText, type EncodedRecord, type EtcdLimits, type PendingMarker,
} from './etcd-layout.ts';
import { watchRecords, type EtcdChange, type EtcdWatch } from './etcd-watch.ts';
import { RecordStore, type ChangeRecord, type LoadedRecords } from './store.ts';

export type { EtcdChange, EtcdWatch } from './etcd-watch.ts';
export { RecordTooLargeError, type EtcdLimits } from './etcd-layout.ts';

/** The key that proves leadership and the revision at which this leader created it. */
export interface Fence {
  readonly key: string;
  readonly createRevision: string;
}

/** A write refused because the fence no longer holds (or there is none): this process is not the leader. */
export class FencedError extends Error {
  readonly fence: Fence | undefined;
  constructor(fence: Fence | undefined) {
    super(fence === undefined
      ? 'not the leader: no fence to write under'
      : `not the leader: fence ${fence.key}@${fence.createRevision} no longer holds`);
    this.name = 'FencedError';
    this.fence = fence;
  }
}

/** The phase of a write, for tests that fail or crash between steps. */
export interface EtcdWriteStep {
  /** `slices`: a large batch's log; `commit`: the transaction that makes the batch durable; `apply`: a large batch's records. */
  readonly phase: 'slices' | 'commit' | 'apply';
  readonly index: number;
}

/** Options of {@link EtcdStore}. */
export interface EtcdStoreOptions {
  /** The client (src/store/etcd-client.ts); the store does not close it. */
  readonly client: Etcd3;
  /** Key prefix without a trailing slash; default `/mesh-coordinator`. */
  readonly prefix?: string;
  /** The leader's fence; every write transaction requires it to hold. Absent: writes are unguarded. */
  readonly fence?: () => Fence | undefined;
  /** etcd's limits, if the cluster was started with other values than etcd's defaults. */
  readonly limits?: Partial<EtcdLimits>;
  /** Runs before every transaction of a write; may delay or throw (tests: slow, failing or cut-off writes). */
  readonly duringWrite?: (step: EtcdWriteStep) => Promise<void> | void;
  /** Told about every failed write (for logging); callers are rejected regardless. */
  readonly onError?: (error: unknown) => void;
  /** Told how long every successful write took, in ms, and how many transactions it took. */
  readonly onWritten?: (ms: number, transactions: number) => void;
}

/** What `read` found: the records and seq as of one revision. */
export interface EtcdSnapshot extends LoadedRecords {
  /** The etcd revision everything was read at; watch from here to keep up. */
  readonly revision: string;
  /** Whether anything was ever written under the prefix. */
  readonly written: boolean;
}

/** Default key prefix. */
export const DEFAULT_ETCD_PREFIX = '/mesh-coordinator';
/** Records per page when reading the whole state. */
const PAGE_SIZE = 500;

/** The etcd store. */
export class EtcdStore extends RecordStore {
  readonly keys: EtcdKeys;
  private readonly client: Etcd3;
  private readonly options: EtcdStoreOptions;
  private readonly limits: EtcdLimits;
  /** Whether a large batch's marker may be in etcd (first write, or after a failed write). */
  private markerMayExist = true;
  /** A fence whose comparison failed: it can never hold again, so it is refused without asking etcd. */
  private deadFence: Fence | undefined;

  constructor(options: EtcdStoreOptions) {
    super(options.onError);
    this.options = options;
    this.client = options.client;
    this.keys = new EtcdKeys(options.prefix ?? DEFAULT_ETCD_PREFIX);
    this.limits = { ...defaultEtcdLimits, ...options.limits };
  }

  /** The records as of now, with the revision they were read at; `undefined` if never written. */
  async load(): Promise<(LoadedRecords & { readonly revision: string }) | undefined> {
    const snapshot = await this.read().catch((error: unknown) => {
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot read the state under ${this.keys.prefix} from etcd: ${why}`, { cause: error });
    });
    this.commit.noteDurable(snapshot.seq);
    return snapshot.written ? { seq: snapshot.seq, records: snapshot.records, revision: snapshot.revision } : undefined;
  }

  /**
   * Reads the whole state at one revision: the records, with a committed but not yet applied large
   * batch replayed over them. Reads only, so a follower may call it.
   */
  async read(): Promise<EtcdSnapshot> {
    const meta = await this.client.kv.range({ key: Buffer.from(this.keys.metaPrefix), range_end: prefixEnd(this.keys.metaPrefix) });
    const revision = meta.header.revision;
    const seqKv = meta.kvs.find((kv) => kv.key.toString() === this.keys.seq);
    const markerKv = meta.kvs.find((kv) => kv.key.toString() === this.keys.pending);
    const records = new Map<string, unknown>();
    for (const kv of await this.rangeAll(this.keys.recordsPrefix, revision)) {
      records.set(kv.key.toString().slice(this.keys.recordsPrefix.length), JSON.parse(kv.value.toString()) as unknown);
    }
    let seq = seqKv === undefined ? 0 : Number(seqKv.value.toString());
    if (markerKv !== undefined) {
      const pending = await this.readBatch(parseMarker(this.keys.pending, markerKv.value.toString()), revision);
      applyRecords(records, pending.records);
      seq = Math.max(seq, pending.seq);
    }
    return { revision, seq, records, written: seqKv !== undefined || markerKv !== undefined };
  }

  /**
   * Delivers every committed change after `fromRevision` in order (a large batch whole, at its
   * commit), so that a follower's copy of the records follows the leader's durable ones.
   */
  watch(fromRevision: string, onChange: (change: EtcdChange) => void, onError?: (error: unknown) => void): Promise<EtcdWatch> {
    return watchRecords({
      client: this.client, keys: this.keys, fromRevision, onChange, onError: onError ?? (() => {}),
      readBatch: (marker, revision) => this.readBatch(marker, revision),
    });
  }

  protected async writeRecords(bytes: ReadonlyMap<string, Buffer | null>, seq: number): Promise<void> {
    const started = performance.now();
    this.currentFence();
    const records = asText(bytes);
    let carried = records;
    // The stored seq never goes down, whatever seq a caller passes.
    let covered = Math.max(seq, this.durableSeq());
    let clearMarker = false;
    if (this.markerMayExist) {
      const marker = await this.readMarker();
      clearMarker = marker !== undefined;
      // A committed batch nobody applied yet (a crash, or a failed write of this process) goes
      // first, under this batch's newer values, so that removing its marker loses nothing.
      if (marker !== undefined) {
        carried = carryUnder((await this.readBatch(marker, '0')).records, records);
        covered = Math.max(covered, marker.seq);
      }
    }
    this.markerMayExist = true;
    const encoded = encodeRecords(this.keys, carried, this.limits);
    const transactions = fitsOneTransaction(encoded, this.limits)
      ? await this.writeOne(encoded, covered, clearMarker)
      : await this.writeLarge(carried, encoded, covered);
    this.markerMayExist = false;
    this.options.onWritten?.(performance.now() - started, transactions);
  }

  private async writeOne(records: readonly EncodedRecord[], seq: number, clearMarker: boolean): Promise<number> {
    await this.options.duringWrite?.({ phase: 'commit', index: 0 });
    await this.transaction([...records.map(recordOp), ...this.finishOps(seq, clearMarker)]);
    return 1;
  }

  private async writeLarge(records: ReadonlyMap<string, string | null>, encoded: readonly EncodedRecord[], seq: number): Promise<number> {
    const batch = `${seq}-${randomUUID()}`;
    const slices = sliceText(batchText(seq, records), this.limits);
    let transactions = 0;
    for (const [index, slice] of slices.slice(0, -1).entries()) {
      await this.options.duringWrite?.({ phase: 'slices', index });
      await this.transaction([put(this.keys.slice(batch, index), slice)]);
      transactions += 1;
    }
    const marker: PendingMarker = { batch, slices: slices.length, seq };
    await this.options.duringWrite?.({ phase: 'commit', index: 0 });
    await this.transaction([put(this.keys.slice(batch, slices.length - 1), slices.at(-1) ?? ''), put(this.keys.pending, JSON.stringify(marker))]);
    const groups = groupForTransactions(encoded, this.limits);
    for (const [index, group] of groups.entries()) {
      await this.options.duringWrite?.({ phase: 'apply', index });
      const last = index === groups.length - 1;
      await this.transaction([...group.map(recordOp), ...(last ? this.finishOps(seq, true) : [])]);
    }
    return transactions + 1 + groups.length;
  }

  /** The seq of the batch, and the removal of a marker and every log slice when one may be left. */
  private finishOps(seq: number, clearMarker: boolean): IRequestOp[] {
    const ops: IRequestOp[] = [put(this.keys.seq, String(seq))];
    if (clearMarker) {
      ops.push({ request_delete_range: { key: Buffer.from(this.keys.pending) } });
      ops.push({ request_delete_range: { key: Buffer.from(this.keys.logPrefix), range_end: prefixEnd(this.keys.logPrefix) } });
    }
    return ops;
  }

  /** One transaction under the fence; a failed comparison is a {@link FencedError}. */
  private async transaction(ops: IRequestOp[]): Promise<void> {
    const fence = this.currentFence();
    const compare: ICompare[] = fence === undefined ? [] : [{
      key: Buffer.from(fence.key), target: 'Create', result: 'Equal', create_revision: fence.createRevision,
    }];
    const response = await this.client.kv.txn({ compare, success: ops, failure: [] });
    if (!response.succeeded) {
      this.deadFence = fence;
      throw new FencedError(fence);
    }
  }

  /** The fence to write under, or a {@link FencedError} when there is none or it is known dead. */
  private currentFence(): Fence | undefined {
    if (this.options.fence === undefined) return undefined;
    const fence = this.options.fence();
    if (fence === undefined) throw new FencedError(undefined);
    const dead = this.deadFence;
    if (dead !== undefined && dead.key === fence.key && dead.createRevision === fence.createRevision) throw new FencedError(fence);
    return fence;
  }

  private async readMarker(): Promise<PendingMarker | undefined> {
    const response = await this.client.kv.range({ key: Buffer.from(this.keys.pending) });
    const kv = response.kvs[0];
    return kv === undefined ? undefined : parseMarker(this.keys.pending, kv.value.toString());
  }

  /** A committed large batch, read from its slices at `revision` ('0': now). */
  private async readBatch(marker: PendingMarker, revision: string): Promise<{ seq: number; records: ChangeRecord[] }> {
    const kvs = await this.rangeAll(this.keys.batchLog(marker.batch), revision);
    if (kvs.length !== marker.slices) {
      throw new Error(`${this.keys.pending}: batch ${marker.batch} has ${kvs.length} of its ${marker.slices} log slices`);
    }
    const batch = JSON.parse(kvs.map((kv) => kv.value.toString()).join('')) as { seq: number; records: ChangeRecord[] };
    return batch;
  }

  /** Every key under `prefix` at `revision`, in pages, in key order. */
  private async rangeAll(prefix: string, revision: string): Promise<IKeyValue[]> {
    const end = prefixEnd(prefix);
    const all: IKeyValue[] = [];
    let from = Buffer.from(prefix);
    for (;;) {
      const page = await this.client.kv.range({ key: from, range_end: end, revision, limit: PAGE_SIZE });
      all.push(...page.kvs);
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) return all;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }
}

function put(key: string, value: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
}

function recordOp(record: EncodedRecord): IRequestOp {
  return record.value === null ? { request_delete_range: { key: Buffer.from(record.key) } } : put(record.key, record.value);
}

/** A committed batch nobody applied yet, under the newer records of this write (one record per key: a transaction may not change a key twice). */
function carryUnder(pending: readonly ChangeRecord[], records: ReadonlyMap<string, string | null>): Map<string, string | null> {
  const carried = new Map<string, string | null>();
  for (const { key, value } of pending) carried.set(key, value === null ? null : JSON.stringify(value));
  for (const [key, json] of records) carried.set(key, json);
  return carried;
}

/** Records as JSON text: etcd's requests carry text, and a batch is small beside etcd's own cost. */
function asText(records: ReadonlyMap<string, Buffer | null>): Map<string, string | null> {
  const text = new Map<string, string | null>();
  for (const [key, bytes] of records) text.set(key, bytes === null ? null : bytes.toString());
  return text;
}

/** A large batch's log text: the same as JSON.stringify({ seq, records: [{ key, value }...] }), from the values' text. */
function batchText(seq: number, records: ReadonlyMap<string, string | null>): string {
  const parts = [...records].map(([key, json]) => `{"key":${JSON.stringify(key)},"value":${json ?? 'null'}}`);
  return `{"seq":${seq},"records":[${parts.join(',')}]}`;
}

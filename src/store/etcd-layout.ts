/**
 * Where the etcd store keeps what, and how a batch of change records is cut into transactions that
 * fit etcd's limits. Pure: keys, sizes and plans, no client.
 *
 * Under a prefix P:
 * - `P/records/<key>`: one change record's JSON value (a deleted record has no key);
 * - `P/meta/seq`: the highest change seq the records cover (decimal);
 * - `P/meta/pending`: the commit marker of a batch too large for one transaction, naming its log;
 * - `P/log/<batch>/<n>`: the slices of that batch's JSON, in order.
 */
import type { ChangeRecord } from './store.ts';

/** etcd's server-side limits that a write must respect. */
export interface EtcdLimits {
  /** Most operations in one transaction's branch (etcd `--max-txn-ops`, default 128). */
  readonly maxTxnOps: number;
  /** Largest request in bytes (etcd `--max-request-bytes`, default 1.5 MiB). */
  readonly maxRequestBytes: number;
}

/** etcd's defaults; a cluster started with larger limits may be given larger values. */
export const defaultEtcdLimits: EtcdLimits = { maxTxnOps: 128, maxRequestBytes: 1.5 * 1024 * 1024 };

/**
 * Bytes kept free in every request for what the plan does not count exactly (protobuf framing,
 * the fence comparison, the authentication token).
 */
const REQUEST_RESERVE_BYTES = 16 * 1024;
/** Operations kept free in every transaction for the book-keeping puts and deletes of a batch's last step. */
const RESERVED_OPS = 3;
/** Rough protobuf overhead of one put or delete besides its key and value. */
const OP_OVERHEAD_BYTES = 16;

/** The keys of one store. */
export class EtcdKeys {
  readonly prefix: string;
  readonly recordsPrefix: string;
  readonly metaPrefix: string;
  readonly logPrefix: string;
  readonly seq: string;
  readonly pending: string;

  /** @param prefix without a trailing slash, e.g. `/mesh-coordinator`. */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.recordsPrefix = `${prefix}/records/`;
    this.metaPrefix = `${prefix}/meta/`;
    this.logPrefix = `${prefix}/log/`;
    this.seq = `${this.metaPrefix}seq`;
    this.pending = `${this.metaPrefix}pending`;
  }

  record(key: string): string {
    return this.recordsPrefix + key;
  }

  /** The record key of an etcd key under `records/`, or undefined for any other key. */
  recordKeyOf(etcdKey: string): string | undefined {
    return etcdKey.startsWith(this.recordsPrefix) ? etcdKey.slice(this.recordsPrefix.length) : undefined;
  }

  /** The prefix of one large batch's log slices. */
  batchLog(batch: string): string {
    return `${this.logPrefix}${batch}/`;
  }

  /** Slice keys sort in slice order: the index is zero-padded. */
  slice(batch: string, index: number): string {
    return `${this.batchLog(batch)}${String(index).padStart(6, '0')}`;
  }
}

/** The marker that commits a large batch: once it is stored, the batch is durable. */
export interface PendingMarker {
  readonly batch: string;
  readonly slices: number;
  readonly seq: number;
}

/** A record as it will be written: its etcd key and its encoded value (null deletes it). */
export interface EncodedRecord {
  readonly key: string;
  readonly value: string | null;
}

/** A record too large for any single etcd request. */
export class RecordTooLargeError extends Error {
  constructor(key: string, bytes: number, limit: number) {
    super(`record ${JSON.stringify(key)} is ${bytes} bytes encoded; an etcd request holds at most ${limit} bytes`);
    this.name = 'RecordTooLargeError';
  }
}

/** Encodes records for `keys`, refusing one that no request could carry. */
export function encodeRecords(keys: EtcdKeys, records: ReadonlyMap<string, string | null>, limits: EtcdLimits): EncodedRecord[] {
  const budget = requestBudget(limits);
  return [...records].map(([key, json]) => {
    const encoded = { key: keys.record(key), value: json };
    const bytes = opBytes(encoded);
    if (bytes > budget) throw new RecordTooLargeError(key, bytes, budget);
    return encoded;
  });
}

/** Bytes of one request that records may fill. */
export function requestBudget(limits: EtcdLimits): number {
  return limits.maxRequestBytes - REQUEST_RESERVE_BYTES;
}

/** Bytes an encoded record adds to a request. */
export function opBytes(record: EncodedRecord): number {
  return Buffer.byteLength(record.key) + (record.value === null ? 0 : Buffer.byteLength(record.value)) + OP_OVERHEAD_BYTES;
}

/** Whether `records` fit in one transaction along with the book-keeping of a batch. */
export function fitsOneTransaction(records: readonly EncodedRecord[], limits: EtcdLimits): boolean {
  if (records.length > limits.maxTxnOps - RESERVED_OPS) return false;
  let bytes = 0;
  for (const record of records) bytes += opBytes(record);
  return bytes <= requestBudget(limits);
}

/** Splits records into groups that each fit one transaction with room for the book-keeping. */
export function groupForTransactions(records: readonly EncodedRecord[], limits: EtcdLimits): EncodedRecord[][] {
  const budget = requestBudget(limits);
  const groups: EncodedRecord[][] = [];
  let group: EncodedRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = opBytes(record);
    if (group.length > 0 && (group.length >= limits.maxTxnOps - RESERVED_OPS || bytes + size > budget)) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(record);
    bytes += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/**
 * Cuts a batch's JSON into slices that each fit one request. Slices are cut by characters, and the
 * budget is divided by the worst-case UTF-8 width, so no slice exceeds it in bytes.
 */
export function sliceText(text: string, limits: EtcdLimits): string[] {
  const chars = Math.floor((requestBudget(limits) - 1024) / 3);
  const slices: string[] = [];
  for (let start = 0; start < text.length; start += chars) slices.push(text.slice(start, start + chars));
  return slices.length > 0 ? slices : [''];
}

/** The key just after every key that starts with `prefix`: the end of a prefix range. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i -= 1) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** Applies records to a map of live records (null deletes) and returns it. */
export function applyRecords(image: Map<string, unknown>, records: readonly ChangeRecord[]): Map<string, unknown> {
  for (const { key, value } of records) {
    if (value === null) image.delete(key);
    else image.set(key, value);
  }
  return image;
}

/** Reads a marker's JSON; anything else is refused, naming the key. */
export function parseMarker(key: string, text: string): PendingMarker {
  const value = JSON.parse(text) as Partial<PendingMarker>;
  if (typeof value.batch !== 'string' || !Number.isInteger(value.slices) || !Number.isInteger(value.seq)) {
    throw new Error(`${key}: not a commit marker: ${text.slice(0, 200)}`);
  }
  return value as PendingMarker;
}

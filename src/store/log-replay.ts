/**
 * Replays a change log (src/store/change-log.ts has the format) from its bytes. Every line's
 * checksum is checked, but a record's value is kept as its JSON text and parsed only by the caller,
 * once per key: a log rewrites the same records many times over, and parsing each copy would cost
 * most of a restart.
 */
import { crc32 } from 'node:zlib';
import { CorruptLogError } from './change-log.ts';

/**
 * A replayed record: its key and the JSON text of its value (`null` deletes the key), either as a
 * string or as the byte range `[start, end)` of the log's data.
 */
export interface LoggedRecord {
  readonly key: string;
  readonly json: string | null;
  readonly start: number;
  readonly end: number;
}

/** The value of a replayed record, parsed. */
export function parseValue(data: Buffer, record: LoggedRecord): unknown {
  return JSON.parse(record.json ?? data.toString('utf8', record.start, record.end));
}

/** What replaying one log found. */
export interface ReplayOutcome {
  /** Seq of the last committed batch (0 when none). */
  readonly seq: number;
  /** Records in committed batches. */
  readonly records: number;
  /** Bytes up to the end of the last committed batch: the log's trustworthy length. */
  readonly validBytes: number;
  /** Bytes after it (a torn batch), 0 when the log ends cleanly. */
  readonly tornBytes: number;
}

type Parsed = { readonly kind: 'record'; readonly record: LoggedRecord } | { readonly kind: 'commit'; readonly seq: number; readonly n: number };

/**
 * Replays one log's bytes, calling `apply` with each committed batch in order. `last`: whether no
 * newer log follows (only then may it end with a torn batch).
 * @throws CorruptLogError for an invalid line before a valid commit, or a torn end of an older log.
 */
export function replayLog(file: string, data: Buffer, last: boolean, apply: (records: readonly LoggedRecord[]) => void): ReplayOutcome {
  let pending: LoggedRecord[] = [];
  let bad: string | null = null;
  let outcome = { seq: 0, records: 0, validBytes: 0 };
  let lineNo = 0;
  for (let start = 0; start < data.length;) {
    lineNo += 1;
    const end = data.indexOf(0x0a, start);
    const parsed = end === -1 ? 'no newline at the end' : decodeLine(data, start, end);
    start = end === -1 ? data.length : end + 1;
    if (typeof parsed === 'string') {
      bad ??= `line ${lineNo}: ${parsed}`;
      continue;
    }
    if (parsed.kind === 'record') {
      pending.push(parsed.record);
      continue;
    }
    if (bad !== null) throw new CorruptLogError(file, `${bad}, before the committed batch ${parsed.seq}`);
    if (parsed.n !== pending.length) throw new CorruptLogError(file, `line ${lineNo}: batch ${parsed.seq} commits ${parsed.n} records, found ${pending.length}`);
    apply(pending);
    outcome = { seq: parsed.seq, records: outcome.records + pending.length, validBytes: start };
    pending = [];
  }
  const tornBytes = data.length - outcome.validBytes;
  if (tornBytes > 0 && !last) throw new CorruptLogError(file, `${bad ?? 'an uncommitted batch'} at its end, but a newer log follows`);
  return { ...outcome, tornBytes };
}

/** Decodes the line `data[start, end)` (without its newline); a string says why it is invalid. */
function decodeLine(data: Buffer, start: number, end: number): Parsed | string {
  if (end - start < 10 || data[start + 8] !== 0x20) return 'not a log line';
  if (crc32(data.subarray(start + 9, end)) !== hexChecksum(data, start)) return 'checksum mismatch';
  return recordLine(data, start + 9, end) ?? parseLine(data.toString('utf8', start + 9, end));
}

/** The 8 lower-case hex digits at `at` as a number, or -1 (no string is made: replay reads one per line). */
function hexChecksum(data: Buffer, at: number): number {
  let value = 0;
  for (let k = at; k < at + 8; k += 1) {
    const byte = data[k] as number;
    const digit = isDigit(byte) ? byte - 0x30 : byte >= 0x61 && byte <= 0x66 ? byte - 0x57 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

const recordHead = Buffer.from('{"s":');
const keyHead = Buffer.from(',"k":"');
const valueHead = Buffer.from(',"v":');
const [quote, backslash, closeBrace] = [0x22, 0x5c, 0x7d];

/**
 * A record line as the writer makes it, `{"s":<seq>,"k":<key>,"v":<value>}`, read without parsing
 * the value; undefined for any other line, which {@link parseLine} then reads in full.
 */
function recordLine(data: Buffer, start: number, end: number): Parsed | undefined {
  if (!startsWith(data, recordHead, start, end)) return undefined;
  let i = start + recordHead.length;
  while (i < end && isDigit(data[i] as number)) i += 1;
  if (!startsWith(data, keyHead, i, end)) return undefined;
  const keyStart = i + keyHead.length - 1;
  let escaped = false;
  for (i = keyStart + 1; i < end && data[i] !== quote; i += 1) {
    if (data[i] === backslash) {
      escaped = true;
      i += 1;
    }
  }
  if (i >= end || !startsWith(data, valueHead, i + 1, end) || data[end - 1] !== closeBrace) return undefined;
  const key = escaped ? (JSON.parse(data.toString('utf8', keyStart, i + 1)) as string) : data.toString('utf8', keyStart + 1, i);
  return { kind: 'record', record: { key, json: null, start: i + 1 + valueHead.length, end: end - 1 } };
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

/** Whether `data[at, end)` starts with `head` (byte by byte: the heads are a few bytes long). */
function startsWith(data: Buffer, head: Buffer, at: number, end: number): boolean {
  if (end - at < head.length) return false;
  for (let k = 0; k < head.length; k += 1) if (data[at + k] !== head[k]) return false;
  return true;
}

/** Any line, parsed in full. */
function parseLine(json: string): Parsed | string {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return 'not JSON';
  }
  const v = value as { s?: unknown; k?: unknown; v?: unknown; c?: unknown; n?: unknown };
  if (typeof v.k === 'string' && 'v' in v) return { kind: 'record', record: { key: v.k, json: JSON.stringify(v.v) ?? 'null', start: 0, end: 0 } };
  if (typeof v.c === 'number' && typeof v.n === 'number') return { kind: 'commit', seq: v.c, n: v.n };
  return 'neither a record nor a commit';
}

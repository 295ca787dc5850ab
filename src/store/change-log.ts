/**
 * The append-only log of change records beside the snapshot (Redis's AOF, etcd's WAL).
 *
 * One line per record, `<crc32 of the JSON, 8 hex digits> <JSON>\n`, with the JSON
 * `{"s":seq,"k":key,"v":value}`; every batch ends with a commit line `{"c":seq,"n":records}` and is
 * fsynced as a whole. Replay applies a batch only once its commit line is read, so a batch torn by
 * a crash is never half applied. Everything after the last valid commit line of the newest log is a
 * torn tail (a write that was never acknowledged): it is cut off. An invalid line before a valid
 * commit line is corruption of acknowledged data: replay refuses, and the files are left as they are.
 */
import { crc32 } from 'node:zlib';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { Slicer } from '../../api/slicer.ts';

/** File name of log generation `gen` inside the data directory. */
export const logFileName = (gen: number): string => `mesh.${gen}.log`;
const logFilePattern = /^mesh\.(\d+)\.log$/;

/** Raised for a log whose acknowledged part cannot be trusted. */
export class CorruptLogError extends Error {
  readonly path: string;

  constructor(file: string, problem: string) {
    super(`change log ${file} is corrupt (${problem}); refusing to start rather than lose acknowledged changes: ` +
      'restore the data directory from a backup, or move the file aside deliberately');
    this.name = 'CorruptLogError';
    this.path = file;
  }
}

/** One encoded line. */
export function encodeLine(json: string): string {
  const lines = new LineBuffer();
  lines.line(json, '', '');
  return lines.takeAll().toString('utf8');
}

/**
 * Lines encoded straight into one buffer that is reused: a mass failure's batch holds thousands of
 * records, and building each line as a string, then joining the strings and converting them to
 * bytes, made about as much garbage again as the records' own text. A record's value is copied from
 * the bytes it is kept as.
 */
class LineBuffer {
  private bytes = Buffer.allocUnsafe(64 * 1024);
  private length = 0;

  /** A record line: the same JSON text as JSON.stringify({ s, k, v }), from the value's JSON bytes. */
  record(seq: number, key: string, json: Uint8Array | null): void {
    this.line(`{"s":${seq},"k":${JSON.stringify(key)},"v":`, json ?? 'null', '}');
  }

  /** A batch's commit line. */
  commit(seq: number, records: number): void {
    this.line(JSON.stringify({ c: seq, n: records }), '', '');
  }

  /** `<crc32 of the JSON, 8 hex digits> <JSON>\n`, the JSON being `head + value + tail`. */
  line(head: string, value: string | Uint8Array, tail: string): void {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8.
    const valueBytes = typeof value === 'string' ? 3 * value.length : value.length;
    this.reserve(10 + 3 * (head.length + tail.length) + valueBytes);
    const start = this.length + 9;
    let end = start + this.bytes.write(head, start);
    if (typeof value === 'string') end += this.bytes.write(value, end);
    else {
      this.bytes.set(value, end);
      end += value.length;
    }
    end += this.bytes.write(tail, end);
    this.bytes.write(crc32(this.bytes.subarray(start, end)).toString(16).padStart(8, '0'), this.length, 'latin1');
    this.bytes[start - 1] = 0x20;
    this.bytes[end] = 0x0a;
    this.length = end + 1;
  }

  /** The lines added since the last call; valid until the next line is added. */
  takeAll(): Buffer {
    const lines = this.bytes.subarray(0, this.length);
    this.length = 0;
    return lines;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.bytes.length, this.length + bytes));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }
}

/** Generations of the logs present in `dir`, oldest first. */
export async function logGenerations(dir: string): Promise<number[]> {
  const names = await fs.readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  return names.map((name) => logFilePattern.exec(name)?.[1]).filter((n): n is string => n !== undefined).map(Number).sort((a, b) => a - b);
}

/** Options of {@link LogWriter.append}. */
export interface AppendHooks {
  /** Longest stretch of serialisation on the event loop before yielding, in ms. */
  readonly sliceMs: number;
  /** Runs after the batch is written and before its fsync (tests: slow or failing writes). */
  readonly beforeSync?: () => Promise<void> | void;
}

/** Appends batches to one log generation. */
export class LogWriter {
  /** Bytes of committed batches in this log. */
  bytes: number;
  /** Records of committed batches in this log. */
  records: number;
  /** A failed append may have left part of a batch: it is cut off before the next one. */
  private mustTruncate = false;

  private constructor(readonly file: string, readonly gen: number, private readonly handle: fs.FileHandle, bytes: number, records: number) {
    this.bytes = bytes;
    this.records = records;
  }

  /**
   * Opens generation `gen` for appending, cut to `validBytes` (a torn tail found by replay). A new
   * file is made durable in its directory at once, so that its batches cannot vanish with it.
   */
  static async open(dir: string, gen: number, validBytes: number, records: number): Promise<LogWriter> {
    const file = path.join(dir, logFileName(gen));
    const existed = await fs.stat(file).then(() => true, () => false);
    const handle = await fs.open(file, 'a', 0o600);
    try {
      if (existed) await handle.truncate(validBytes);
      else await syncDirectory(dir);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new LogWriter(file, gen, handle, existed ? validBytes : 0, records);
  }

  /**
   * Appends one batch (JSON bytes by key, null deletes) and its commit line, then fsyncs; resolves
   * once the batch is durable.
   */
  async append(records: ReadonlyMap<string, Uint8Array | null>, seq: number, hooks: AppendHooks): Promise<number> {
    if (this.mustTruncate) {
      await this.handle.truncate(this.bytes);
      this.mustTruncate = false;
    }
    this.mustTruncate = true;
    const slicer = new Slicer(hooks.sliceMs);
    const lines = new LineBuffer();
    let written = 0;
    for (const [key, json] of records) {
      lines.record(seq, key, json);
      if (!slicer.due()) continue;
      written += await writeAll(this.handle, lines.takeAll());
      await slicer.pause();
    }
    lines.commit(seq, records.size);
    written += await writeAll(this.handle, lines.takeAll());
    if (hooks.beforeSync) await hooks.beforeSync();
    await this.handle.datasync();
    this.mustTruncate = false;
    this.bytes += written;
    this.records += records.size;
    return written;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/**
 * Writes all of `bytes`. A write may take only part of them (a full disk takes what fits and
 * reports no error): the rest is written again, which then fails with the reason, so a batch is
 * never committed with a record cut short.
 */
async function writeAll(handle: fs.FileHandle, bytes: Buffer): Promise<number> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    if (bytesWritten === 0) throw new Error(`wrote 0 of ${bytes.length - offset} bytes to the change log`);
    offset += bytesWritten;
  }
  return bytes.length;
}

/** Makes a directory's entries (a new file, a rename) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync and makes renames durable on its own.
  if (process.platform === 'win32') return;
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

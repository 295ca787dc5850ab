/**
 * The embedded store: a snapshot kept by lowdb (`mesh.json`) and an append-only log of change
 * records beside it (`mesh.<generation>.log`), as Redis keeps an RDB file and an AOF, and etcd a
 * snapshot and a WAL. Every group commit appends its batch to the log and fsyncs it, so a write
 * costs what changed, not the whole state. When the log passes `maxLogBytes` or `maxLogRecords`,
 * appends move on to a new log generation and the records as of the end of the old one are written
 * as a new snapshot in the background, in slices; then the old log is deleted.
 *
 * Start-up reads the snapshot and replays the logs from the generation it names. A crash at any
 * moment leaves a state that replays: a torn batch at the end of the newest log is cut off (it was
 * never acknowledged), a crash during a snapshot leaves the previous snapshot and every log it needs.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import type { DurableFileOptions } from './durable-file-adapter.ts';
import { CorruptLogError, logFileName, logGenerations, LogWriter } from './change-log.ts';
import { parseValue, replayLog, type LoggedRecord } from './log-replay.ts';
import { RecordImage } from './record-image.ts';
import { FORMAT_VERSION, SnapshotFile } from './snapshot-file.ts';
import { RecordStore, type ChangeRecord, type LoadedRecords } from './store.ts';

export { DATA_FILE_NAME, DataFormatError, FORMAT_VERSION } from './snapshot-file.ts';

/** When the log is folded into a new snapshot. */
export interface CompactionSettings {
  /** Log size that starts a snapshot, in bytes. */
  readonly maxLogBytes: number;
  /** Log records that start a snapshot. */
  readonly maxLogRecords: number;
}

/** Defaults: a restart replays at most this much, which takes well under a second. */
export const defaultCompaction: CompactionSettings = { maxLogBytes: 64 * 1024 * 1024, maxLogRecords: 100_000 };

/** Where the store reports what operators should know (a torn tail cut off, a failed snapshot). */
export interface StoreLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Options of {@link LowdbStore}. */
export interface LowdbStoreOptions {
  /** Directory of the data files; created if missing. */
  readonly dataDir: string;
  /** Wall clock for the snapshot's `savedAtMs`; `Date.now` unless a test pins it. */
  readonly wallClockMs?: () => number;
  /** Fault injection for the snapshot's writes (tests): a fake file system or a hook before the rename. */
  readonly adapter?: DurableFileOptions;
  /** Runs inside every log append, before its fsync; may delay or throw (tests: slow or failing writes). */
  readonly duringWrite?: (seq: number) => Promise<void> | void;
  /** Told about every failed write (for logging); callers are rejected regardless. */
  readonly onError?: (error: unknown) => void;
  /** Told how long every successful append took, in ms, and how many bytes it wrote. */
  readonly onWritten?: (ms: number, bytes: number) => void;
  /** Turns the state of a data file of the previous, whole-document format into records. */
  readonly legacyRecords?: (state: unknown) => readonly ChangeRecord[];
  readonly compaction?: Partial<CompactionSettings>;
  /** Longest stretch of serialisation on the event loop before yielding, in ms. */
  readonly sliceMs?: number;
  readonly log?: StoreLog;
}

const silent: StoreLog = { info: () => {}, warn: () => {}, error: () => {} };
/** After a failed snapshot, how long the store waits before it tries another. */
const snapshotRetryMs = 10_000;

/** The file store: snapshot plus change log. */
export class LowdbStore extends RecordStore {
  /** Absolute path of the snapshot. */
  readonly file: string;
  readonly dataDir: string;
  private readonly snapshotFile: SnapshotFile;
  private readonly options: LowdbStoreOptions;
  private readonly compaction: CompactionSettings;
  private readonly log: StoreLog;
  /** Longest stretch of work on the event loop before yielding, in ms. */
  private readonly sliceMs: number;
  /** Every durable record by key: what the next snapshot writes. */
  private image = new RecordImage();
  private loaded: Promise<void> | null = null;
  /** Whether anything was ever written (a snapshot, a log, or an append of this process). */
  private hasData = false;
  /** Where appends go once the first one opens it: generation, trusted length, records. */
  private resume = { gen: 1, validBytes: 0, records: 0 };
  private writer: LogWriter | null = null;
  private compacting: Promise<void> | null = null;
  private snapshotRetryAtMs = 0;
  /** Snapshots written so far (tests and the bench). */
  snapshots = 0;

  /** Opens nothing yet: the directory is created and the files read on first use. */
  constructor(options: LowdbStoreOptions) {
    super(options.onError);
    this.options = options;
    this.dataDir = path.resolve(options.dataDir);
    this.compaction = { ...defaultCompaction, ...options.compaction };
    this.log = options.log ?? silent;
    this.sliceMs = options.sliceMs ?? 2;
    this.snapshotFile = new SnapshotFile(this.dataDir, options.adapter ?? {}, this.sliceMs,
      options.legacyRecords ?? ((state) => [{ key: 'state', value: state }]));
    this.file = this.snapshotFile.file;
  }

  /**
   * Reads the snapshot and replays the logs; `undefined` if there is nothing yet. Raises
   * `durableSeq` to the seq on disk. Only a torn batch at the end of the newest log is changed
   * (cut off); anything else it cannot trust is refused with the files left as they are.
   * @throws CorruptDataFileError, DataFormatError or CorruptLogError, naming the path.
   */
  async load(): Promise<LoadedRecords | undefined> {
    await this.ready();
    return this.hasData ? { seq: this.durableSeq(), records: this.image.values() } : undefined;
  }

  /** Reads the files once, on first use. */
  private ready(): Promise<void> {
    return (this.loaded ??= this.readAll());
  }

  private async readAll(): Promise<void> {
    const snapshot = await this.snapshotFile.read();
    const image = new Map(snapshot?.records ?? []);
    const first = snapshot?.log ?? 1;
    const all = await logGenerations(this.dataDir);
    const gens = all.filter((gen) => gen >= first);
    gens.forEach((gen, i) => {
      if (gen !== first + i) throw new CorruptLogError(path.join(this.dataDir, logFileName(first + i)), 'missing, but newer logs exist');
    });
    let seq = snapshot?.seq ?? 0;
    for (const [i, gen] of gens.entries()) {
      const file = path.join(this.dataDir, logFileName(gen));
      const data = await readFile(file);
      const latest = new Map<string, LoggedRecord>();
      const outcome = replayLog(file, data, i === gens.length - 1, (records) => {
        for (const record of records) latest.set(record.key, record);
      });
      applyTo(image, parsedRecords(file, data, latest));
      seq = Math.max(seq, outcome.seq);
      this.resume = { gen, validBytes: outcome.validBytes, records: outcome.records };
      if (outcome.tornBytes > 0) {
        this.log.warn('discarding a torn batch at the end of the change log (a write cut off by a crash, never acknowledged)',
          { file, bytes: outcome.tornBytes, keptSeq: outcome.seq });
      }
    }
    if (gens.length === 0) this.resume = { gen: first, validBytes: 0, records: 0 };
    // Logs older than the snapshot are folded into it (a crash came between the two steps).
    for (const gen of all.filter((g) => g < first)) await rm(path.join(this.dataDir, logFileName(gen)), { force: true });
    this.image = new RecordImage(image);
    this.commit.noteDurable(seq);
    this.hasData = snapshot !== null || gens.length > 0;
  }

  protected async writeRecords(records: ReadonlyMap<string, Buffer | null>, seq: number): Promise<void> {
    await this.ready();
    this.writer ??= await LogWriter.open(this.dataDir, this.resume.gen, this.resume.validBytes, this.resume.records);
    const started = performance.now();
    const duringWrite = this.options.duringWrite;
    const bytes = await this.writer.append(records, seq, {
      sliceMs: this.sliceMs, beforeSync: duringWrite && (() => duringWrite(seq)),
    });
    this.options.onWritten?.(performance.now() - started, bytes);
    await this.image.apply(records, this.sliceMs);
    this.hasData = true;
    this.durableImageSeq = seq;
    if (this.compacting === null && this.logIsFull() && Date.now() >= this.snapshotRetryAtMs) await this.startSnapshot();
  }

  private durableImageSeq = 0;

  private logIsFull(): boolean {
    const writer = this.writer;
    return writer !== null && (writer.bytes >= this.compaction.maxLogBytes || writer.records >= this.compaction.maxLogRecords);
  }

  /**
   * Moves appends to a new log generation and writes the records as of the old one's end as a
   * snapshot in the background. Runs inside a write's turn, so no append is in flight meanwhile.
   */
  private async startSnapshot(): Promise<void> {
    const old = this.writer as LogWriter;
    let next: LogWriter;
    try {
      next = await LogWriter.open(this.dataDir, old.gen + 1, 0, 0);
    } catch (error) {
      this.snapshotFailed(error);
      return;
    }
    this.writer = next;
    await old.close().catch(() => {});
    const snapshot = {
      formatVersion: FORMAT_VERSION, savedAtMs: (this.options.wallClockMs ?? Date.now)(), seq: this.durableImageSeq,
      log: next.gen, records: await this.image.copy(this.sliceMs),
    } as const;
    this.compacting = this.writeSnapshot(snapshot).finally(() => {
      this.compacting = null;
    });
  }

  private async writeSnapshot(snapshot: Parameters<SnapshotFile['write']>[0]): Promise<void> {
    try {
      await this.snapshotFile.write(snapshot);
      this.snapshots += 1;
      for (const gen of await logGenerations(this.dataDir)) {
        if (gen < snapshot.log) await rm(path.join(this.dataDir, logFileName(gen)), { force: true });
      }
    } catch (error) {
      this.snapshotFailed(error);
    }
  }

  private snapshotFailed(error: unknown): void {
    this.snapshotRetryAtMs = Date.now() + snapshotRetryMs;
    this.log.error('writing a snapshot failed; the change log keeps every change and grows until one succeeds', { error });
  }

  /** Waits for a snapshot in progress (tests, shutdown). */
  async settled(): Promise<void> {
    await this.compacting;
  }

  /**
   * Flushes, refuses later appends, and folds the log into a snapshot, so that a stopped service
   * leaves one file (simple to back up) and starts without replaying.
   */
  override async close(): Promise<void> {
    await super.close();
    await this.compacting;
    if (this.writer !== null && this.writer.records > 0 && !this.failing()) {
      await this.startSnapshot();
      await this.compacting;
    }
    await this.writer?.close().catch(() => {});
    this.writer = null;
  }
}

/** The last record of each key of a replayed log, parsed. */
function parsedRecords(file: string, data: Buffer, latest: ReadonlyMap<string, LoggedRecord>): ChangeRecord[] {
  const records: ChangeRecord[] = [];
  for (const [key, record] of latest) {
    try {
      records.push({ key, value: parseValue(data, record) });
    } catch {
      throw new CorruptLogError(file, `the value of ${key} is not JSON`);
    }
  }
  return records;
}

/** Applies records to a map of live records (null deletes) and returns it. */
function applyTo(image: Map<string, unknown>, records: readonly ChangeRecord[]): Map<string, unknown> {
  for (const { key, value } of records) {
    if (value === null) image.delete(key);
    else image.set(key, value);
  }
  return image;
}

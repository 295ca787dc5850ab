/**
 * The embedded file store: lowdb over the crash-safe {@link DurableFileAdapter}, behind the
 * group-commit scheduler shared with {@link MemoryStore}. The document lives in
 * `<dataDir>/mesh.json` inside a versioned envelope, so that a later format can be recognised
 * instead of misread.
 */
import path from 'node:path';
import { Low } from 'lowdb';
import { DurableFileAdapter, type DurableFileOptions } from './durable-file-adapter.ts';
import { GroupCommit, GroupCommittedStore } from './store.ts';

/** The only envelope format this build reads and writes. */
export const FORMAT_VERSION = 1;

/** Name of the data file inside the data directory. */
export const DATA_FILE_NAME = 'mesh.json';

/** What is actually on disk: the core's document plus what is needed to trust it. */
export interface Envelope<T> {
  /** Format of this envelope; a reader refuses any version it does not know. */
  readonly formatVersion: typeof FORMAT_VERSION;
  /** Wall-clock time of the write, for operators reading the file; never used for decisions. */
  readonly savedAtMs: number;
  /** Highest change sequence number the document is known to include. */
  readonly seq: number;
  /** The core's snapshot. */
  readonly state: T;
}

/** Options of {@link LowdbStore}. */
export interface LowdbStoreOptions {
  /** Directory of the data file; created if missing. */
  readonly dataDir: string;
  /** Wall clock for `savedAtMs`; `Date.now` unless a test pins it. */
  readonly wallClockMs?: () => number;
  /** Fault injection for tests: a fake file system or a hook before the rename. */
  readonly adapter?: DurableFileOptions;
  /** Told about every failed write (for logging); callers are rejected regardless. */
  readonly onError?: (error: unknown) => void;
  /** Told how long every successful write took, in ms (for the store-latency metric). */
  readonly onWritten?: (ms: number) => void;
  /**
   * Checks the loaded state's shape; returns a sentence naming what is wrong, or undefined. Without
   * it the state is trusted once the envelope is (the store is generic; the service passes
   * `dataFileProblem` from data-file-schema.ts).
   */
  readonly checkState?: (state: unknown) => string | undefined;
}

/** Raised when the data file parses but is not an envelope this build understands. */
export class DataFormatError extends Error {
  /** Path of the refused file. */
  readonly path: string;

  constructor(file: string, problem: string) {
    super(`data file ${file} ${problem}; refusing to load it rather than guess`);
    this.name = 'DataFormatError';
    this.path = file;
  }
}

/** A {@link Store} that keeps the document in `<dataDir>/mesh.json`, written crash-safely. */
export class LowdbStore<T> extends GroupCommittedStore<T> {
  /** Absolute path of the data file. */
  readonly file: string;
  private readonly adapter: DurableFileAdapter<Envelope<T> | null>;
  protected readonly commit: GroupCommit<T>;
  private readonly wallClockMs: () => number;
  private readonly onWritten: ((ms: number) => void) | undefined;
  private readonly checkState: ((state: unknown) => string | undefined) | undefined;

  /** Opens nothing yet: the directory is created and the file read on first use. */
  constructor(options: LowdbStoreOptions) {
    super();
    this.file = path.resolve(options.dataDir, DATA_FILE_NAME);
    this.adapter = new DurableFileAdapter(this.file, options.adapter);
    this.wallClockMs = options.wallClockMs ?? Date.now;
    this.onWritten = options.onWritten;
    this.checkState = options.checkState;
    this.commit = new GroupCommit<T>((doc, seq) => this.writeOnce(doc, seq), 0, options.onError);
  }

  /**
   * Reads the file; `undefined` if there is none yet. Raises `durableSeq` to the seq on disk.
   * @throws CorruptDataFileError or DataFormatError, naming the path, for a file it cannot trust.
   */
  async load(): Promise<T | undefined> {
    const db = this.open(null);
    await db.read();
    if (db.data === null) return undefined;
    const envelope = checkEnvelope<T>(this.file, db.data);
    const problem = this.checkState?.(envelope.state);
    if (problem !== undefined) throw new DataFormatError(this.file, `does not hold a valid mesh state (${problem})`);
    this.commit.noteDurable(envelope.seq);
    return envelope.state;
  }


  private async writeOnce(state: T, seq: number): Promise<void> {
    const started = performance.now();
    await this.open({ formatVersion: FORMAT_VERSION, savedAtMs: this.wallClockMs(), seq, state }).write();
    this.onWritten?.(performance.now() - started);
  }

  /**
   * A fresh lowdb handle per operation. A long-lived `Low` would share its mutable `data` between a
   * load and a write in flight, and would pin the last snapshot in memory between writes; lowdb
   * keeps no other state, so a handle costs nothing.
   */
  private open(data: Envelope<T> | null): Low<Envelope<T> | null> {
    return new Low<Envelope<T> | null>(this.adapter, data);
  }
}

/** Checks that a parsed file is an envelope of a known version; names the path on failure. */
function checkEnvelope<T>(file: string, data: unknown): Envelope<T> {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new DataFormatError(file, 'does not hold a JSON object');
  }
  const record = data as Record<string, unknown>;
  if (!('formatVersion' in record)) throw new DataFormatError(file, 'has no formatVersion (not a mesh data file?)');
  if (record.formatVersion !== FORMAT_VERSION) {
    throw new DataFormatError(
      file,
      `has formatVersion ${JSON.stringify(record.formatVersion)}, but this build reads only ${FORMAT_VERSION}`,
    );
  }
  if (typeof record.seq !== 'number' || !Number.isSafeInteger(record.seq) || record.seq < 0) {
    throw new DataFormatError(file, `has an invalid seq ${JSON.stringify(record.seq)}`);
  }
  if (record.state === undefined || record.state === null) throw new DataFormatError(file, 'has no state');
  return record as unknown as Envelope<T>;
}

/**
 * The snapshot in `<dataDir>/mesh.json`: every live record at one point of the change log, kept by
 * lowdb through the crash-safe {@link DurableFileAdapter} (temp file, fsync, rename, fsync the
 * directory). It names the first log generation to replay after it. The previous format (version 1:
 * the whole core state as one document) is still read.
 */
import path from 'node:path';
import { Low } from 'lowdb';
import { DurableFileAdapter, type DurableFileOptions } from './durable-file-adapter.ts';
import { ByteChunks } from './byte-chunks.ts';
import { bytesOf, type StoredValue } from './record-image.ts';
import { Slicer } from '../../api/slicer.ts';
import type { ChangeRecord } from './store.ts';

/** The snapshot format this build writes. */
export const FORMAT_VERSION = 2;
/** The whole-document format of earlier builds, still read. */
export const LEGACY_FORMAT_VERSION = 1;
/** Name of the snapshot inside the data directory. */
export const DATA_FILE_NAME = 'mesh.json';

/** The snapshot as this build writes it. */
export interface Snapshot {
  readonly formatVersion: typeof FORMAT_VERSION;
  /** Wall-clock time of the write, for operators reading the file; never used for decisions. */
  readonly savedAtMs: number;
  /** Highest change seq the records include. */
  readonly seq: number;
  /** The first log generation to replay after these records. */
  readonly log: number;
  /** Every live record by key (in memory a Map; on disk a JSON object). */
  readonly records: ReadonlyMap<string, unknown>;
}

/** A snapshot to write: every live record as JSON bytes or as a value loaded at start-up. */
export interface SnapshotImage extends Omit<Snapshot, 'records'> {
  readonly records: readonly (readonly [string, StoredValue])[];
}

/** Raised when the data file parses but is not a snapshot this build understands. */
export class DataFormatError extends Error {
  /** Path of the refused file. */
  readonly path: string;

  constructor(file: string, problem: string) {
    super(`data file ${file} ${problem}; refusing to load it rather than guess`);
    this.name = 'DataFormatError';
    this.path = file;
  }
}

/** Reads and writes the snapshot file. */
export class SnapshotFile {
  readonly file: string;
  private readonly adapter: DurableFileAdapter<SnapshotImage | Record<string, unknown> | null>;

  /**
   * @param sliceMs longest stretch of serialisation on the event loop.
   * @param legacyRecords turns a version-1 document's state into records.
   */
  constructor(dataDir: string, options: DurableFileOptions, sliceMs: number,
    private readonly legacyRecords: (state: unknown) => readonly ChangeRecord[]) {
    this.file = path.resolve(dataDir, DATA_FILE_NAME);
    this.adapter = new DurableFileAdapter(this.file, options, (doc) => serialise(doc as SnapshotImage, sliceMs));
  }

  /**
   * The snapshot, or null when there is none.
   * @throws CorruptDataFileError or DataFormatError, naming the path, for a file it cannot trust.
   */
  async read(): Promise<Snapshot | null> {
    const db = new Low<SnapshotImage | Record<string, unknown> | null>(this.adapter, null);
    await db.read();
    if (db.data === null) return null;
    return this.parse(db.data as Record<string, unknown>);
  }

  /** Writes `snapshot` atomically. */
  async write(snapshot: SnapshotImage): Promise<void> {
    await new Low<SnapshotImage | Record<string, unknown> | null>(this.adapter, snapshot).write();
  }

  private parse(data: Record<string, unknown>): Snapshot {
    if (Array.isArray(data)) throw new DataFormatError(this.file, 'does not hold a JSON object');
    if (!('formatVersion' in data)) throw new DataFormatError(this.file, 'has no formatVersion (not a mesh data file?)');
    const version = data.formatVersion;
    if (version !== FORMAT_VERSION && version !== LEGACY_FORMAT_VERSION) {
      throw new DataFormatError(this.file,
        `has formatVersion ${JSON.stringify(version)}, but this build reads only ${LEGACY_FORMAT_VERSION} and ${FORMAT_VERSION}`);
    }
    const seq = data.seq;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new DataFormatError(this.file, `has an invalid seq ${JSON.stringify(seq)}`);
    const savedAtMs = typeof data.savedAtMs === 'number' ? data.savedAtMs : 0;
    if (version === LEGACY_FORMAT_VERSION) {
      if (data.state === undefined || data.state === null) throw new DataFormatError(this.file, 'has no state');
      const records = new Map(this.legacyRecords(data.state).map((r) => [r.key, r.value]));
      return { formatVersion: FORMAT_VERSION, savedAtMs, seq, log: 1, records };
    }
    const log = data.log;
    if (typeof log !== 'number' || !Number.isSafeInteger(log) || log < 1) throw new DataFormatError(this.file, `has an invalid log generation ${JSON.stringify(log)}`);
    const records = data.records;
    if (typeof records !== 'object' || records === null || Array.isArray(records)) throw new DataFormatError(this.file, 'has no records object');
    return { formatVersion: FORMAT_VERSION, savedAtMs, seq, log, records: new Map(Object.entries(records)) };
  }
}

/**
 * The snapshot as compact JSON bytes, built in slices so that a large one does not stall the event
 * loop, and in chunks of bounded size that are written one after the other: the records' bytes are
 * copied, and no large string is made.
 */
async function serialise(snapshot: SnapshotImage, sliceMs: number): Promise<Buffer[]> {
  const { records, ...head } = snapshot;
  const out = new ByteChunks();
  out.text(`${JSON.stringify(head).slice(0, -1)},"records":{`);
  const slicer = new Slicer(sliceMs);
  let first = true;
  for (const [key, stored] of records) {
    out.text(`${first ? '' : ','}${JSON.stringify(key)}:`);
    out.bytes(bytesOf(stored));
    first = false;
    if (slicer.due()) await slicer.pause();
  }
  out.text('}}');
  return out.done();
}

/**
 * A lowdb adapter that makes every write crash safe. lowdb's own file adapters neither fsync nor
 * sync the directory, so an acknowledged write could vanish on power loss. This one writes compact
 * JSON to a temp file in the same directory, fsyncs it, renames it over the target (atomic on
 * POSIX) and fsyncs the directory so the rename itself is durable. A reader therefore sees either
 * the whole previous document or the whole new one, never a torn file.
 */
import * as nodeFs from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';

/** The part of a `FileHandle` the adapter uses. */
export interface DurableFileHandle {
  writeFile(data: string | Uint8Array, encoding: 'utf8'): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The part of `node:fs/promises` the adapter uses. Injectable so that tests can make one step fail
 * (making a directory read-only proves nothing when the tests run as root).
 */
export interface DurableFs {
  open(file: string, flags: string, mode?: number): Promise<DurableFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  mkdir(dir: string, options: { recursive: true; mode?: number }): Promise<string | undefined>;
  readFile(file: string, encoding: 'utf8'): Promise<string>;
}

/** Options of {@link DurableFileAdapter}. */
export interface DurableFileOptions {
  /** File system to use; `node:fs/promises` unless a test injects faults. */
  readonly fs?: DurableFs;
  /**
   * Runs after the temp file is fsynced and before it is renamed over the target. Tests use it to
   * slow writes down or to fail a write at the last moment; it has no use in production.
   */
  readonly beforeRename?: (tempPath: string) => Promise<void> | void;
}

/** Text, or its UTF-8 bytes. */
export type Text = string | Uint8Array;

/**
 * How a document becomes text; `JSON.stringify` unless the caller serialises in slices, in which
 * case it may return the text in chunks, written one after the other (no large string is built).
 */
export type Serialise<D> = (data: D) => Text | readonly Text[] | Promise<Text | readonly Text[]>;

/** Raised when the data file exists but is not valid JSON. */
export class CorruptDataFileError extends Error {
  /** Path of the unreadable file. */
  readonly path: string;

  constructor(file: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `data file ${file} is corrupt (${reason}); refusing to start with an empty state, which would ` +
        'lose acknowledged data: restore the file from a backup or move it aside deliberately',
      { cause },
    );
    this.name = 'CorruptDataFileError';
    this.path = file;
  }
}

/**
 * Reads and writes one JSON document at `file` with atomic, durable replacement. Writes must not
 * overlap (the store's group commit guarantees one at a time), because they share one temp file.
 */
export class DurableFileAdapter<D> implements Adapter<D> {
  /** Path of the data file. */
  readonly file: string;
  /** Path of the temp file that a write fills before renaming it over {@link file}. */
  readonly tempFile: string;
  private readonly fs: DurableFs;
  private readonly beforeRename: ((tempPath: string) => Promise<void> | void) | undefined;
  private readonly serialise: Serialise<D>;
  /** Whether a write owns the temp file right now, in which case a read must leave it alone. */
  private writing = false;

  /** @param file path of the data file; its directory is created on first use. */
  constructor(file: string, options: DurableFileOptions = {}, serialise: Serialise<D> = (data) => JSON.stringify(data)) {
    this.serialise = serialise;
    this.file = path.resolve(file);
    this.tempFile = path.join(path.dirname(this.file), `${path.basename(this.file)}.tmp`);
    this.fs = options.fs ?? (nodeFs as unknown as DurableFs);
    this.beforeRename = options.beforeRename;
  }

  /**
   * Returns the document, or `null` when the file does not exist. A temp file left by a crash is
   * removed first: its rename never happened, so its write was never acknowledged to anyone.
   * @throws CorruptDataFileError when the file exists but does not parse.
   */
  async read(): Promise<D | null> {
    if (!this.writing) await this.removeTemp();
    let text: string;
    try {
      text = await this.fs.readFile(this.file, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null;
      throw error;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw new CorruptDataFileError(this.file, error);
    }
    // lowdb treats a falsy document as "no file", so `null` or `0` on disk would silently start
    // an empty state; only a JSON object counts as a document.
    if (typeof data !== 'object' || data === null) {
      throw new CorruptDataFileError(this.file, new Error(`expected a JSON object, found ${JSON.stringify(data)}`));
    }
    return data as D;
  }

  /** Durably replaces the file with `data` as compact JSON; resolves only once it is on disk. */
  async write(data: D): Promise<void> {
    // The default serialises before the first await, so that the document is captured at the
    // instant the write starts; a slicing serialiser must be given a document that does not change.
    const text = await this.serialise(data);
    this.writing = true;
    try {
      await this.replace(text);
    } finally {
      this.writing = false;
    }
    await this.syncDirectory();
  }

  private async replace(text: Text | readonly Text[]): Promise<void> {
    await this.fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    try {
      await this.writeTemp(text);
      if (this.beforeRename) await this.beforeRename(this.tempFile);
      await this.fs.rename(this.tempFile, this.file);
    } catch (error) {
      // Best effort: the write's own error is the one worth reporting, and a stale temp file is
      // removed again by the next read or overwritten by the next write anyway.
      await this.removeTemp().catch(() => {});
      throw error;
    }
  }

  private async writeTemp(text: Text | readonly Text[]): Promise<void> {
    // 0o600: the document may hold per-server tokens, which other local users must not read.
    const handle = await this.fs.open(this.tempFile, 'w', 0o600);
    try {
      // A file handle's writeFile writes at its position, so chunks follow one another.
      for (const chunk of typeof text === 'string' || text instanceof Uint8Array ? [text] : text) await handle.writeFile(chunk, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Makes the rename durable: without this a power cut can bring the old directory entry back. */
  private async syncDirectory(): Promise<void> {
    // Windows cannot open a directory for fsync and makes renames durable on its own.
    if (process.platform === 'win32') return;
    const handle = await this.fs.open(path.dirname(this.file), 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  private async removeTemp(): Promise<void> {
    try {
      await this.fs.unlink(this.tempFile);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

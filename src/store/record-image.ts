/**
 * Every durable record of the file store, by key: what `load` returns and what the next snapshot
 * writes. A record written by this process is kept as the JSON bytes it was written as: a buffer's
 * contents are outside the V8 heap, so minor garbage collections neither trace nor copy them, and a
 * snapshot only copies them. A record read at start-up keeps the value parsed from the files until
 * it is written again, since serialising every record at start-up would lengthen a restart.
 */
import { Slicer } from '../../api/slicer.ts';

/** A value parsed from the data files at start-up. */
export class LoadedValue {
  constructor(readonly value: unknown) {}
}

/** A durable record's value: its JSON bytes, or its value as loaded. */
export type StoredValue = Buffer | LoadedValue;

/** The JSON bytes of a stored value. */
export function bytesOf(stored: StoredValue): Buffer {
  return stored instanceof LoadedValue ? Buffer.from(JSON.stringify(stored.value)) : stored;
}

/** The live records: deletions applied, the last value of each key. */
export class RecordImage {
  private readonly entries = new Map<string, StoredValue>();

  /** @param loaded the records read at start-up. */
  constructor(loaded: Iterable<readonly [string, unknown]> = []) {
    for (const [key, value] of loaded) this.entries.set(key, new LoadedValue(value));
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Applies a durable batch (JSON bytes by key, null deletes), yielding to the event loop between
   * slices of `sliceMs`: a mass failure's batch holds thousands of records.
   */
  async apply(records: ReadonlyMap<string, Buffer | null>, sliceMs: number): Promise<void> {
    const slicer = new Slicer(sliceMs);
    for (const [key, json] of records) {
      if (json === null) this.entries.delete(key);
      else this.entries.set(key, json);
      if (slicer.due()) await slicer.pause();
    }
  }

  /** Every record's value, parsed (a fresh map: the caller may keep it). */
  values(): Map<string, unknown> {
    const values = new Map<string, unknown>();
    for (const [key, stored] of this.entries) values.set(key, stored instanceof LoadedValue ? stored.value : JSON.parse(stored.toString()));
    return values;
  }

  /**
   * A copy of every record as of now, taken in slices. The caller must keep the image unchanged
   * until this resolves (the store holds its writes meanwhile).
   */
  async copy(sliceMs: number): Promise<(readonly [string, StoredValue])[]> {
    const slicer = new Slicer(sliceMs);
    const copy: (readonly [string, StoredValue])[] = [];
    for (const entry of this.entries) {
      copy.push(entry);
      if (slicer.due()) await slicer.pause();
    }
    return copy;
  }
}

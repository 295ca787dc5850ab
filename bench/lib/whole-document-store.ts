/**
 * The previous store, kept for side-by-side benches only: every group commit serialises the whole
 * exported core state synchronously and writes it through the crash-safe adapter (temp file,
 * fsync, rename, fsync the directory), as issue 19 found it. It takes the core's change records
 * only to keep the core's notes from piling up, and ignores them.
 */
import path from 'node:path';
import { DurableFileAdapter } from '../../src/store/durable-file-adapter.ts';
import { RecordStore, type LoadedRecords } from '../../src/store/store.ts';

/** Whole-document writes of `exportDoc()`; counts bytes and the synchronous serialisation time. */
export class WholeDocumentStore extends RecordStore {
  bytes = 0;
  /** Synchronous time of each write's export and JSON.stringify, in ms. */
  readonly serialiseMs: number[] = [];
  private readonly adapter: DurableFileAdapter<string>;

  constructor(dataDir: string, private readonly exportDoc: () => unknown) {
    super();
    this.adapter = new DurableFileAdapter<string>(path.join(dataDir, 'mesh.json'), {}, (text) => text);
  }

  async load(): Promise<LoadedRecords | undefined> {
    return undefined;
  }

  protected async writeRecords(_records: ReadonlyMap<string, Buffer | null>, seq: number): Promise<void> {
    const started = performance.now();
    const text = JSON.stringify({ formatVersion: 1, savedAtMs: Date.now(), seq, state: this.exportDoc() });
    this.serialiseMs.push(performance.now() - started);
    this.bytes += Buffer.byteLength(text);
    await this.adapter.write(text);
  }
}

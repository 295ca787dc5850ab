/**
 * The in-memory twin of the file store: the same group-commit semantics and the same records, no
 * disk. Used with `--store memory`, by API tests that do not care about restarts, and by the
 * contract suite to show that both implementations behave alike.
 */
import { RecordStore, type ChangeRecord, type LoadedRecords } from './store.ts';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Records that are "already durable", as if a previous run had written them. */
  readonly initial?: { readonly records: readonly ChangeRecord[]; readonly seq: number };
  /**
   * Runs before every physical write; may delay (to make writes slow) or throw (to make one fail).
   * Tests use it to exercise coalescing and failure paths without a real disk.
   */
  readonly beforeWrite?: (seq: number) => Promise<void> | void;
  /** Told about every failed write (for logging); callers are rejected regardless. */
  readonly onError?: (error: unknown) => void;
}

/** A store that keeps deep copies of the durable records in memory. */
export class MemoryStore extends RecordStore {
  private readonly saved = new Map<string, unknown>();
  private written = false;
  private readonly beforeWrite: ((seq: number) => Promise<void> | void) | undefined;

  /** Creates an empty store, or one seeded with `options.initial`. */
  constructor(options: MemoryStoreOptions = {}) {
    super(options.onError);
    this.beforeWrite = options.beforeWrite;
    if (options.initial) {
      this.apply(structuredClone(options.initial.records));
      this.commit.noteDurable(options.initial.seq);
    }
  }

  /** Returns copies, so that the caller's mutations cannot alter the "durable" records. */
  async load(): Promise<LoadedRecords | undefined> {
    if (!this.written) return undefined;
    return { seq: this.durableSeq(), records: structuredClone(this.saved) };
  }

  protected async writeRecords(records: ReadonlyMap<string, Buffer | null>, _seq: number): Promise<void> {
    // Parse before the hook awaits: the records are the file store's text, read back as a restart
    // would read them, and the map is the caller's only until the write settles.
    const copy = [...records].map(([key, json]) => ({ key, value: json === null ? null : JSON.parse(json.toString()) as unknown }));
    if (this.beforeWrite) await this.beforeWrite(_seq);
    this.apply(copy);
  }

  private apply(records: readonly ChangeRecord[]): void {
    this.written = true;
    for (const { key, value } of records) {
      if (value === null) this.saved.delete(key);
      else this.saved.set(key, value);
    }
  }
}

/**
 * The in-memory twin of the file store: the same group-commit semantics, no disk. Used with
 * `--store memory`, by API tests that do not care about restarts, and by the contract suite to
 * show that both implementations behave alike.
 */
import { GroupCommit, GroupCommittedStore } from './store.ts';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions<T> {
  /** A document that is "already durable", as if a previous run had saved it. */
  readonly initial?: { readonly doc: T; readonly seq: number };
  /**
   * Runs before every physical write; may delay (to make writes slow) or throw (to make one fail).
   * Tests use it to exercise coalescing and failure paths without a real disk.
   */
  readonly beforeWrite?: (seq: number) => Promise<void> | void;
  /** Told about every failed write (for logging); callers are rejected regardless. */
  readonly onError?: (error: unknown) => void;
}

/** A {@link Store} that keeps a deep copy of the last written document in memory. */
export class MemoryStore<T> extends GroupCommittedStore<T> {
  private saved: T | undefined;
  protected readonly commit: GroupCommit<T>;
  private readonly beforeWrite: ((seq: number) => Promise<void> | void) | undefined;

  /** Creates an empty store, or one seeded with `options.initial`. */
  constructor(options: MemoryStoreOptions<T> = {}) {
    super();
    this.beforeWrite = options.beforeWrite;
    this.saved = options.initial ? structuredClone(options.initial.doc) : undefined;
    this.commit = new GroupCommit<T>((doc, seq) => this.writeOnce(doc, seq), options.initial?.seq ?? 0, options.onError);
  }

  /** Returns a copy, so that the caller's mutations cannot alter the "durable" document. */
  async load(): Promise<T | undefined> {
    return this.saved === undefined ? undefined : structuredClone(this.saved);
  }


  private async writeOnce(doc: T, seq: number): Promise<void> {
    // Copy before the hook awaits: the file store serialises at write start, and the copy must
    // capture the same instant, not whatever the caller has mutated by the time the hook returns.
    const copy = structuredClone(doc);
    if (this.beforeWrite) await this.beforeWrite(seq);
    this.saved = copy;
  }
}

/**
 * A follower's copy of the leader's durable records, kept up through the etcd store's watch, so
 * that taking over does not start with reading the whole state. At the take-over the copy is used
 * only if etcd's change seq is still the one it covers and no large batch is half-applied (one
 * small read); otherwise the new leader reads the state as a restart would. Equal seqs mean equal
 * records: a write under the same seq can only be a retry of the same changes.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../logger.ts';
import { applyRecords } from '../store/etcd-layout.ts';
import { EtcdStore, type EtcdStoreOptions, type EtcdWatch } from '../store/etcd-store.ts';
import type { LoadedRecords } from '../store/store.ts';

/** The copy and the seq it covers. */
interface Image {
  readonly records: Map<string, unknown>;
  seq: number;
  /** The etcd revision the copy is at. */
  revision: string;
  /** Whether the leader has ever written (a store never written loads as nothing). */
  written: boolean;
}

/** Follows the records under one prefix while this process does not lead. */
export class FollowedRecords {
  private readonly reader: EtcdStore;
  private image: Image | undefined;
  private watch: EtcdWatch | undefined;
  private running = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly client: Etcd3, prefix: string, private readonly log: Logger) {
    this.reader = new EtcdStore({ client, prefix });
  }

  /** Reads the records and follows them from there; retried while etcd cannot be read. */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.follow();
  }

  /** Stops following and drops the copy (this process leads: its own core is the state). */
  async stop(): Promise<void> {
    this.running = false;
    this.image = undefined;
    clearTimeout(this.retry);
    const watch = this.watch;
    this.watch = undefined;
    await watch?.close().catch(() => {});
  }

  /**
   * The records as a new leader would load them, if the copy is still what etcd holds; undefined
   * when it is not (or there is none): the caller then reads the state itself.
   */
  async current(): Promise<(LoadedRecords & { readonly revision: string; readonly written: boolean }) | undefined> {
    const image = this.image;
    if (image === undefined) return undefined;
    const keys = this.reader.keys;
    const meta = await this.client.getAll().prefix(keys.metaPrefix).strings();
    const seq = meta[keys.seq] === undefined ? 0 : Number(meta[keys.seq]);
    if (meta[keys.pending] !== undefined || seq !== image.seq) return undefined;
    return { seq: image.seq, records: new Map(image.records), revision: image.revision, written: image.written };
  }

  private async follow(): Promise<void> {
    try {
      const snapshot = await this.reader.read();
      if (!this.running) return;
      const image: Image = { records: new Map(snapshot.records), seq: snapshot.seq, revision: snapshot.revision, written: snapshot.written };
      this.watch = await this.reader.watch(snapshot.revision, (change) => {
        applyRecords(image.records, change.records);
        image.revision = change.revision;
        image.written = true;
        if (change.seq !== undefined) image.seq = Math.max(image.seq, change.seq);
      }, (error) => this.restart(error));
      if (!this.running) return void this.watch.close().catch(() => {});
      this.image = image;
    } catch (error) {
      this.restart(error);
    }
  }

  /** The watch failed (or the read): the copy can no longer be trusted; read again shortly. */
  private restart(error: unknown): void {
    this.image = undefined;
    const watch = this.watch;
    this.watch = undefined;
    void watch?.close().catch(() => {});
    if (!this.running) return;
    this.log.debug('following the records failed; reading them again', { error });
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.follow(), 500);
  }
}

/**
 * The store of a term that starts from the follower's copy when it is current (see
 * {@link FollowedRecords.current}), and reads etcd otherwise.
 */
export class PreloadedEtcdStore extends EtcdStore {
  /** Whether `load` used the follower's copy (undefined before it is called). */
  loadedFromCopy: boolean | undefined;

  constructor(options: EtcdStoreOptions, private readonly followed: FollowedRecords) {
    super(options);
  }

  override async load(): Promise<(LoadedRecords & { readonly revision: string }) | undefined> {
    const copy = await this.followed.current().catch(() => undefined);
    this.loadedFromCopy = copy !== undefined;
    if (copy === undefined) return super.load();
    this.commit.noteDurable(copy.seq);
    return copy.written ? { seq: copy.seq, records: copy.records, revision: copy.revision } : undefined;
  }
}

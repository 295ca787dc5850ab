/**
 * Keeping up with the etcd store from another process (a follower): every committed change after a
 * revision, in revision order, as change records. A small batch is one revision; a large batch is
 * delivered whole at the revision of its commit marker, and the revisions that later apply its
 * records repeat values already delivered, which is harmless. Log slices are never delivered.
 */
import type { Etcd3, IEvent } from 'etcd3';
import { parseMarker, type EtcdKeys, type PendingMarker } from './etcd-layout.ts';
import type { ChangeRecord } from './store.ts';

/** The changes of one etcd revision. */
export interface EtcdChange {
  readonly revision: string;
  /** The change seq the records now cover, when this revision moved it. */
  readonly seq: number | undefined;
  /** Records to apply in order (null deletes). */
  readonly records: readonly ChangeRecord[];
}

/** A running watch. */
export interface EtcdWatch {
  /** Stops delivering. */
  close(): Promise<void>;
}

/** What {@link watchRecords} needs from the store. */
export interface WatchOptions {
  readonly client: Etcd3;
  readonly keys: EtcdKeys;
  readonly fromRevision: string;
  readonly onChange: (change: EtcdChange) => void;
  /** A change that could not be read, or a watch etcd cancelled (e.g. its start was compacted): reload. */
  readonly onError: (error: unknown) => void;
  readonly readBatch: (marker: PendingMarker, revision: string) => Promise<{ seq: number; records: ChangeRecord[] }>;
}

/** Starts a watch of the store's keys after `fromRevision`. */
export async function watchRecords(options: WatchOptions): Promise<EtcdWatch> {
  const { keys } = options;
  const watcher = await options.client.watch().prefix(keys.prefix + '/')
    .startRevision((BigInt(options.fromRevision) + 1n).toString()).create();
  let stopped = false;
  // Reading a large batch is asynchronous; the chain keeps deliveries in revision order.
  let chain = Promise.resolve();
  const fail = (error: unknown): void => {
    if (stopped) return;
    stopped = true;
    options.onError(error);
  };
  watcher.on('data', (response) => {
    const revisions = byRevision(response.events);
    chain = chain.then(async () => {
      for (const [revision, events] of revisions) {
        if (stopped) return;
        const change = await changeOf(options, revision, events);
        if (change !== undefined && !stopped) options.onChange(change);
      }
    }).catch(fail);
  });
  watcher.on('error', fail);
  return {
    close: async () => {
      stopped = true;
      await watcher.cancel();
    },
  };
}

/** Events grouped by the revision that made them, in order. */
function byRevision(events: readonly IEvent[]): Map<string, IEvent[]> {
  const groups = new Map<string, IEvent[]>();
  for (const event of events) {
    const revision = event.kv.mod_revision;
    const group = groups.get(revision);
    if (group === undefined) groups.set(revision, [event]);
    else group.push(event);
  }
  return groups;
}

async function changeOf(options: WatchOptions, revision: string, events: readonly IEvent[]): Promise<EtcdChange | undefined> {
  const { keys } = options;
  let records: ChangeRecord[] = [];
  let seq: number | undefined;
  let marker: PendingMarker | undefined;
  for (const { type, kv } of events) {
    const key = kv.key.toString();
    const recordKey = keys.recordKeyOf(key);
    if (recordKey !== undefined) {
      records.push({ key: recordKey, value: type === 'Put' ? JSON.parse(kv.value.toString()) as unknown : null });
    } else if (key === keys.seq && type === 'Put') {
      seq = Number(kv.value.toString());
    } else if (key === keys.pending && type === 'Put') {
      marker = parseMarker(key, kv.value.toString());
    }
  }
  if (marker !== undefined) {
    const batch = await options.readBatch(marker, revision);
    records = [...batch.records, ...records];
    seq = Math.max(seq ?? 0, batch.seq);
  }
  return records.length === 0 && seq === undefined ? undefined : { revision, seq, records };
}

/**
 * Observers of the replicas' Jepsen-style test that write into its history (tests/e2e/ha-history.ts):
 * who leads, polled from every replica; the event stream, followed across leaders through the
 * TypeScript client; and etcd's own history of every key under the run's prefix, read at the end.
 */
import { Etcd3 } from 'etcd3';
import { createMeshClient } from '../../clients/ts/mesh-client.ts';
import type { EtcdChange, HistoryLog } from './ha-history.ts';
import type { ReplicaGroup } from './replicas.ts';
import { sleep } from './service-process.ts';

/** Records every (leader, term) the replicas report, every `intervalMs`, until stopped. */
export function watchLeaders(group: ReplicaGroup, history: HistoryLog, intervalMs = 100): { stop(): Promise<void> } {
  let stopped = false;
  const seen = new Set<string>();
  const loop = (async () => {
    for (let round = 0; !stopped && round < 100_000; round++) {
      const views = await Promise.all(group.replicas.map(async (r) => ({ url: r.service.url, view: await group.role(r, 500) })));
      for (const { url, view } of views) {
        if (view?.role !== 'leader' || view.term === null) continue;
        const key = `${url} ${view.term}`;
        if (seen.has(key)) continue;
        seen.add(key);
        history.leaders.push({ at: Date.now(), url, term: view.term });
      }
      await sleep(intervalMs);
    }
  })();
  return { stop: async () => { stopped = true; await loop; } };
}

/** Follows `GET /mesh/events` over the replicas, reconnecting with the last id, until stopped. */
export function followEvents(urls: readonly string[], history: HistoryLog): { stop(): Promise<void> } {
  let stopped = false;
  let current: { close(): void } | undefined;
  const loop = (async () => {
    let lastEventId: string | undefined;
    for (let attempt = 0; !stopped && attempt < 10_000; attempt++) {
      try {
        const client = createMeshClient({ baseUrl: urls });
        const stream = await client.events(lastEventId === undefined ? {} : { lastEventId });
        current = stream;
        for await (const event of stream) {
          if (stream.lastEventId !== undefined && stream.lastEventId !== lastEventId) {
            lastEventId = stream.lastEventId;
            history.events.push({ id: lastEventId, data: JSON.stringify(event) });
          }
          if (stopped) break;
        }
      } catch {
        // The leader died or stepped down: reconnect (the client follows the new leader).
      }
      current = undefined;
      await sleep(200);
    }
  })();
  return { stop: async () => { stopped = true; current?.close(); await loop; } };
}

/**
 * Every change under `prefix` (the leader key, records, meta, log) since etcd's first revision, in
 * revision order. A sentinel key beside the prefix (`<prefix>-end`), written first, marks the end of
 * what to read; it is not returned.
 */
export async function etcdHistory(endpoints: readonly string[], prefix: string, timeoutMs = 30_000): Promise<EtcdChange[]> {
  // One watch answer may carry many large past values: more than gRPC's default 4 MiB per message.
  const client = new Etcd3({ hosts: [...endpoints], grpcOptions: { 'grpc.max_receive_message_length': -1 } });
  const sentinel = `${prefix}-end`;
  try {
    await client.put(sentinel).value(String(Date.now()));
    const changes: EtcdChange[] = [];
    const watcher = await client.watch().prefix(prefix).startRevision('1').create();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`etcd's history under ${prefix} not read within ${timeoutMs} ms`)), timeoutMs);
        watcher.on('data', (response) => {
          for (const event of response.events) {
            const key = event.kv.key.toString();
            if (key === sentinel) {
              clearTimeout(timer);
              return resolve();
            }
            if (!key.startsWith(`${prefix}/`)) continue;
            changes.push({
              type: event.type === 'Delete' ? 'delete' : 'put', key, value: event.kv.value.toString(),
              modRevision: String(event.kv.mod_revision), createRevision: String(event.kv.create_revision),
            });
          }
        });
        watcher.on('error', (error) => reject(error));
      });
    } finally {
      await watcher.cancel().catch(() => {});
    }
    return changes;
  } finally {
    client.close();
  }
}

/** etcd's current revision. */
export async function etcdRevision(endpoints: readonly string[]): Promise<string> {
  const client = new Etcd3({ hosts: [...endpoints] });
  try {
    const response = await client.kv.range({ key: Buffer.from('/') });
    return String(response.header.revision);
  } finally {
    client.close();
  }
}

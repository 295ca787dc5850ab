/**
 * Start-up and shutdown of a coordinator on etcd (`--store etcd`): it listens at once as a follower,
 * joins the election under `<prefix>/leader` with its advertised URL, and serves the mesh whenever
 * it is elected. One store per term, fenced by the term's election key, so that writes of a deposed
 * leader fail in etcd.
 */
import type { Server } from 'node:http';
import type { Settings } from '../settings.ts';
import { createEtcdClient } from '../store/etcd-client.ts';
import { FollowedRecords, PreloadedEtcdStore } from './followed-records.ts';
import { serveMesh, type MeshParts } from '../serve-mesh.ts';
import { ReplicatedCoordinator } from './replicated-coordinator.ts';

/** Starts a replica on a created (not yet listening) server; resolves once it listens and campaigns. */
export async function startReplica(
  parts: Omit<MeshParts, 'store' | 'leadership'>, server: Server, listen: (server: Server, settings: Settings) => Promise<void>,
): Promise<void> {
  const { settings, log } = parts;
  const client = await createEtcdClient(settings.etcd);
  let replica: ReplicatedCoordinator | undefined;
  server.on('request', (req, res) => {
    if (replica) return replica.handle(req, res);
    res.writeHead(503, { 'Content-Type': 'application/problem+json', 'Retry-After': '1' }).end(JSON.stringify({
      type: 'https://mesh-coordinator.dev/problems/no-leader', title: 'Service Unavailable', status: 503, detail: 'Starting; retry shortly.',
    }));
  });
  server.on('upgrade', (req, socket, head) => (replica ? replica.upgrade(req, socket, head) : socket.destroy()));
  await listen(server, settings);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : settings.port;
  const hostPart = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const url = `http://${hostPart}:${port}`;
  const selfUrl = settings.advertiseUrl ?? url;
  let current: { storeFailed(error: unknown): void; storeWritten(ms: number): void } | undefined;
  const followed = new FollowedRecords(client, settings.etcd.prefix, log);
  replica = new ReplicatedCoordinator({
    parts, log,
    election: { client, key: `${settings.etcd.prefix}/leader`, selfUrl, ttlSeconds: settings.leaderTtlSeconds, now: () => parts.clock.now() },
    follower: followed,
    openStore: (fence) => new PreloadedEtcdStore({
      client, prefix: settings.etcd.prefix, fence,
      onError: (error) => current?.storeFailed(error), onWritten: (ms) => current?.storeWritten(ms),
    }, followed),
    serve: async (termParts) => {
      const mesh = await serveMesh(termParts);
      mesh.startTicking();
      current = mesh.observed;
      return mesh;
    },
  });
  await replica.start();
  log.info('mesh coordinator ready', {
    url, selfUrl, clock: settings.clock, store: settings.store, role: 'replica',
    etcd: { endpoints: settings.etcd.endpoints, prefix: settings.etcd.prefix }, leaderTtlSeconds: settings.leaderTtlSeconds,
    protectedMode: settings.adminToken === undefined, testApi: settings.testApi,
  });
  const running = replica;
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    server.close();
    server.closeIdleConnections();
    // The leader flushes under its fence, then revokes its lease: a follower takes over at once.
    await running.stop();
    server.closeAllConnections();
    client.close();
    log.info('stopped');
    await log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

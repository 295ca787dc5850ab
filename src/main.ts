/**
 * Composition root: reads the settings, builds the real clock, store, core and HTTP server, starts
 * the ticker and handles shutdown. The only place where real things are constructed.
 */
import { createServer, type Server, type ServerOptions } from 'node:http';
import type { MeshApp } from '../api/app.ts';
import type { HttpOptions } from '../api/deps.ts';
import { loadContract } from '../api/openapi.ts';
import { ManualClock, type Clock } from '../mesh/base/ports.ts';
import type { CoreState } from '../mesh/core/state.ts';
import { recordsOfState } from '../mesh/core/change-records.ts';
import { createLogger, type Logger } from './logger.ts';
import { RunningMesh } from './mesh-host.ts';
import { Observability } from './observability.ts';
import { helpText, isWildcard, parseSettings, type Settings } from './settings.ts';
import { lockDataDir, type DataDirLock } from './store/data-dir-lock.ts';
import { LowdbStore } from './store/lowdb-store.ts';
import { MemoryStore } from './store/memory-store.ts';
import type { Store } from './store/store.ts';
import { monotonicClock, processTimeSources } from './system-clock.ts';
import { invariantViolationAt, violateInvariantAt } from './test-hooks.ts';
import type { Ticker } from './ticker.ts';
import { serveMesh } from './serve-mesh.ts';
import { startReplica } from './ha/start-replica.ts';

async function main(): Promise<void> {
  const parsed = parseSettings(process.argv.slice(2), process.env);
  if (!parsed.ok) {
    process.stderr.write(`mesh-coordinator: invalid settings:\n${parsed.errors.map((e) => `  - ${e}`).join('\n')}\n` +
      'Run with --help to list every setting.\n');
    process.exit(2);
  }
  const { settings } = parsed;
  if (settings.help) {
    process.stdout.write(helpText());
    return;
  }
  const violation = invariantViolationAt(process.env, settings.clock);
  if (violation !== null && 'error' in violation) {
    process.stderr.write(`mesh-coordinator: invalid settings:\n  - ${violation.error}\n`);
    process.exit(2);
  }
  const log = createLogger({ level: settings.logLevel, fields: { service: 'mesh-coordinator' } });
  for (const warning of parsed.warnings) log.warn(warning);
  if (isWildcard(settings.host) && settings.allowedHosts.length === 0) {
    log.warn('bound to every interface without MESH_ALLOWED_HOSTS: any Host header is accepted; list the names clients use');
  }
  // Everything slow comes before the mesh is restored: a restored mesh starts every server's
  // detection window (and every pending deadline) at once, and the listener must be up by then.
  const contract = loadContract();
  const lock = settings.store === 'lowdb' ? await lockDataDir(settings.dataDir, {
    // Another process may take an unrenewed lock: stop writing at once rather than share the file.
    onCompromised: (error) => {
      log.error('lost the data directory lock; stopping so that two processes never write one file', { error });
      process.exit(1);
    },
  }) : null;
  const time = processTimeSources;
  const clock: Clock = settings.clock === 'manual' ? new ManualClock(0) : monotonicClock(time);
  const parts = {
    settings, clock, seed: settings.clock === 'manual' ? 1 : time.wallMs() >>> 0, log, contract,
    wallMs: settings.clock === 'manual' ? undefined : time.wallMs, failStop: failStopper(log), http: httpOptions(settings),
    prepare: violation === null ? undefined : (host: RunningMesh) => violateInvariantAt(host.coordinator, violation.atMs),
  };
  // On etcd, coordinators are replicas: one leads (elected on an etcd lease), the others follow.
  if (settings.store === 'etcd') return startReplica(parts, createServer(serverOptions(settings)), listen);
  let storeEvents: Pick<Observability, 'storeFailed' | 'storeWritten'> | undefined;
  const store: Store = settings.store === 'lowdb'
    ? new LowdbStore({
      dataDir: settings.dataDir, onError: (error) => storeEvents?.storeFailed(error), onWritten: (ms) => storeEvents?.storeWritten(ms),
      legacyRecords: (state) => recordsOfState(state as CoreState), log,
      compaction: { maxLogBytes: settings.logMaxBytes, maxLogRecords: settings.logMaxRecords },
    })
    : new MemoryStore();
  const serving = await serveMesh({ ...parts, store });
  storeEvents = serving.observed;
  const { host, app, observed } = serving;
  const server = createServer(serverOptions(settings), app.callback());
  // Server sessions: WebSocket upgrades of GET /mesh/servers/{id}/session, on the same listener.
  server.on('upgrade', app.sessions.handleUpgrade);
  await listen(server, settings);
  serving.startTicking();
  const ticker = serving.ticker;
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : settings.port;
  const hostPart = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  log.info('mesh coordinator ready', {
    url: `http://${hostPart}:${port}`, clock: settings.clock, store: settings.store,
    dataDir: settings.store === 'lowdb' ? settings.dataDir : null, protectedMode: settings.adminToken === undefined,
    testApi: settings.testApi, alertWebhooks: settings.alertWebhookUrls.length,
    servers: host.coordinator.records().servers.size, regions: host.coordinator.records().regions.size,
  });
  handleSignals({ server, app, ticker, host, lock, log, observed });
}

/**
 * Headers get the request timeout, the body gets it again in the app (a 408 problem); the server's
 * own limit is the backstop for both, checked every second instead of every 30 s.
 */
function serverOptions(settings: Settings): ServerOptions {
  return {
    headersTimeout: settings.requestTimeoutMs,
    requestTimeout: 2 * settings.requestTimeoutMs + 1000,
    connectionsCheckingInterval: 1000,
  };
}

/** The HTTP layer's limits from the settings. A wildcard bind has no one name, so it checks Host only against a list. */
function httpOptions(settings: Settings): HttpOptions {
  const bound = isWildcard(settings.host) ? [] : [settings.host];
  const anyHost = isWildcard(settings.host) && settings.allowedHosts.length === 0;
  return {
    allowedHosts: anyHost ? 'any' : [...bound, ...settings.allowedHosts],
    allowedOrigins: settings.allowedOrigins,
    maxEventSubscribers: settings.maxEventSubscribers,
    bodyTimeoutMs: settings.requestTimeoutMs,
  };
}

/**
 * Fail-stop: an invariant of the core failed in a tick, so its state may be half-updated. Nothing
 * more is decided or written from it: the reason is logged and the process exits with status 70
 * (EX_SOFTWARE), and its supervisor (systemd `Restart=always`, a Kubernetes pod's restart policy)
 * starts it again from the last durable state, as after a crash.
 */
function failStopper(log: Logger): (error: unknown) => void {
  let failing = false;
  return (error) => {
    if (failing) return;
    failing = true;
    log.error('invariant violated in a tick: stopping (fail-stop); the supervisor restarts from the last durable state',
      { decision: 'fail-stop', error });
    void log.flush().finally(() => process.exit(70));
  };
}

function listen(server: Server, settings: Settings): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => resolve());
  });
}

/**
 * SIGTERM/SIGINT: stop the ticker, end the event streams (an open stream would keep its connection,
 * and so the server, alive), stop accepting requests, flush the store, release the lock, exit 0.
 */
function handleSignals(parts: {
  server: Server; app: MeshApp; ticker: Ticker | null; host: RunningMesh; lock: DataDirLock | null; log: Logger;
  observed: Observability;
}): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    parts.log.info('shutting down', { signal });
    parts.ticker?.stop();
    parts.observed.close();
    // Ended streams and sessions (servers reconnect to the next coordinator; closing them is not
    // evidence against anyone) and idle keep-alive connections close cleanly; requests in flight get the time
    // the final flush takes to finish, then whatever is left is cut.
    parts.app.closeStreams();
    parts.server.close();
    parts.server.closeIdleConnections();
    try {
      await parts.host.close();
      parts.server.closeAllConnections();
      await parts.lock?.release();
      parts.log.info('stopped; state flushed');
      await parts.log.flush();
      process.exit(0);
    } catch (error) {
      parts.log.error('shutdown failed to flush the state', { error });
      await parts.log.flush();
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`mesh-coordinator: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

/**
 * One run of the mesh over a store: the core restored from the store's records, its observability,
 * the HTTP app over it and the ticker. A single coordinator opens one at start-up; a replicated one
 * opens one each time it is elected leader and stops it when it steps down (src/ha/).
 */
import { createApp, type MeshApp } from '../api/app.ts';
import type { HttpOptions } from '../api/deps.ts';
import type { Leadership } from '../api/leadership.ts';
import type { Contract } from '../api/openapi.ts';
import type { Clock } from '../mesh/base/ports.ts';
import type { Logger } from './logger.ts';
import { RunningMesh } from './mesh-host.ts';
import { Observability } from './observability.ts';
import type { Settings } from './settings.ts';
import { dataFileProblem } from './store/data-file-schema.ts';
import type { Store } from './store/store.ts';
import { startTicker, type Ticker } from './ticker.ts';

/** What a run of the mesh is built from. */
export interface MeshParts {
  readonly settings: Settings;
  readonly store: Store;
  readonly clock: Clock;
  /** Seed of the core's PRNG. */
  readonly seed: number;
  /** The wall clock watched for steps; absent under the manual clock. */
  readonly wallMs: (() => number) | undefined;
  readonly log: Logger;
  readonly contract: Contract;
  readonly http: HttpOptions;
  readonly failStop: (error: unknown) => void;
  /** The election, for a replicated coordinator: the app answers only while it leads. */
  readonly leadership?: Leadership;
  /** Called with the host before anything runs on it (test hooks). */
  readonly prepare?: (host: RunningMesh) => void;
}

/** A running mesh and what serves it. */
export interface MeshServing {
  readonly host: RunningMesh;
  readonly app: MeshApp;
  readonly observed: Observability;
  /** The ticker once started (null under the manual clock, or before `startTicking`). */
  readonly ticker: Ticker | null;
  /** Starts the ticker (system clock only); a single coordinator does it once it listens. */
  startTicking(): void;
}

/** Restores the mesh from the store and starts serving it. */
export async function serveMesh(parts: MeshParts): Promise<MeshServing> {
  const { settings, log } = parts;
  const observed = new Observability(settings, log);
  const host = await RunningMesh.open({
    config: settings.mesh, clock: parts.clock, store: parts.store, seed: parts.seed, log,
    wallMs: parts.wallMs, failStop: parts.failStop, checkState: dataFileProblem,
    readyDuringGrace: parts.leadership !== undefined,
  });
  parts.prepare?.(host);
  observed.attach(host);
  const app = createApp({
    host, adminToken: settings.adminToken, playerTicketSecret: settings.playerTicketSecret, contract: parts.contract,
    logError: (error, context) => log.error('request failed', { error, ...context }),
    observeRequest: observed.observeRequest, testApi: settings.testApi, metrics: observed.metrics,
    observeSessionHeartbeat: () => observed.metrics.sessionHeartbeat(),
    logDebug: (message, context) => log.debug(message, context),
    http: parts.http, leadership: parts.leadership,
  });
  observed.metrics.countSessions(() => app.sessions.hub.size);
  // A tick that throws has already called failStop through the host. A replicated coordinator
  // ticks only while it leads: after a pause its timers may fire before it has noticed the loss.
  const leads = parts.leadership === undefined ? () => true : () => parts.leadership?.view().role === 'leader';
  let ticker: Ticker | null = null;
  return {
    host, app, observed,
    get ticker() { return ticker; },
    startTicking() {
      if (settings.clock !== 'system' || ticker !== null) return;
      ticker = startTicker(() => { if (leads()) host.tick(); }, settings.tickMs, () => {});
    },
  };
}

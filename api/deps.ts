/**
 * What the HTTP layer needs from the running service. `src/` builds it (real clock or manual clock,
 * lowdb or memory store); tests build it the same way, so the API is always exercised against the
 * real core.
 */
import type { Coordinator } from '../mesh/core/coordinator.ts';
import type { HeartbeatInput, HeartbeatReply } from '../mesh/core/heartbeat.ts';
import type { MeshEvent } from '../mesh/effects/events.ts';
import type { FaultSpec, InjectedFault } from '../mesh/faults/faults.ts';
import type { TestMeshSpec } from '../mesh/simulation/setup.ts';
import type { RegionId, Result, ServerId } from '../mesh/base/types.ts';
import type { Leadership } from './leadership.ts';
import type { Contract } from './openapi.ts';
import type { RequestObserver } from './request-observer.ts';

/** The coordinator as the HTTP layer reads it: queries only, so that every change goes through a command. */
export type CoreQueries = Pick<Coordinator, 'config' | 'status' | 'servers' | 'server' | 'serverRecord' | 'regions' |
  'replication' | 'route' | 'metrics' | 'listAlerts' | 'getSnapshot' | 'pendingActions' | 'records' | 'peersOf' | 'assignment' |
  'takeTouchedRegions'>;

/** A core command, run at the host's current time. */
export type Command<T> = (core: Coordinator, nowMs: number) => T;

/** A durable command's changes could not be written; they are in effect in memory only. */
export class NotDurableError extends Error {
  /** @param value what the command returned */
  constructor(readonly value: unknown) {
    super('the command\'s changes could not be written');
  }
}

/**
 * The running mesh as the HTTP layer drives it. Every command publishes its own effects (events to
 * subscribers, a write to the store) before it returns; the durable ones also wait for the write.
 */
export interface MeshHost {
  readonly coordinator: CoreQueries;
  /** Which clock drives the core. */
  readonly clockKind: 'system' | 'manual';
  /** Identifies this run of the service (new at every start); qualifies event ids. */
  readonly bootId: string;
  /** Current time of that clock in ms. */
  now(): number;
  /** Runs a command; its effects are published (and a write started) before it returns. */
  run<T>(command: Command<T>): T;
  /**
   * Runs a command like `run`; unless it was refused (a `Result` that is not ok), waits until its
   * changes are on disk. Rejects with {@link NotDurableError} when the write fails.
   */
  runDurably<T>(command: Command<T>): Promise<T>;
  /** Applies a heartbeat through the fault layer (which may drop it) and publishes its effects. */
  heartbeat(id: ServerId, input: HeartbeatInput): Result<HeartbeatReply, 'unknown_server' | 'server_left' | 'heartbeat_dropped'>;
  /** Creates the simulated test mesh, durably; refused while one exists. */
  setupTest(spec: TestMeshSpec): Promise<Result<{ regions: RegionId[]; servers: ServerId[] }, 'test_mesh_exists' | 'no_capacity' | 'duplicate_region'>>;
  /** Removes the simulated test mesh, its history and metrics, durably. */
  resetTest(): Promise<{ servers: number; regions: number }>;
  /** Injects a fault (carried out by the fleet for simulated servers) and publishes its effects. */
  injectFailure(spec: FaultSpec): Result<InjectedFault>;
  /** Manual clock only: advances virtual time tick by tick and resolves with the new time. */
  advance(ms: number): Promise<number>;
  /** Subscribes to the core's events; returns the unsubscribe function. */
  subscribe(listener: (event: MeshEvent) => void): () => void;
  /**
   * Subscribes to "the core may have changed": told after a command or tick handed on effects and
   * after a write became durable (which announces held promotions). Returns the unsubscribe function.
   */
  subscribeChanges(listener: () => void): () => void;
  /**
   * Whether the service can do its job now: false, with the reason, while the last write of the
   * state failed (nothing new can be made durable) or the service is shutting down.
   */
  readiness(): { ready: true } | { ready: false; reason: string };
}

/** Limits and allow-lists of the HTTP layer; every field has a safe default. */
export interface HttpOptions {
  /**
   * Host names requests may be addressed to besides loopback names (default none); `'any'` turns
   * the Host check off. See api/request-guard.ts.
   */
  readonly allowedHosts?: readonly string[] | 'any';
  /** Origins whose pages may change state and get CORS answers (default none). */
  readonly allowedOrigins?: readonly string[];
  /** Most clients of `GET /mesh/events` at once; one more gets 429 (default 100). */
  readonly maxEventSubscribers?: number;
  /** Longest time a request body may take to arrive once its headers are in (default 10 s). */
  readonly bodyTimeoutMs?: number;
}

/** Dependencies of `createApp`. */
export interface AppDeps {
  readonly host: MeshHost;
  /** Admin bearer token; undefined means protected mode (loopback callers only). */
  readonly adminToken: string | undefined;
  /**
   * `MESH_PLAYER_TICKET_SECRET`: when set, submitting an action needs a player ticket for the
   * action's player (api/player-ticket.ts); undefined leaves actions open.
   */
  readonly playerTicketSecret?: string | undefined;
  /** Where unexpected errors are logged (never sent to clients). */
  readonly logError: (error: unknown, context?: Record<string, unknown>) => void;
  /** Where what clients did wrong at the connection level is logged (aborted bodies); debug level. */
  readonly logDebug?: (message: string, context?: Record<string, unknown>) => void;
  /** Limits and allow-lists; defaults as documented on {@link HttpOptions}. */
  readonly http?: HttpOptions;
  /** Path of openapi.yaml; defaults to the one at the repository root. */
  readonly openapiPath?: string;
  /**
   * The contract, already loaded. Compiling it takes most of a second; `src/main.ts` loads it before
   * restoring the mesh so that the restart's detection window is not spent compiling validators.
   */
  readonly contract?: Contract;
  /** Told about every answered request (HTTP metrics, refusal logs); nothing is reported without it. */
  readonly observeRequest?: RequestObserver;
  /** Told about every heartbeat a session answered (the HTTP ones come through `observeRequest`). */
  readonly observeSessionHeartbeat?: () => void;
  /**
   * Whether the test API (setup_test, reset, simulate_failure, advance_time) is mounted; default
   * true. Off, those paths answer 404 with a problem saying so (`--test-api off`).
   */
  readonly testApi?: boolean;
  /**
   * Most bytes waiting to be sent on one server session before it is closed as not reading (code
   * 4001); default 1 MiB (api/session/session-hub.ts).
   */
  readonly sessionMaxQueuedBytes?: number;
  /** `GET /metrics`: Prometheus text exposition; the path answers 404 without it. */
  readonly metrics?: MetricsSource;
  /**
   * The election of a replicated coordinator (api/leadership.ts): requests pass only while it
   * leads, and the probes and status name the role and the leader. Absent: a standalone coordinator.
   */
  readonly leadership?: Leadership;
}

/** Where `GET /metrics` reads from (prom-client's registry, built in src/). */
export interface MetricsSource {
  readonly contentType: string;
  render(): Promise<string>;
}

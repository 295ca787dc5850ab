/**
 * What the HTTP layer needs from the running service. `src/` builds it (real clock or manual clock,
 * lowdb or memory store); tests build it the same way, so the API is always exercised against the
 * real core.
 */
import type { Coordinator } from '../mesh/coordinator.ts';
import type { MeshEvent } from '../mesh/events.ts';
import type { FaultSpec, InjectedFault } from '../mesh/faults.ts';
import type { TestMeshSpec } from '../mesh/simulation/setup.ts';
import type { RegionId, Result, ServerId } from '../mesh/types.ts';
import type { Contract } from './openapi.ts';

/** The running mesh as the HTTP layer drives it. */
export interface MeshHost {
  readonly coordinator: Coordinator;
  /** Which clock drives the core. */
  readonly clockKind: 'system' | 'manual';
  /** Current time of that clock in ms. */
  now(): number;
  /**
   * Hands the core's pending effects to persistence and subscribers. Call after every command.
   * Returns the change sequence number that covers everything done so far.
   */
  flush(): number;
  /** Resolves once every change up to `seq` is on disk; rejects if the write failed. */
  durable(seq: number): Promise<void>;
  /** Creates the simulated test mesh; refused while one exists. */
  setupTest(spec: TestMeshSpec): Result<{ regions: RegionId[]; servers: ServerId[] }, 'test_mesh_exists' | 'no_capacity' | 'duplicate_region'>;
  /** Removes the simulated test mesh, its history and metrics. */
  resetTest(): { servers: number; regions: number };
  /** Injects a fault (carried out by the fleet for simulated servers). */
  injectFailure(spec: FaultSpec): Result<InjectedFault>;
  /** Manual clock only: advances virtual time tick by tick and resolves with the new time. */
  advance(ms: number): Promise<number>;
  /** Subscribes to the core's events; returns the unsubscribe function. */
  subscribe(listener: (event: MeshEvent) => void): () => void;
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
}

/**
 * Plain-data vocabulary of the mesh core. Everything here is serialisable JSON so that it can be
 * persisted, sent over HTTP and compared in tests without translation.
 */

/** Identifier of a game server. Branded so that it cannot be confused with a region id. */
export type ServerId = string & { readonly __brand: 'ServerId' };
/** Identifier of a region of the game world. */
export type RegionId = string & { readonly __brand: 'RegionId' };
/** Identifier of a player; opaque to the coordinator. */
export type PlayerId = string;

/** Brands a string as a server id (the caller vouches for its shape). */
export const serverId = (raw: string): ServerId => raw as ServerId;
/** Brands a string as a region id (the caller vouches for its shape). */
export const regionId = (raw: string): RegionId => raw as RegionId;

/**
 * Life cycle of a server as the coordinator believes it:
 * - `alive`: heartbeats arrive on time.
 * - `suspect`: heartbeats are late; nothing is moved yet.
 * - `failed`: declared dead; its regions have been failed over.
 * - `draining`: leaving gracefully; its regions are handed off without a failure.
 * - `left`: gone for good after a drain.
 */
export type ServerStatus = 'alive' | 'suspect' | 'failed' | 'draining' | 'left';

/**
 * Phase of a region's replication state machine:
 * - `active`: an acknowledged primary and the full number of backups.
 * - `failing_over`: a backup was promoted and has not acknowledged yet (actions are buffered).
 * - `under_replicated`: an acknowledged primary but fewer backups than configured.
 * - `unavailable`: no primary and no backup to promote.
 */
export type RegionPhase = 'active' | 'failing_over' | 'under_replicated' | 'unavailable';

/** Role of one server for one region. */
export type Role = 'primary' | 'backup';

/** Degraded-mode level of the whole mesh, from full fidelity to critical regions only. */
export type DegradedLevel = 'NORMAL' | 'LIGHT' | 'MODERATE' | 'SEVERE';

/** Severity of an administrator alert. */
export type AlertSeverity = 'info' | 'warning' | 'critical';

/** How an injected fault behaves. */
export type FaultMode = 'crash' | 'partition' | 'slow' | 'flap';

/** Typed expected failure of a command, mapped to a problem document at the HTTP edge. */
export interface Rejection<C extends string = string> {
  readonly ok: false;
  /** Machine-readable reason, stable across versions. */
  readonly code: C;
  /** One human sentence saying what was wrong and, where possible, what to do. */
  readonly detail: string;
  /** For `buffer_full`: how long the caller should wait before retrying. */
  readonly retryAfterMs?: number;
  /** Extra machine-readable facts (for example the current primary of a healthy region). */
  readonly data?: Record<string, unknown>;
}

/** Successful result of a command. */
export interface Accepted<T> {
  readonly ok: true;
  readonly value: T;
}

/** Result of a command that can fail in an expected way. */
export type Result<T, C extends string = string> = Accepted<T> | Rejection<C>;

/** Builds a successful result. */
export const ok = <T>(value: T): Accepted<T> => ({ ok: true, value });

/** Builds an expected failure. */
export const reject = <C extends string>(
  code: C,
  detail: string,
  extra: { retryAfterMs?: number; data?: Record<string, unknown> } = {},
): Rejection<C> => ({ ok: false, code, detail, ...extra });

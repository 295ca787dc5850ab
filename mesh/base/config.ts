/**
 * Every timing constant and bound of the core, named with its unit and documented with why.
 * One `defaultMeshConfig` (production) and one `testMeshConfig` (manual clock and simulations);
 * `validateMeshConfig` runs once at start-up and names every bad field.
 */
import type { DegradedLevel } from './types.ts';

/** Thresholds for the three degraded levels above NORMAL; a level applies when any metric reaches it. */
export interface LevelThresholds {
  readonly LIGHT: number;
  readonly MODERATE: number;
  readonly SEVERE: number;
}

/** Configuration of the mesh core. */
export interface MeshConfig {
  /** How often every server sends a heartbeat (seed: 1 s). Drives phi-accrual's expected interval. */
  readonly heartbeatIntervalMs: number;
  /**
   * Interval a heartbeat reply asks for while the server has something pending: a promotion to
   * acknowledge, a new backup to confirm, or a suspect or missing primary in one of its regions
   * (whose silence it can confirm). Incidents then resolve in fractions of a second instead of
   * waiting for the next regular heartbeat; in steady state the rate stays at one per interval.
   */
  readonly expeditedHeartbeatIntervalMs: number;
  /**
   * Most heartbeats per second that replies may ask for beyond the regular interval, all servers
   * together (mesh/detection/heartbeat-cadence.ts). A mass failure makes most survivors want sooner
   * heartbeats; past this budget their interval is stretched evenly instead of multiplying the
   * coordinator's load. A single failure stays far below it. 0 never asks for sooner heartbeats.
   */
  readonly expeditedHeartbeatBudget: number;
  /** How often `src/` calls `onTick`; bounds how late a decision can be taken after its evidence. */
  readonly tickIntervalMs: number;
  /**
   * Phi at which a silent server becomes `suspect` (Hayashibara et al.). Akka and Cassandra act on
   * phi 8 alone; here suspicion never moves a region by itself, it only opens the door to a second,
   * independent signal (a replication peer confirming the silence), so a lower threshold is safe:
   * phi 3 means a 1-in-1,000 chance that the heartbeat is merely late.
   */
  readonly phiSuspectThreshold: number;
  /** How many recent heartbeat inter-arrival intervals phi-accrual keeps per server. */
  readonly phiWindowSize: number;
  /**
   * Floor of the inter-arrival standard deviation. Heartbeats on a quiet LAN are so regular that
   * phi would otherwise explode a few milliseconds after the expected arrival.
   */
  readonly phiMinStdDeviationMs: number;
  /** Extra pause tolerated on top of the mean interval before phi starts to climb (GC, scheduling). */
  readonly phiAcceptablePauseMs: number;
  /**
   * A replication peer that has not heard a server for this long reports it silent. Replication
   * streams flow far more often than heartbeats (every 50-100 ms), so 500 ms is many lost messages.
   */
  readonly peerSilenceMs: number;
  /**
   * How long a replication peer must not have heard a server, since before that server's session
   * closed without a `leave`, for its report to confirm the crash the closed session suggests. A
   * closed session is a first, independent signal (a process that dies closes its sockets), so the
   * peer's word needs only outlast the replication stream's rhythm: two 50 ms intervals, since peers
   * report a peer heard within one interval as just heard. A server its peers still hear is never
   * confirmed this way, however its session ended.
   */
  readonly sessionPeerSilenceMs: number;
  /**
   * Length of the primary lease a renewal over the session grants, counted by the server from the
   * send time of its message the renewal answers. It bounds how fast a crashed primary can be
   * replaced (the coordinator waits for it to lapse, plus the drift margin), so it is short; the
   * renewal cadence below keeps a healthy primary's lease from lapsing between renewals. Every
   * reply and push over a session grants this length, never `primaryLeaseMs`.
   */
  readonly sessionLeaseMs: number;
  /**
   * How often a server with a session asks for its lease to be renewed: a third of the lease, so
   * that two renewals in a row can be lost or late before a healthy primary stops serving. Sent
   * to the server with every renewal (`renew_in_ms`).
   */
  readonly sessionLeaseRenewalIntervalMs: number;
  /**
   * Failure is declared after at most this much silence even without any peer evidence (seed: 5 s):
   * at the last tick before the silence reaches it, so the bound holds with ticks 100 ms apart. This
   * is the bound for servers that report no replication peers; with peers, confirmation is far faster.
   */
  readonly failureTimeoutMs: number;
  /**
   * A gap between two ticks longer than this means the coordinator itself stalled (GC pause,
   * suspended VM, restart): it enters TILT and declares no failure until it has observed again.
   */
  readonly tiltThresholdMs: number;
  /** How long TILT lasts after the stall: one heartbeat interval plus the worst delivery delay. */
  readonly tiltRecoveryMs: number;
  /**
   * A difference this large between how far the wall clock and the monotonic clock moved from one
   * tick to the next is a wall-clock step (NTP, a VM restored or resumed), which enters TILT. The
   * core runs on the monotonic clock, so a step cannot stop its ticks; but a suspended VM's
   * monotonic clock does not count the suspension, and the step is then the only sign of a stall.
   */
  readonly clockStepThresholdMs: number;
  /**
   * The lease every heartbeat reply grants a primary (`lease_ms`): it serves players' actions only
   * until `lease_ms` after it SENT the heartbeat the reply answers, and stops when no reply renewed
   * it. Two heartbeat intervals, so that a healthy primary's lease outlives one lost heartbeat
   * with an ordinary delay. It bounds how fast a crashed primary can be replaced, since no backup
   * is promoted before the old lease plus `leaseDriftMarginMs` has run out on the coordinator.
   */
  readonly primaryLeaseMs: number;
  /**
   * Added to a lease of `primaryLeaseMs` before the coordinator considers it over: covers a server
   * clock that runs slower than the coordinator's over one lease (crystal drift is about 1e-4; this
   * allows 5%). Drift is a rate, so a lease of another length gets the same share:
   * `lease x leaseDriftMarginMs / primaryLeaseMs` (15 ms on the default 300 ms session lease).
   */
  readonly leaseDriftMarginMs: number;
  /** Number of backups every region should have (seed: 2). */
  readonly backupsPerRegion: number;
  /**
   * How long a promoted backup has to acknowledge (its next heartbeat carrying the new epoch) before
   * the promotion is aborted and the next candidate is tried.
   */
  readonly promotionAckTimeoutMs: number;
  /** How long a newly assigned backup has to confirm it holds the region before it is replaced. */
  readonly backupSyncTimeoutMs: number;
  /**
   * Most state transitions (pending promotions and backup syncs) one server takes at once; the rest
   * wait, in priority order (Apache Helix's throttling). Keeps a mass failure from swamping a server.
   */
  readonly maxTransitionsPerServer: number;
  /**
   * Most replacement backups assigned in one tick, mesh-wide; the rest wait, in priority order, for
   * the next ticks (as HDFS bounds the re-replication work of each pass). Promotions are never
   * held back by it, but they come first and use it up: a tick that promotes N regions assigns
   * at most this minus N backups, so the tick that fails over a mass failure assigns none. Each
   * assignment starts a copy of a region's state, so this bounds both the re-replication storm
   * after a mass failure and the coordinator's work per tick.
   */
  readonly maxBackupAssignmentsPerTick: number;
  /**
   * Most servers declared failed in one tick that get an alert each (`server-failed:<server>`).
   * When a tick declares more, one `mass-server-failure` alert covers all of them instead: a zone
   * outage or a 30% crash would otherwise open thousands of alerts at once, an alert storm that no
   * operator reads (Alertmanager groups alerts for the same reason). The servers themselves, their
   * `server_failure_detected` events and their failovers are the same either way.
   */
  readonly serverFailureAlertsPerTick: number;
  /**
   * Most planned primary moves (rebalancing, mesh/failover/rebalance.ts) in flight at once, a count;
   * 0 turns rebalancing off. Each move copies a region to a new server (unless it is already a
   * backup there) and pauses the region's play for one hand-off (players' actions are buffered for
   * about a heartbeat round trip and a write), so a few at a time spread that cost out: the mesh
   * drifts back to balance over minutes after a heal instead of pausing a zone's worth of regions
   * at once, and never competes with a failover (moves wait while any region fails over).
   */
  readonly maxRebalanceMoves: number;
  /** Sliding window over which failures are counted for the degraded mode (seed: 60 s). */
  readonly failureWindowMs: number;
  /** Failures within the window that raise each level (seed: 3 per minute). */
  readonly failureCountThresholds: LevelThresholds;
  /** Share of servers failed that raises each level (seed: 30%). */
  readonly failedServerShareThresholds: LevelThresholds;
  /** Share of regions under-replicated or unavailable that raises each level. */
  readonly impairedRegionShareThresholds: LevelThresholds;
  /** Time the mesh must spend below its level before stepping down one level (hysteresis). */
  readonly degradedCooldownMs: number;
  /** Most buffered actions per player while a region has no primary (seed: 100). */
  readonly actionBufferMaxPerPlayer: number;
  /** Age after which a buffered action is reported expired instead of replayed (seed: 10 s). */
  readonly actionBufferMaxAgeMs: number;
  /** Largest player snapshot kept, in bytes of its JSON text. */
  readonly snapshotMaxBytes: number;
  /** Most player snapshots kept per region; the least recently posted goes first. */
  readonly snapshotsMaxPerRegion: number;
  /** Most finished failovers kept in history (the metrics aggregate all of them). */
  readonly failoverHistoryLimit: number;
  /** Most resolved alerts kept; open alerts are never dropped. */
  readonly resolvedAlertsLimit: number;
}

/** Production defaults: the seed's values where it gives one, tighter detection otherwise. */
export const defaultMeshConfig: MeshConfig = Object.freeze({
  heartbeatIntervalMs: 1000,
  expeditedHeartbeatIntervalMs: 200,
  expeditedHeartbeatBudget: 2000,
  tickIntervalMs: 100,
  phiSuspectThreshold: 3,
  phiWindowSize: 100,
  phiMinStdDeviationMs: 100,
  phiAcceptablePauseMs: 100,
  peerSilenceMs: 500,
  sessionPeerSilenceMs: 100,
  sessionLeaseMs: 300,
  sessionLeaseRenewalIntervalMs: 100,
  failureTimeoutMs: 5000,
  tiltThresholdMs: 2000,
  tiltRecoveryMs: 1500,
  clockStepThresholdMs: 1000,
  primaryLeaseMs: 2000,
  leaseDriftMarginMs: 100,
  backupsPerRegion: 2,
  promotionAckTimeoutMs: 3000,
  backupSyncTimeoutMs: 10_000,
  maxTransitionsPerServer: 32,
  maxBackupAssignmentsPerTick: 500,
  serverFailureAlertsPerTick: 10,
  maxRebalanceMoves: 8,
  failureWindowMs: 60_000,
  failureCountThresholds: Object.freeze({ LIGHT: 3, MODERATE: 6, SEVERE: 12 }),
  failedServerShareThresholds: Object.freeze({ LIGHT: 0.1, MODERATE: 0.2, SEVERE: 0.3 }),
  impairedRegionShareThresholds: Object.freeze({ LIGHT: 0.05, MODERATE: 0.15, SEVERE: 0.3 }),
  degradedCooldownMs: 30_000,
  actionBufferMaxPerPlayer: 100,
  actionBufferMaxAgeMs: 10_000,
  snapshotMaxBytes: 64 * 1024,
  snapshotsMaxPerRegion: 10_000,
  failoverHistoryLimit: 1000,
  resolvedAlertsLimit: 1000,
});

/**
 * Configuration for the manual clock and simulations: the production timings (the properties prove
 * those), with a shorter degraded cool-down so that step-down is observable in short scenarios.
 */
export const testMeshConfig: MeshConfig = Object.freeze({
  ...defaultMeshConfig,
  degradedCooldownMs: 10_000,
});

/** Degraded levels in increasing order of severity. */
export const degradedLevels: readonly DegradedLevel[] = ['NORMAL', 'LIGHT', 'MODERATE', 'SEVERE'];

const positiveIntegers: readonly (keyof MeshConfig)[] = [
  'heartbeatIntervalMs', 'expeditedHeartbeatIntervalMs', 'tickIntervalMs', 'phiWindowSize', 'peerSilenceMs', 'failureTimeoutMs',
  'sessionPeerSilenceMs', 'sessionLeaseMs', 'sessionLeaseRenewalIntervalMs',
  'tiltThresholdMs', 'tiltRecoveryMs', 'clockStepThresholdMs', 'primaryLeaseMs', 'promotionAckTimeoutMs', 'backupSyncTimeoutMs',
  'maxTransitionsPerServer', 'maxBackupAssignmentsPerTick', 'serverFailureAlertsPerTick', 'failureWindowMs',
  'actionBufferMaxPerPlayer', 'actionBufferMaxAgeMs', 'snapshotMaxBytes', 'snapshotsMaxPerRegion', 'failoverHistoryLimit',
  'resolvedAlertsLimit',
];

/**
 * Checks a configuration once at start-up. Returns one sentence per problem; an empty list means
 * the configuration is usable.
 */
export function validateMeshConfig(config: MeshConfig): string[] {
  const errors: string[] = [];
  for (const key of positiveIntegers) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      errors.push(`${key} must be a positive integer, got ${String(value)}`);
    }
  }
  if (!(Number.isInteger(config.backupsPerRegion) && config.backupsPerRegion >= 0)) {
    errors.push(`backupsPerRegion must be a number >= 0 and whole (a count of backups), got ${String(config.backupsPerRegion)}`);
  }
  if (!(Number.isInteger(config.maxRebalanceMoves) && config.maxRebalanceMoves >= 0)) {
    errors.push(`maxRebalanceMoves must be a whole number >= 0 (0 turns rebalancing off), got ${String(config.maxRebalanceMoves)}`);
  }
  const nonNegative = ['phiMinStdDeviationMs', 'phiAcceptablePauseMs', 'degradedCooldownMs', 'leaseDriftMarginMs', 'expeditedHeartbeatBudget'] as const;
  for (const key of nonNegative) {
    if (!(Number.isFinite(config[key]) && config[key] >= 0)) errors.push(`${key} must be a number >= 0, got ${String(config[key])}`);
  }
  if (!(config.phiSuspectThreshold > 0)) errors.push('phiSuspectThreshold must be > 0');
  if (config.failureTimeoutMs <= config.heartbeatIntervalMs) {
    errors.push('failureTimeoutMs must exceed heartbeatIntervalMs, or every late heartbeat is a failure');
  }
  if (config.expeditedHeartbeatIntervalMs > config.heartbeatIntervalMs) {
    errors.push('expeditedHeartbeatIntervalMs must not exceed heartbeatIntervalMs');
  }
  if (config.sessionLeaseMs > config.primaryLeaseMs) {
    errors.push('sessionLeaseMs must not exceed primaryLeaseMs (the restart grace waits out primaryLeaseMs, the longest lease a server may hold)');
  }
  if (config.sessionLeaseRenewalIntervalMs >= config.sessionLeaseMs) {
    errors.push('sessionLeaseRenewalIntervalMs must be shorter than sessionLeaseMs, or a healthy primary loses its lease between renewals');
  }
  if (config.tiltThresholdMs <= config.tickIntervalMs) {
    errors.push('tiltThresholdMs must exceed tickIntervalMs, or every tick is a stall');
  }
  if (config.primaryLeaseMs <= config.heartbeatIntervalMs) {
    errors.push('primaryLeaseMs must exceed heartbeatIntervalMs, or every primary loses its lease between two heartbeats');
  }
  if (config.leaseDriftMarginMs > config.primaryLeaseMs) {
    errors.push('leaseDriftMarginMs must not exceed primaryLeaseMs (a margin of more than 100% is a mistake)');
  }
  errors.push(...checkThresholds('failureCountThresholds', config.failureCountThresholds, Infinity));
  errors.push(...checkThresholds('failedServerShareThresholds', config.failedServerShareThresholds, 1));
  errors.push(...checkThresholds('impairedRegionShareThresholds', config.impairedRegionShareThresholds, 1));
  return errors;
}

function checkThresholds(name: string, t: LevelThresholds, max: number): string[] {
  const ordered = t.LIGHT > 0 && t.LIGHT <= t.MODERATE && t.MODERATE <= t.SEVERE && t.SEVERE <= max;
  return ordered ? [] : [`${name} must satisfy 0 < LIGHT <= MODERATE <= SEVERE <= ${max}`];
}

/**
 * Servers, regions and who hosts what: the coordinator's picture of the mesh. Plain mutable records
 * owned by the coordinator, plus the small queries everyone needs. Derived indexes (which regions a
 * server hosts) are rebuilt from the records, never persisted.
 */
import type { ServerDetector } from '../detection/failure-detector.ts';
import type { RegionId, RegionPhase, Role, ServerId, ServerStatus } from '../base/types.ts';
import { ChangeSet } from '../base/change-set.ts';

/** Everything the coordinator knows about one server. */
export interface ServerRecord {
  readonly id: ServerId;
  readonly address: string;
  readonly zone: string;
  /** Most regions (primary or backup) this server may host. */
  readonly capacity: number;
  readonly name: string | null;
  /** True for servers of the simulated test fleet. */
  readonly simulated: boolean;
  /** Hash of the server's bearer token (the API's business; opaque here). */
  readonly credentialHash: string | null;
  status: ServerStatus;
  statusSinceMs: number;
  readonly registeredAtMs: number;
  /** Players connected, as last reported. */
  players: number;
  /** Boot identifier last reported; a new one means the process restarted. */
  incarnation: string | null;
  /** Sequence number of the last applied heartbeat of this incarnation, if the server sends one. */
  lastSeq: number | null;
  /**
   * Regions this server hosts in any role: the topology's index, kept by {@link Topology} and never
   * persisted. It sits on the record so that the hot paths holding a server (every heartbeat reply,
   * every failed server, every placement) reach its regions without a lookup by id.
   */
  readonly hosted: Set<RegionRecord>;
  /**
   * Failure detection for this server (never persisted: after a restart every server is watched
   * afresh for one full detection window). Held here so that every tick's judgement of every
   * server reaches it without a lookup.
   */
  readonly detector: ServerDetector;
}

/** Replication state of one region. */
export interface RegionRecord {
  readonly id: RegionId;
  /** True for regions of the simulated test mesh (removed by a reset). */
  readonly simulated: boolean;
  /** How many backups this region should have (`backupsPerRegion` unless set at creation). */
  readonly backupTarget: number;
  critical: boolean;
  players: number;
  /** Fencing token: incremented by every promotion, never decreases. */
  epoch: number;
  /** Highest epoch already durable and therefore shown to servers and players. */
  announcedEpoch: number;
  phase: RegionPhase;
  phaseSinceMs: number;
  primary: ServerId | null;
  /** False between a promotion and the new primary's first heartbeat carrying the new epoch. */
  primaryAcked: boolean;
  /** Deadline of the current phase's pending step (promotion ack), or null. */
  deadlineMs: number | null;
  /** Backups in assignment order; `syncing` ones have not confirmed yet. */
  backups: ServerId[];
  /** Backup id -> deadline by which it must confirm it holds the region. */
  readonly syncing: Map<ServerId, number>;
  /**
   * Backup id -> the primary's `applied_seq` when the backup was assigned. A new backup is
   * confirmed only once it reports at least that much state: its role alone proves nothing, and a
   * backup whose primary died before it finished copying must never be promoted.
   */
  readonly syncTarget: Map<ServerId, number>;
  /**
   * Replicated progress per replica, as reported by heartbeats. Always read by replica: a server
   * that left the region may keep its entry until {@link Topology.forgetDeparted} drops it, and one
   * that joins again starts without it.
   */
  readonly appliedSeq: Map<ServerId, number>;
  /** Failover in progress, if any (id in the failover history). */
  failoverId: string | null;
  lastFailoverId: string | null;
  /** The primary that was lost and not yet replaced (feeds the failover record). */
  lostPrimary: { serverId: ServerId; failedAtMs: number; detectedAtMs: number } | null;
  /** Servers that held the region when it became unavailable; any of them may bring it back. */
  formerReplicas: ServerId[];
  readonly createdAtMs: number;
}

/**
 * The mesh's servers and regions with a hosted-regions index. The index holds the region records
 * themselves, so that walking a server's regions needs no lookup by id; a registered server's set
 * is its record's `hosted`. A region may name a server that is not registered (yet); its set is
 * kept here and taken over by the record when the server registers.
 */
export class Topology {
  readonly servers = new Map<ServerId, ServerRecord>();
  readonly regions = new Map<RegionId, RegionRecord>();
  /**
   * Servers and regions whose persisted fields may have changed since the core last handed out its
   * change records (mesh/core/change-records.ts). Every method below that changes a record notes it
   * here; code that changes a record's fields directly notes it itself. Changed regions are read by
   * the session pushes too (`takeForViews`).
   */
  readonly changedServers = new Set<ServerId>();
  readonly changedRegions = new ChangeSet<RegionId>();
  private readonly hosted = new Map<ServerId, Set<RegionRecord>>();

  addServer(server: ServerRecord): void {
    this.servers.set(server.id, server);
    this.changedServers.add(server.id);
    const earlier = this.hosted.get(server.id);
    if (earlier !== undefined && earlier !== server.hosted) for (const region of earlier) server.hosted.add(region);
    this.hosted.set(server.id, server.hosted);
  }

  addRegion(region: RegionRecord): void {
    this.regions.set(region.id, region);
    this.changedRegions.add(region.id);
    for (const id of replicasOf(region)) this.hostedSet(id).add(region);
  }

  removeRegion(id: RegionId): void {
    const region = this.regions.get(id);
    if (!region) return;
    for (const server of replicasOf(region)) this.hosted.get(server)?.delete(region);
    this.regions.delete(id);
    this.changedRegions.add(id);
  }

  /** Removes a server's record (it must host nothing). */
  removeServer(id: ServerId): void {
    this.servers.delete(id);
    this.changedServers.add(id);
  }

  /** Regions a server hosts in any role. */
  regionsOf(id: ServerId): ReadonlySet<RegionRecord> {
    return this.hosted.get(id) ?? new Set();
  }

  /** Number of regions a server hosts. */
  hostedCount(id: ServerId): number {
    return this.hosted.get(id)?.size ?? 0;
  }

  /** Role of a server for a region, or null. */
  roleOf(region: RegionRecord, id: ServerId): Role | null {
    if (region.primary === id) return 'primary';
    return region.backups.includes(id) ? 'backup' : null;
  }

  setPrimary(region: RegionRecord, id: ServerId | null): void {
    this.releasePrimary(region);
    region.primary = id;
    this.changedRegions.add(region.id);
    if (id !== null) this.hostedSet(id).add(region);
  }

  addBackup(region: RegionRecord, id: ServerId, syncDeadlineMs: number | null, syncTarget = 0): void {
    region.backups.push(id);
    this.changedRegions.add(region.id);
    // What a server held in an earlier stint says nothing about what it holds now.
    region.appliedSeq.delete(id);
    if (syncDeadlineMs !== null) {
      region.syncing.set(id, syncDeadlineMs);
      region.syncTarget.set(id, syncTarget);
    }
    this.hostedSet(id).add(region);
  }

  removeBackup(region: RegionRecord, id: ServerId): void {
    this.leaveBackups(region, id);
    this.changedRegions.add(region.id);
    if (region.primary !== id) this.hosted.get(id)?.delete(region);
  }

  /**
   * Takes a failed server out of every region it hosts, as primary or backup. `leaving` runs for
   * each region first, while the server still holds its role there. The server's index entry is
   * emptied once at the end: a mass failure's tick removes some 9,000 replicas, and deleting each
   * from the index cost a lookup and a hash-set deletion apiece.
   */
  evict(server: ServerRecord, leaving: (region: RegionRecord) => void): void {
    for (const region of server.hosted) {
      leaving(region);
      this.changedRegions.add(region.id);
      if (region.primary === server.id) region.primary = null;
      else this.leaveBackups(region, server.id);
    }
    server.hosted.clear();
  }

  /**
   * Drops the replicated progress of servers that no longer replicate the region. A server that
   * leaves keeps its entry until then: a mass failure's tick takes thousands of replicas out of
   * their regions and leaves this bookkeeping to the moment the region's next failover or new
   * backup completes.
   */
  forgetDeparted(region: RegionRecord): void {
    this.changedRegions.add(region.id);
    for (const id of region.appliedSeq.keys()) {
      if (id !== region.primary && !region.backups.includes(id)) region.appliedSeq.delete(id);
    }
  }

  /**
   * Makes `id` the region's primary. A backup that is promoted leaves the backup list and keeps
   * hosting the region (its index entry is not touched: a mass failure promotes thousands).
   */
  promote(region: RegionRecord, id: ServerId): void {
    if (!this.leaveBackups(region, id)) {
      this.setPrimary(region, id);
      return;
    }
    this.releasePrimary(region);
    region.primary = id;
    this.changedRegions.add(region.id);
  }

  /** The current primary stops hosting the region, unless it is one of its backups too. */
  private releasePrimary(region: RegionRecord): void {
    if (region.primary !== null && !region.backups.includes(region.primary)) this.hosted.get(region.primary)?.delete(region);
  }

  /** Takes `id` off the region's backup list; true when it was on it. */
  private leaveBackups(region: RegionRecord, id: ServerId): boolean {
    const { backups } = region;
    const at = backups.indexOf(id);
    // Shifted by hand: splice would allocate the removed element's array, thousands per failure.
    if (at !== -1) {
      for (let i = at + 1; i < backups.length; i++) backups[i - 1] = backups[i] as ServerId;
      backups.pop();
    }
    // Most regions have no syncing backup; a failure's tick removes thousands of confirmed ones.
    if (region.syncing.size !== 0) region.syncing.delete(id);
    if (region.syncTarget.size !== 0) region.syncTarget.delete(id);
    return at !== -1;
  }

  /** Servers that replicate with `id`: its regions' primaries and backups, without itself. */
  peersOf(id: ServerId): Set<ServerId> {
    const peers = new Set<ServerId>();
    for (const region of this.regionsOf(id)) {
      for (const other of replicasOf(region)) if (other !== id) peers.add(other);
    }
    return peers;
  }


  private hostedSet(id: ServerId): Set<RegionRecord> {
    let set = this.hosted.get(id);
    if (!set) {
      set = new Set();
      this.hosted.set(id, set);
    }
    return set;
  }
}

/**
 * True when `peer` replicates with `server` in some region. A server hosts a handful of regions, so
 * this compares ids in their replica lists (no lookup); it runs for every peer report.
 */
export function replicatesWith(server: ServerRecord, peer: ServerId): boolean {
  if (peer === server.id) return false;
  for (const region of server.hosted) {
    if (region.primary === peer || region.backups.includes(peer)) return true;
  }
  return false;
}

/** Primary (if any) followed by the backups of a region. */
export function replicasOf(region: RegionRecord): ServerId[] {
  return region.primary === null ? [...region.backups] : [region.primary, ...region.backups];
}

/** Backups that have confirmed they hold the region. */
export function confirmedBackups(region: RegionRecord): ServerId[] {
  return region.backups.filter((b) => !region.syncing.has(b));
}

/** Number of backups that have confirmed they hold the region (no array built). */
export function confirmedBackupCount(region: RegionRecord): number {
  if (region.syncing.size === 0) return region.backups.length;
  let count = 0;
  for (const b of region.backups) if (!region.syncing.has(b)) count += 1;
  return count;
}

/**
 * Regions in recovery priority order: critical regions first, then by players; regions of equal
 * priority keep the order they come in (the sort is stable), which for recovery is the order in
 * which they needed work: first come, first served, and as deterministic as the input. Each
 * region's keys are read once, not at every comparison: a mass failure sorts thousands of regions.
 */
export function byPriority(regions: Iterable<RegionRecord>): RegionRecord[] {
  const keyed = Array.from(regions, (region) => ({ region, score: priorityScore(region) }));
  keyed.sort((a, b) => b.score - a.score);
  return keyed.map((k) => k.region);
}

/** Numeric priority shown to operators: critical regions above any player count. */
export function priorityScore(region: RegionRecord): number {
  return (region.critical ? 1_000_000_000 : 0) + region.players;
}

/** True for statuses in which a server can take new work. */
export function isUsable(status: ServerStatus): boolean {
  return status === 'alive';
}

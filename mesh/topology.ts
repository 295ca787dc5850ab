/**
 * Servers, regions and who hosts what: the coordinator's picture of the mesh. Plain mutable records
 * owned by the coordinator, plus the small queries everyone needs. Derived indexes (which regions a
 * server hosts) are rebuilt from the records, never persisted.
 */
import type { RegionId, RegionPhase, Role, ServerId, ServerStatus } from './types.ts';

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
  /** Replicated progress per replica, as reported by heartbeats. */
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
 * themselves, so that walking a server's regions (every heartbeat reply, every failed server)
 * needs no lookup by id.
 */
export class Topology {
  readonly servers = new Map<ServerId, ServerRecord>();
  readonly regions = new Map<RegionId, RegionRecord>();
  private readonly hosted = new Map<ServerId, Set<RegionRecord>>();

  addServer(server: ServerRecord): void {
    this.servers.set(server.id, server);
    if (!this.hosted.has(server.id)) this.hosted.set(server.id, new Set());
  }

  addRegion(region: RegionRecord): void {
    this.regions.set(region.id, region);
    for (const id of replicasOf(region)) this.hostedSet(id).add(region);
  }

  removeRegion(id: RegionId): void {
    const region = this.regions.get(id);
    if (!region) return;
    for (const server of replicasOf(region)) this.hosted.get(server)?.delete(region);
    this.regions.delete(id);
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
    if (region.primary !== null && !region.backups.includes(region.primary)) {
      this.hosted.get(region.primary)?.delete(region);
    }
    region.primary = id;
    if (id !== null) this.hostedSet(id).add(region);
  }

  addBackup(region: RegionRecord, id: ServerId, syncDeadlineMs: number | null, syncTarget = 0): void {
    region.backups.push(id);
    if (syncDeadlineMs !== null) {
      region.syncing.set(id, syncDeadlineMs);
      region.syncTarget.set(id, syncTarget);
    }
    this.hostedSet(id).add(region);
  }

  removeBackup(region: RegionRecord, id: ServerId): void {
    const at = region.backups.indexOf(id);
    if (at !== -1) region.backups.splice(at, 1);
    region.syncing.delete(id);
    region.syncTarget.delete(id);
    if (region.primary !== id) this.hosted.get(id)?.delete(region);
  }

  /** Servers that replicate with `id`: its regions' primaries and backups, without itself. */
  peersOf(id: ServerId): Set<ServerId> {
    const peers = new Set<ServerId>();
    for (const region of this.regionsOf(id)) {
      for (const other of replicasOf(region)) if (other !== id) peers.add(other);
    }
    return peers;
  }

  /** True when `a` and `b` replicate together in some region. */
  arePeers(a: ServerId, b: ServerId): boolean {
    const ofA = this.hosted.get(a);
    const ofB = this.hosted.get(b);
    if (ofA === undefined || ofB === undefined) return false;
    // The smaller set is walked; no array is built for the swap (this runs per peer report).
    if (ofA.size > ofB.size) return sharesAny(ofB, ofA);
    return sharesAny(ofA, ofB);
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

/** True when some element of `small` is in `large`. */
function sharesAny(small: ReadonlySet<RegionRecord>, large: ReadonlySet<RegionRecord>): boolean {
  for (const region of small) if (large.has(region)) return true;
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
  let count = 0;
  for (const b of region.backups) if (!region.syncing.has(b)) count += 1;
  return count;
}

/** Recovery priority: critical regions first, then by players, then by id for determinism. */
export function comparePriority(a: RegionRecord, b: RegionRecord): number {
  if (a.critical !== b.critical) return a.critical ? -1 : 1;
  if (a.players !== b.players) return b.players - a.players;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Numeric priority shown to operators: critical regions above any player count. */
export function priorityScore(region: RegionRecord): number {
  return (region.critical ? 1_000_000_000 : 0) + region.players;
}

/** True for statuses in which a server can take new work. */
export function isUsable(status: ServerStatus): boolean {
  return status === 'alive';
}

/**
 * One simulated game server: what it believes about its regions, its heartbeat schedule and the
 * faults it suffers. It follows the protocol a real server must follow: heartbeat every interval;
 * apply the reply (roles, epochs, primaries); heartbeat again at once after a role change, so that
 * a promotion is acknowledged without waiting a whole interval; drop regions it is not given.
 */
import type { HeartbeatInput, HeartbeatReply } from '../core/heartbeat.ts';
import type { RegionId, Role, ServerId } from '../base/types.ts';
import type { SeededRandom } from '../runtime/random.ts';

/** What a simulated server holds for one region. */
export interface SimRegion {
  role: Role;
  epoch: number;
  /** The virtual time up to which its replicated state is complete. */
  syncedToMs: number;
  /** The primary it replicates from (backups), as the last reply named it. */
  primaryId: ServerId | null;
  /**
   * Identity of this holding: a new one each time the server starts holding the region (initial
   * placement, a new assignment), so that a region dropped and given back again, or lost in a crash,
   * is never mistaken for the one held before.
   */
  readonly holding: string;
  /**
   * The holding its state was last transferred from (a copy at assignment, a catch-up or the
   * stream from its primary), or null when it never received state from another server (initial
   * placement, or a primary that started the region from what it had). The lineage checker follows
   * these links to tell a copy of the region's real state from an empty or made-up one.
   */
  copiedFrom: string | null;
}

/**
 * Looks up the holding a server could copy a region's state from right now: the server must be
 * reachable and hold the region; otherwise null.
 */
export type StateSource = (serverId: ServerId, regionId: RegionId) => SimRegion | null;

/**
 * How often a primary streams replicated state to its backups; a peer seen within this interval
 * is reported as just heard.
 */
export const replicationIntervalMs = 50;
/** Replicated state advances by one sequence number per this many ms of play. */
export const msPerSeq = 10;

/** A simulated server's process and network state. */
export class SimServer {
  incarnationNumber = 1;
  /** False while crashed. */
  up = true;
  /** Since when it has been unreachable (crash, partition or the down half of a flap), else null. */
  unreachableSince: number | null = null;
  /** Extra delay added to its heartbeats while a `slow` fault lasts. */
  extraDelayMs = 0;
  nextHeartbeatAtMs: number;
  readonly regions = new Map<RegionId, SimRegion>();
  /** Replication peers as the last reply named them. */
  peers = new Set<ServerId>();
  heartbeatsSent = 0;
  /** Time of the extra heartbeat a reply asked for, or -Infinity when none is pending. */
  expeditedAtMs = -Infinity;
  /**
   * Until when its primary lease runs: the send time of the heartbeat whose reply granted it plus
   * the reply's `leaseMs`, on its own clock. It serves its primary regions only before then.
   */
  leaseUntilMs = -Infinity;
  /** Send time of the heartbeat whose reply it applied last; a reply to an older one is stale. */
  lastAppliedSentAtMs = -Infinity;
  /** Holdings started so far (names each holding uniquely). */
  private holdings = 0;

  constructor(readonly id: ServerId, readonly address: string, readonly random: SeededRandom, startMs: number,
    readonly intervalMs: number) {
    this.nextHeartbeatAtMs = startMs + Math.floor(random.next() * intervalMs);
  }

  get incarnation(): string {
    return `${this.id}#${this.incarnationNumber}`;
  }

  get reachable(): boolean {
    return this.up && this.unreachableSince === null;
  }

  /** Starts holding a region under a fresh holding identity. */
  hold(regionId: RegionId, region: Omit<SimRegion, 'holding'>): SimRegion {
    const held: SimRegion = { ...region, holding: `${this.incarnation}/${regionId}/${++this.holdings}` };
    this.regions.set(regionId, held);
    return held;
  }

  /**
   * True when it would accept players' actions for the region at `nowMs`: it is up (a partition
   * from the coordinator and its peers leaves it reachable by players), holds the region as
   * primary, and its lease runs.
   */
  serves(regionId: RegionId, nowMs: number): boolean {
    return this.up && nowMs < this.leaseUntilMs && this.regions.get(regionId)?.role === 'primary';
  }

  /**
   * Whether to apply the reply to the heartbeat sent at `sentAtMs`: only when that heartbeat is
   * newer than the one last answered (replies overtake each other on the network, and an older
   * one would bring back roles and a lease a newer one took away). Records the lease it grants.
   */
  acceptReply(reply: HeartbeatReply, sentAtMs: number): boolean {
    if (sentAtMs <= this.lastAppliedSentAtMs) return false;
    this.lastAppliedSentAtMs = sentAtMs;
    this.leaseUntilMs = reply.leaseMs > 0 ? sentAtMs + reply.leaseMs : -Infinity;
    return true;
  }

  /** Builds the heartbeat it would send at `nowMs`. */
  heartbeat(nowMs: number, silentFor: (peer: ServerId) => number, players: number): HeartbeatInput {
    this.heartbeatsSent++;
    return {
      incarnation: this.incarnation, players,
      regions: [...this.regions].map(([regionId, r]) => ({
        regionId, role: r.role, epoch: r.epoch, appliedSeq: Math.floor(r.syncedToMs / msPerSeq),
      })),
      peers: [...this.peers].map((serverId) => ({ serverId, silentForMs: silentFor(serverId) })),
    };
  }

  /**
   * Applies a reply. Returns true when a role changed (a promotion or a new assignment), which
   * makes the server heartbeat again at once.
   */
  applyReply(reply: HeartbeatReply, nowMs: number, sourceOf: StateSource): boolean {
    let changed = false;
    const given = new Set<RegionId>();
    const peers = new Set<ServerId>();
    for (const a of reply.regions) {
      given.add(a.regionId);
      const held = this.regions.get(a.regionId);
      const primaryId = a.primary?.serverId ?? null;
      if (!held) {
        // A new backup copies the primary's state, which needs the primary to be reachable and to
        // hold that state (a primary that restarted empty has nothing to give). A server told it is
        // the primary of a region it does not hold starts it from nothing.
        const source = a.role === 'primary' || primaryId === null || primaryId === this.id ? null : sourceOf(primaryId, a.regionId);
        const copied = a.role === 'primary' || source !== null;
        this.hold(a.regionId, { role: a.role, epoch: a.epoch, syncedToMs: copied ? nowMs : 0, primaryId, copiedFrom: source?.holding ?? null });
        changed = true;
      } else if (held.role !== a.role || held.epoch !== a.epoch) {
        held.role = a.role;
        held.epoch = a.epoch;
        held.primaryId = primaryId;
        changed = true;
      } else {
        held.primaryId = primaryId;
      }
      for (const e of [a.primary, ...a.backups]) if (e && e.serverId !== this.id) peers.add(e.serverId);
    }
    for (const id of [...this.regions.keys()]) if (!given.has(id)) this.regions.delete(id);
    this.peers = peers;
    return changed;
  }

  /**
   * State keeps flowing while the server is reachable: primaries play, backups replicate from a
   * primary they can reach that holds the region (a backup of a dead primary holds what it had).
   */
  advanceState(nowMs: number, sourceOf: StateSource): void {
    if (!this.reachable) return;
    for (const [regionId, region] of this.regions) {
      if (region.role === 'primary') {
        region.syncedToMs = Math.max(region.syncedToMs, nowMs);
        continue;
      }
      // A backup catches up (state transfer, then the stream) whenever its primary can give it.
      const source = region.primaryId === null || region.primaryId === this.id ? null : sourceOf(region.primaryId, regionId);
      if (source === null) continue;
      const lag = this.random.next() * replicationIntervalMs;
      region.syncedToMs = Math.max(region.syncedToMs, nowMs - lag);
      region.copiedFrom = source.holding;
    }
  }

  /** A crash loses everything; the restarted process comes back empty with a new incarnation. */
  crash(nowMs: number): void {
    this.up = false;
    this.leaseUntilMs = -Infinity;
    this.lastAppliedSentAtMs = -Infinity;
    this.unreachableSince = nowMs;
    this.regions.clear();
    this.peers.clear();
  }

  restart(nowMs: number): void {
    this.up = true;
    this.unreachableSince = null;
    this.incarnationNumber++;
    this.nextHeartbeatAtMs = nowMs + Math.floor(this.random.next() * this.intervalMs);
  }
}

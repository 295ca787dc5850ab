/**
 * Rebalancing: after failures heal, primaries drift back towards an even spread over zones and
 * servers (the spread primary-placement.ts gives new regions) through planned, throttled moves.
 *
 * A move takes one active region's primary from an over-loaded server to a server short of
 * primaries. If that server is already a confirmed backup, the roles are swapped; otherwise the
 * region is first copied to it as an extra backup (make before break: the region never has fewer
 * backups than its target). The hand-off itself is Recovery's (plannedHandOff): the old primary is
 * told at once it is a backup and stops serving, players' actions are buffered, the new primary is
 * promoted under epoch + 1 once the old primary's lease is over, announced once durable, then
 * collects the buffered actions. The surplus backup is released afterwards, from the zone the
 * region uses most.
 *
 * Throttle: at most `maxRebalanceMoves` moves in flight; none planned or handed off while the
 * coordinator is in TILT, while any region fails over for another reason, or while a server failure
 * is still within the degraded mode's window (`failureWindowMs`): right after a failure more may
 * follow (a zone going down server by server), and a move onto a server about to fail is wasted.
 * Critical regions are never moved while the mesh is degraded. A move is not a failure: no
 * failover record, no failure alert, no false failover.
 */
import type { CoreContext } from './context.ts';
import { primaryBound, primaryCounts, primaryShare } from './primary-placement.ts';
import type { Recovery } from './recovery.ts';
import { isAnnounced, stateOf } from './region-state.ts';
import { isUsable, replicasOf, type RegionRecord, type ServerRecord } from './topology.ts';
import type { ServerId } from '../base/types.ts';

/** One planned move of a region's primary. */
interface Move {
  readonly region: RegionRecord;
  readonly from: ServerId;
  readonly to: ServerId;
  readonly startedAtMs: number;
}

/** Primaries per usable server and per zone, as planning sees them (moves in flight included). */
interface Spread {
  readonly servers: ServerRecord[];
  readonly perServer: Map<ServerId, number>;
  readonly perZone: Map<string, number>;
  readonly share: number;
  readonly bound: number;
}

/** Plans and follows the moves that bring primaries back towards balance. */
export class Rebalancer {
  private readonly moves = new Map<RegionRecord, Move>();
  /** Regions left with a backup beyond their target, and the backup to release first. */
  private readonly surplus = new Map<RegionRecord, ServerId>();
  private nextPlanMs = 0;

  constructor(private readonly ctx: CoreContext, private readonly recovery: Recovery) {}

  /** Number of moves in flight (tests and views). */
  inFlight(): number {
    return this.moves.size;
  }

  /** One step per tick, after recovery's run: follow the moves in flight, then plan new ones. */
  run(nowMs: number, tilted: boolean): void {
    if (this.moves.size === 0 && this.surplus.size === 0 && this.ctx.config.maxRebalanceMoves === 0) return;
    this.releaseSurplus(nowMs);
    const open = !tilted && this.otherFailovers() === 0 && this.ctx.degraded.failuresInWindow(nowMs) === 0;
    for (const move of [...this.moves.values()]) this.follow(move, nowMs, open);
    if (!open || nowMs < this.nextPlanMs || this.moves.size >= this.ctx.config.maxRebalanceMoves) return;
    // Planning scans every region; once per heartbeat interval is as often as moves can complete.
    this.nextPlanMs = nowMs + this.ctx.config.heartbeatIntervalMs;
    this.plan(nowMs);
  }

  /** Regions failing over that no move of ours put there. */
  private otherFailovers(): number {
    let ours = 0;
    for (const region of this.moves.keys()) if (region.phase === 'failing_over') ours += 1;
    return this.ctx.counts.phases.failing_over - ours;
  }

  private follow(move: Move, nowMs: number, open: boolean): void {
    const { region, from, to } = move;
    const { topology, config, degraded } = this.ctx;
    if (topology.regions.get(region.id) !== region) {
      this.moves.delete(region);
      return;
    }
    if (region.primary === to) {
      if (region.primaryAcked && isAnnounced(region)) this.complete(move, nowMs);
      return;
    }
    const target = topology.servers.get(to);
    const targetGone = !region.backups.includes(to) || target === undefined || !isUsable(target.status);
    // The old primary was made a backup: recovery promotes the target once its lease is over (or
    // the best backup left, if the target is gone).
    const handingOver = region.primary === null && this.recovery.handingOverTo(region) === to;
    if (handingOver && !targetGone) return;
    const reason = region.primary !== from && !handingOver ? 'the region failed over'
      : targetGone ? `${to} no longer holds the region or is not alive`
      : topology.servers.get(from)?.status !== 'alive' ? `${from} is not alive`
      : region.critical && degraded.level !== 'NORMAL' ? 'critical regions are not moved while the mesh is degraded'
      : nowMs - move.startedAtMs > config.backupSyncTimeoutMs + config.promotionAckTimeoutMs ? 'it did not complete in time'
      : null;
    if (reason !== null) {
      this.abort(move, reason, nowMs);
    } else if (!open || region.syncing.has(to) || stateOf(region) !== 'active') {
      this.recovery.cancelHandOff(region);
    } else {
      this.recovery.requestHandOff(region, to);
    }
  }

  private complete(move: Move, nowMs: number): void {
    const { region, from, to } = move;
    this.moves.delete(region);
    if (region.backups.length > region.backupTarget) this.surplus.set(region, from);
    this.ctx.outbox.emit({ type: 'rebalance_completed', regionId: region.id, fromServerId: from, toServerId: to,
      epoch: region.epoch, seq: 0, atMs: nowMs });
  }

  private abort(move: Move, reason: string, nowMs: number): void {
    const { region, from, to } = move;
    this.moves.delete(region);
    this.recovery.cancelHandOff(region);
    if (region.backups.length > region.backupTarget) this.surplus.set(region, to);
    this.ctx.outbox.emit({ type: 'rebalance_aborted', regionId: region.id, fromServerId: from, toServerId: to, reason,
      seq: 0, atMs: nowMs });
  }

  /** Releases surplus backups of regions that are active (others keep them as help until then). */
  private releaseSurplus(nowMs: number): void {
    for (const [region, preferred] of this.surplus) {
      if (this.ctx.topology.regions.get(region.id) !== region || region.backups.length <= region.backupTarget) {
        this.surplus.delete(region);
      } else if (stateOf(region) === 'active' && !this.moves.has(region)) {
        this.recovery.releaseSurplus(region, this.toRelease(region, preferred), nowMs);
        this.surplus.delete(region);
      }
    }
  }

  /** The backup in the zone the region uses most; ties: `preferred`, then the most loaded. */
  private toRelease(region: RegionRecord, preferred: ServerId): ServerId {
    const { servers } = this.ctx.topology;
    const inZone = new Map<string, number>();
    for (const id of replicasOf(region)) {
      const zone = servers.get(id)?.zone ?? '';
      inZone.set(zone, (inZone.get(zone) ?? 0) + 1);
    }
    const score = (id: ServerId): [number, number, number] => {
      const server = servers.get(id);
      return [inZone.get(server?.zone ?? '') ?? 0, id === preferred ? 1 : 0, server === undefined ? 0 : server.hosted.size / server.capacity];
    };
    let best = region.backups[0] as ServerId;
    for (const id of region.backups) {
      const [a, b] = [score(id), score(best)];
      if (a[0] > b[0] || (a[0] === b[0] && (a[1] > b[1] || (a[1] === b[1] && a[2] > b[2])))) best = id;
    }
    return best;
  }

  /** Starts moves, most over-loaded first, until the throttle is reached or nothing improves. */
  private plan(nowMs: number): void {
    const spread = this.spread();
    while (this.moves.size < this.ctx.config.maxRebalanceMoves) {
      const move = this.nextMove(spread, nowMs);
      if (move === null) return;
      this.start(move, spread, nowMs);
    }
  }

  private spread(): Spread {
    const { topology } = this.ctx;
    const perServer = primaryCounts(topology);
    for (const move of this.moves.values()) {
      // A move whose hand-off happened is already counted where it goes.
      if (move.region.primary !== move.from) continue;
      perServer.set(move.from, (perServer.get(move.from) ?? 0) - 1);
      perServer.set(move.to, (perServer.get(move.to) ?? 0) + 1);
    }
    // A suspect server still counts (suspicion comes and goes with a lost heartbeat, and the spread
    // must not flicker with it); it only takes no new primary.
    const servers = [...topology.servers.values()].filter((s) => s.status === 'alive' || s.status === 'suspect');
    const perZone = new Map<string, number>();
    for (const server of servers) perZone.set(server.zone, (perZone.get(server.zone) ?? 0) + (perServer.get(server.id) ?? 0));
    const regions = topology.regions.size;
    return { servers, perServer, perZone, share: primaryShare(regions, servers.length), bound: primaryBound(regions, servers.length) };
  }

  /**
   * The next move that brings the spread closer to even, as primary-placement.ts spreads new
   * regions: between zones while they differ by more than one primary (into servers under the
   * bound), then from a server that leads more than the even share to one that leads less, in its
   * zone or in a zone that leads fewer: such a move swaps two zones' counts at most, so it never
   * undoes the zones' balance, and both kinds only ever lower the excess, so planning settles. A
   * server above the bound sheds to any server under it (boundReceivers).
   */
  private nextMove(spread: Spread, nowMs: number): Move | null {
    const zones = [...spread.perZone].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    const high = zones[zones.length - 1];
    if (high === undefined) return null;
    const led = (s: ServerRecord) => spread.perServer.get(s.id) ?? 0;
    const byLed = (a: ServerRecord, b: ServerRecord) => led(a) - led(b) || a.hosted.size / a.capacity - b.hosted.size / b.capacity;
    // Zones first: from a zone that leads more (most first) into one that leads at least two fewer
    // (fewest first) and has a server with room under the bound.
    for (const [from, most] of [...zones].reverse()) {
      const zoneDonors = spread.servers.filter((s) => s.zone === from && s.status === 'alive').sort((a, b) => byLed(b, a));
      for (const [zone, count] of zones) {
        if (most - count <= 1) break;
        const receivers = spread.servers.filter((s) => s.zone === zone && isUsable(s.status) && led(s) < spread.bound).sort(byLed);
        for (const donor of receivers.length === 0 ? [] : zoneDonors) {
          const move = this.moveFrom(donor, receivers, nowMs);
          if (move !== null) return move;
        }
      }
    }
    const donors = spread.servers.filter((s) => s.status === 'alive' && led(s) > spread.share).sort((a, b) => byLed(b, a));
    for (const donor of donors) {
      const receivers = led(donor) > spread.bound ? this.boundReceivers(donor, spread)
        : spread.servers.filter((s) => isUsable(s.status) && led(s) < spread.share &&
          (s.zone === donor.zone || (spread.perZone.get(s.zone) ?? 0) < (spread.perZone.get(donor.zone) ?? 0))).sort(byLed);
      const move = this.moveFrom(donor, receivers, nowMs);
      if (move !== null) return move;
    }
    return null;
  }

  /**
   * Receivers for a server above the bound: any server under the bound, not only one below the
   * even share (when every server below the share is in a zone that leads more, a server at the
   * share in the donor's zone is the only place within the bound). Servers that keep the zones'
   * balance (the donor's zone, or one leading fewer) come first, then the fewest primaries. Another
   * zone is taken only when none does: the move lowers the excess over the bound, which the other
   * phases never raise, and the zone phase evens the zones out again where they have room.
   */
  private boundReceivers(donor: ServerRecord, spread: Spread): ServerRecord[] {
    const led = (s: ServerRecord) => spread.perServer.get(s.id) ?? 0;
    const zoneLed = spread.perZone.get(donor.zone) ?? 0;
    const tier = (s: ServerRecord) => (s.zone === donor.zone || (spread.perZone.get(s.zone) ?? 0) < zoneLed ? 0 : 1);
    return spread.servers.filter((s) => isUsable(s.status) && led(s) < spread.bound)
      .sort((a, b) => tier(a) - tier(b) || led(a) - led(b) || a.hosted.size / a.capacity - b.hosted.size / b.capacity);
  }

  /** A move of one of `donor`'s movable regions to the first receiver that can take it. */
  private moveFrom(donor: ServerRecord, receivers: readonly ServerRecord[], nowMs: number): Move | null {
    for (const region of donor.hosted) {
      if (region.primary !== donor.id || !this.movable(region)) continue;
      const zones = replicasOf(region).map((id) => this.ctx.topology.servers.get(id)?.zone ?? '');
      for (const receiver of receivers) {
        const isBackup = region.backups.includes(receiver.id);
        const canCopy = !isBackup && receiver.hosted.size < receiver.capacity && keepsZones(zones, receiver.zone);
        if (isBackup || canCopy) return { region, from: donor.id, to: receiver.id, startedAtMs: nowMs };
      }
    }
    return null;
  }

  private movable(region: RegionRecord): boolean {
    return stateOf(region) === 'active' && isAnnounced(region) && region.syncing.size === 0 &&
      region.backups.length === region.backupTarget && !this.moves.has(region) && !this.surplus.has(region) &&
      !(region.critical && this.ctx.degraded.level !== 'NORMAL');
  }

  private start(move: Move, spread: Spread, nowMs: number): void {
    const { region, from, to } = move;
    const copy = !region.backups.includes(to);
    if (copy) this.recovery.addMoveTarget(region, to, nowMs);
    this.moves.set(region, move);
    spread.perServer.set(from, (spread.perServer.get(from) ?? 0) - 1);
    spread.perServer.set(to, (spread.perServer.get(to) ?? 0) + 1);
    const zoneOf = (id: ServerId) => this.ctx.topology.servers.get(id)?.zone ?? '';
    spread.perZone.set(zoneOf(from), (spread.perZone.get(zoneOf(from)) ?? 0) - 1);
    spread.perZone.set(zoneOf(to), (spread.perZone.get(zoneOf(to)) ?? 0) + 1);
    this.ctx.outbox.emit({ type: 'rebalance_started', regionId: region.id, fromServerId: from, toServerId: to, copy,
      seq: 0, atMs: nowMs });
    if (!copy) this.recovery.requestHandOff(region, to);
  }
}

/**
 * True when copying a region to a server in `zone` and then releasing the surplus replica (from
 * the zone the region uses most) leaves the region in no fewer distinct zones than `zones`, its
 * replicas' zones now.
 */
function keepsZones(zones: readonly string[], zone: string): boolean {
  const counts = new Map<string, number>();
  for (const z of [...zones, zone]) counts.set(z, (counts.get(z) ?? 0) + 1);
  const most = Math.max(...counts.values());
  const after = most > 1 ? counts.size : counts.size - 1;
  return after >= new Set(zones).size;
}

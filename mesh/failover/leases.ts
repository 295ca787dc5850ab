/**
 * Primary leases. Every heartbeat reply that names a server primary of a region grants it a lease
 * (`lease_ms`); the server serves players' actions only while the lease runs, counted from the
 * moment it SENT the heartbeat the reply answers, and stops when no reply renewed it. The
 * coordinator counts the same lease from the moment it built the reply, which is later, so the
 * server's lease always ends first (up to the clocks' drift). No backup is promoted in place of a
 * primary before that primary's last lease plus its drift margin has run out (its fence): then at
 * most one primary serves a region at any instant, not only at any epoch. Drift is a rate, so the
 * margin is the same share of every lease: `lease_ms x leaseDriftMarginMs / primaryLeaseMs` (100 ms
 * on the 2,000 ms heartbeat lease, 15 ms on the 300 ms session lease by default).
 *
 * ```
 * server      send ─────────── lease_ms ───────────▶ stops serving
 *               ╲                                     ╎
 * coordinator    grant ─────── lease_ms ───────────────▶ + margin ─▶ fence: may promote a backup
 * ```
 *
 * Leases live in memory only: after a restart every server is taken to hold a lease granted just
 * before the coordinator stopped, the longest it grants.
 */
import type { ServerId } from '../base/types.ts';

/** The fence of the latest lease granted to one server, on the coordinator's clock. */
interface Grant {
  fenceMs: number;
}

/** The last lease granted to every server. */
export class LeaseBook {
  // One record per server, updated in place: every heartbeat of every primary renews its lease.
  private readonly grants = new Map<ServerId, Grant>();
  /** Until when any server may hold a lease granted by an earlier run of the coordinator, margin included. */
  private inheritedUntilMs = -Infinity;

  /**
   * @param marginMs the drift margin of a lease of `baseLeaseMs` (`leaseDriftMarginMs` and
   *   `primaryLeaseMs`); a lease of another length gets the same share.
   */
  constructor(private readonly marginMs: number, private readonly baseLeaseMs: number) {}

  /**
   * Records a grant of `leaseMs` at `nowMs`. The length is per grant, not a constant, so that a
   * session may grant shorter leases renewed more often; it must not exceed `primaryLeaseMs`.
   */
  grant(serverId: ServerId, nowMs: number, leaseMs: number): void {
    const fenceMs = nowMs + this.withMargin(leaseMs);
    const grant = this.grants.get(serverId);
    if (grant === undefined) this.grants.set(serverId, { fenceMs });
    else if (fenceMs > grant.fenceMs) grant.fenceMs = fenceMs;
  }

  /**
   * The instant after which the server surely serves on no lease: the latest lease it may hold,
   * plus its drift margin, on the coordinator's clock (-Infinity: none); for `null`, the fence of
   * leases granted by an earlier run of the coordinator.
   */
  fenceOf(serverId: ServerId | null): number {
    const grant = serverId === null ? undefined : this.grants.get(serverId);
    return Math.max(grant?.fenceMs ?? -Infinity, this.inheritedUntilMs);
  }

  /** The coordinator restarted at `nowMs`: any server may hold a lease of up to `longestLeaseMs` from before. */
  inherit(nowMs: number, longestLeaseMs: number): void {
    this.inheritedUntilMs = nowMs + this.withMargin(longestLeaseMs);
  }

  /** Forgets a server that left or was removed. */
  forget(serverId: ServerId): void {
    this.grants.delete(serverId);
  }

  /** A lease plus its drift margin (in this order of operations, exact for whole milliseconds). */
  private withMargin(leaseMs: number): number {
    return leaseMs + (leaseMs * this.marginMs) / this.baseLeaseMs;
  }
}

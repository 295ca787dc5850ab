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
 * Leases live in memory only: after a restart any server may hold a lease the previous process
 * granted just before it stopped, so the coordinator grants none and promotes nothing during its
 * restart grace (`CoreContext.restartGraceUntilMs`), until every such lease is over.
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
   * The instant after which the server surely serves on no lease: the latest lease this process
   * granted it, plus its drift margin, on the coordinator's clock (-Infinity: none). Leases of an
   * earlier process are over once the restart grace is, and nothing is promoted before.
   */
  fenceOf(serverId: ServerId): number {
    return this.grants.get(serverId)?.fenceMs ?? -Infinity;
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

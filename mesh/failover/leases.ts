/**
 * Primary leases. Every heartbeat reply that names a server primary of a region grants it a lease
 * (`lease_ms`); the server serves players' actions only while the lease runs, counted from the
 * moment it SENT the heartbeat the reply answers, and stops when no reply renewed it. The
 * coordinator counts the same lease from the moment it built the reply, which is later, so the
 * server's lease always ends first (up to the clocks' drift). No backup is promoted in place of a
 * primary before that primary's last lease plus `leaseDriftMarginMs` has run out: then at most one
 * primary serves a region at any instant, not only at any epoch.
 *
 * ```
 * server      send ─────────── lease_ms ───────────▶ stops serving
 *               ╲                                     ╎
 * coordinator    grant ─────── lease_ms ───────────────▶ + margin ─▶ may promote a backup
 * ```
 *
 * Leases live in memory only: after a restart any server may hold a lease the previous process
 * granted just before it stopped, so the coordinator grants none and promotes nothing during its
 * restart grace (`CoreContext.restartGraceUntilMs`), until every such lease is over.
 */
import type { ServerId } from '../base/types.ts';

/** The last lease granted to one server, on the coordinator's clock. */
interface Grant {
  grantedAtMs: number;
  leaseMs: number;
}

/** The last lease granted to every server. */
export class LeaseBook {
  // One record per server, updated in place: every heartbeat of every primary renews its lease.
  private readonly grants = new Map<ServerId, Grant>();

  /**
   * Records a grant of `leaseMs` at `nowMs`. The length is per grant, not a constant, so that a
   * session may grant shorter leases renewed more often; it must not exceed `primaryLeaseMs`.
   */
  grant(serverId: ServerId, nowMs: number, leaseMs: number): void {
    const grant = this.grants.get(serverId);
    if (grant === undefined) {
      this.grants.set(serverId, { grantedAtMs: nowMs, leaseMs });
    } else if (nowMs + leaseMs >= grant.grantedAtMs + grant.leaseMs) {
      grant.grantedAtMs = nowMs;
      grant.leaseMs = leaseMs;
    }
  }

  /**
   * When the latest lease this process granted the server ends, on the coordinator's clock
   * (-Infinity: none). Leases of an earlier process are over once the restart grace is, and
   * nothing is promoted before.
   */
  endOf(serverId: ServerId): number {
    const grant = this.grants.get(serverId);
    return grant === undefined ? -Infinity : grant.grantedAtMs + grant.leaseMs;
  }

  /** Forgets a server that left or was removed. */
  forget(serverId: ServerId): void {
    this.grants.delete(serverId);
  }
}

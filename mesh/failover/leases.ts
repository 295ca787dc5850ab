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
 * Leases live in memory only: after a restart every server is taken to hold a lease granted just
 * before the coordinator stopped, the longest it grants.
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
  /** Until when any server may hold a lease granted by an earlier run of the coordinator. */
  private inheritedUntilMs = -Infinity;

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
   * When the latest lease the server may hold ends, on the coordinator's clock (-Infinity: none);
   * for `null`, when leases granted by an earlier run of the coordinator end.
   */
  endOf(serverId: ServerId | null): number {
    const grant = serverId === null ? undefined : this.grants.get(serverId);
    return Math.max(grant === undefined ? -Infinity : grant.grantedAtMs + grant.leaseMs, this.inheritedUntilMs);
  }

  /** The coordinator restarted at `nowMs`: any server may hold a lease of up to `longestLeaseMs` from before. */
  inherit(nowMs: number, longestLeaseMs: number): void {
    this.inheritedUntilMs = nowMs + longestLeaseMs;
  }

  /** Forgets a server that left or was removed. */
  forget(serverId: ServerId): void {
    this.grants.delete(serverId);
  }
}

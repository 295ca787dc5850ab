/**
 * The primary lease as a game server must honour it (FAULT_TOLERANCE_DEPLOYMENT.md §1.2). Every
 * heartbeat reply that names the server primary grants `lease_ms`, counted from the moment the
 * server SENT the heartbeat the reply answers; once it is over without a renewal the server must
 * stop accepting players' actions for its primary regions until it hears from the coordinator.
 *
 *   const leases = new LeaseTracker();
 *   const sentAt = leases.sent();                      // just before sending the heartbeat
 *   const reply = ok(await server.POST('/mesh/servers/{server_id}/heartbeat', ...));
 *   if (leases.replied(sentAt, reply)) applyAssignments(reply);   // false: a stale reply, ignore it
 *   if (!leases.mayAccept(regionId)) refuseOrRedirect(action);     // lease lost: do not apply
 */
import type { components } from './schema.d.ts';

type HeartbeatResponse = components['schemas']['HeartbeatResponse'];

/** Tracks the lease of one game server from its heartbeats and their replies. */
export class LeaseTracker {
  private leaseUntilMs = -Infinity;
  private lastAppliedSentAtMs = -Infinity;
  private primaries = new Set<string>();

  /**
   * @param now a monotonic clock in ms; it must count a suspension of the machine, or the lease
   *   would stretch over it (`performance.now()` counts a paused process, not a suspended VM).
   */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Call just before sending a heartbeat; pass the result to {@link replied} with its reply. */
  sent(): number {
    return this.now();
  }

  /**
   * Takes the reply to the heartbeat sent at `sentAtMs`. Returns false, and changes nothing, for a
   * reply to an older heartbeat than the last one applied (replies may overtake each other): its
   * roles and lease are out of date, and the caller must not apply its assignments either.
   */
  replied(sentAtMs: number, reply: HeartbeatResponse): boolean {
    if (sentAtMs <= this.lastAppliedSentAtMs) return false;
    this.lastAppliedSentAtMs = sentAtMs;
    this.leaseUntilMs = reply.lease_ms > 0 ? sentAtMs + reply.lease_ms : -Infinity;
    this.primaries = new Set(reply.regions.filter((r) => r.role === 'primary').map((r) => r.region_id));
    return true;
  }

  /** True while the server may accept players' actions for the region as its primary. */
  mayAccept(regionId: string): boolean {
    return this.primaries.has(regionId) && this.now() < this.leaseUntilMs;
  }

  /** Milliseconds left on the lease (0 when there is none or it ran out). */
  remainingMs(): number {
    return Math.max(0, this.leaseUntilMs - this.now());
  }

  /** True when the last reply granted a lease that has run out: the server waits for the coordinator. */
  get lost(): boolean {
    return this.primaries.size > 0 && this.now() >= this.leaseUntilMs;
  }
}

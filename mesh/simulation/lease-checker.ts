/**
 * Checker of the primary lease: no two simulated servers serve one region at the same virtual
 * instant, given that every simulated server honours its lease (it accepts players' actions for a
 * region only while it holds the region as primary and its lease, counted from its own send time,
 * runs; mesh/simulation/sim-server.ts `serves`). A server that is partitioned from the coordinator
 * and its peers still counts: players may reach it.
 *
 * A server starts serving only when it applies a reply, so checking every other server at each
 * applied reply finds every overlap exactly: of two serving periods that overlap, the later one
 * starts while the earlier one runs.
 */
import type { RegionId } from '../base/types.ts';
import type { SimulatedFleet } from './fleet.ts';
import type { SimServer } from './sim-server.ts';

/** Watches a fleet's applied replies and records every instant two servers serve one region. */
export class LeaseChecker {
  readonly violations: string[] = [];
  /** How many (server, region, instant) serving checks were made (shows the checker ran). */
  checks = 0;

  constructor(private readonly fleet: SimulatedFleet) {
    fleet.onReplyApplied = (server, nowMs) => this.afterReply(server, nowMs);
  }

  private afterReply(server: SimServer, nowMs: number): void {
    for (const regionId of server.regions.keys()) {
      if (!server.serves(regionId, nowMs)) continue;
      this.checks += 1;
      const other = this.otherServing(server, regionId, nowMs);
      if (other !== null && this.violations.length < 20) {
        this.violations.push(`${regionId} at ${nowMs} ms: ${server.id} (lease to ${server.leaseUntilMs}, epoch ` +
          `${server.regions.get(regionId)?.epoch}) and ${other.id} (lease to ${other.leaseUntilMs}, epoch ` +
          `${other.regions.get(regionId)?.epoch}) both serve`);
      }
    }
  }

  private otherServing(server: SimServer, regionId: RegionId, nowMs: number): SimServer | null {
    for (const other of this.fleet.servers.values()) if (other !== server && other.serves(regionId, nowMs)) return other;
    return null;
  }
}

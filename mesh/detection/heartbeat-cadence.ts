/**
 * How soon a server a failover waits on is asked for its next heartbeat. Sooner heartbeats resolve
 * an incident in fractions of a second, but a mass failure makes thousands of survivors want them
 * at once, which would multiply the coordinator's load just when it has the most to do. So the
 * heartbeats they add beyond the regular rate, all servers together, stay within
 * `expeditedHeartbeatBudget` per second: past it, the expedited interval is stretched evenly for
 * all of them (never beyond the regular one).
 */
import type { MeshConfig } from '../base/config.ts';
import type { ServerId } from '../base/types.ts';

type CadenceConfig = Pick<MeshConfig, 'heartbeatIntervalMs' | 'expeditedHeartbeatIntervalMs' | 'expeditedHeartbeatBudget'>;

/**
 * The expedited interval when `wanting` servers want sooner heartbeats: the shortest at least
 * `expeditedHeartbeatIntervalMs` for which `wanting * (1000 / interval - 1000 / heartbeatIntervalMs)`
 * stays within the budget.
 */
export function expeditedIntervalMs(config: CadenceConfig, wanting: number): number {
  const regular = config.heartbeatIntervalMs;
  if (wanting <= 0) return config.expeditedHeartbeatIntervalMs;
  const stretched = Math.ceil(1000 / (config.expeditedHeartbeatBudget / wanting + 1000 / regular));
  return Math.min(regular, Math.max(config.expeditedHeartbeatIntervalMs, stretched));
}

/**
 * The servers whose latest reply wanted a sooner heartbeat. Kept reply by reply, not counted at
 * ticks: in a mass failure the replies that would overload the coordinator come before the next
 * tick, and an overloaded event loop runs ticks late.
 */
export class HeartbeatCadence {
  private readonly wanting = new Set<ServerId>();

  constructor(private readonly config: CadenceConfig) {}

  /** The interval a reply to the server asks for; records whether it wants a sooner heartbeat. */
  intervalFor(serverId: ServerId, wantsSooner: boolean): number {
    if (!wantsSooner) {
      this.wanting.delete(serverId);
      return this.config.heartbeatIntervalMs;
    }
    this.wanting.add(serverId);
    return expeditedIntervalMs(this.config, this.wanting.size);
  }

  /** The server no longer heartbeats (failed, left, removed): it stops counting. */
  forget(serverId: ServerId): void {
    this.wanting.delete(serverId);
  }

  /** Whether the server's latest reply wanted a sooner heartbeat. */
  wants(serverId: ServerId): boolean {
    return this.wanting.has(serverId);
  }

  /** How many servers want sooner heartbeats now. */
  get wantingCount(): number {
    return this.wanting.size;
  }
}

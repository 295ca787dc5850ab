/**
 * How soon a server a failover waits on is asked for its next heartbeat. Sooner heartbeats resolve
 * an incident in fractions of a second, but a mass failure makes thousands of survivors want them
 * at once, which would multiply the coordinator's load just when it has the most to do. So the
 * heartbeats they add beyond the regular rate, all servers together, stay within
 * `expeditedHeartbeatBudget` per second: past it, the expedited interval is stretched evenly for
 * all of them (never beyond the regular one), and the most urgent work still goes first.
 */
import type { MeshConfig } from '../base/config.ts';

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

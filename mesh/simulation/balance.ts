/**
 * The balance checker of primaries (a checker, like checkers.ts: it only reads). Over the usable
 * servers and the zones that have one:
 * - every zone leads within one region of the even split, regions / zones, unless its servers have
 *   no room for more (every one full or at the per-server bound);
 * - no server leads more than ceil(regions / servers) + 1 primaries, unless capacity does not allow
 *   it: no other server under that bound has room for a copy or backs up one of its regions, or its
 *   regions are critical while the mesh is degraded or short of backups (they are not moved then);
 * - every backup is in a zone other than its primary's while the region's replicas fit in distinct
 *   zones (only checked when `distinctZones` is asked for: after failures a region may have had to
 *   double up in a zone, and moves bring only its primary back to an even spread).
 */
import { Coordinator } from '../core/coordinator.ts';
import { primaryBound } from '../failover/primary-placement.ts';
import { isUsable } from '../failover/topology.ts';
import type { ServerId } from '../base/types.ts';

/** Primaries per zone and per server, and the bound that applies (for messages and tests). */
export interface PrimarySpread {
  readonly perZone: ReadonlyMap<string, number>;
  readonly perServer: ReadonlyMap<ServerId, number>;
  readonly bound: number;
}

/** How the primaries are spread over the usable servers and their zones. */
export function primarySpread(core: Coordinator): PrimarySpread {
  const { servers, regions } = core.records();
  const usable = [...servers.values()].filter((s) => isUsable(s.status));
  const perServer = new Map<ServerId, number>(usable.map((s) => [s.id, 0]));
  const perZone = new Map<string, number>(usable.map((s) => [s.zone, 0]));
  for (const region of regions.values()) {
    const primary = region.primary === null ? undefined : servers.get(region.primary);
    if (primary === undefined) continue;
    if (perServer.has(primary.id)) perServer.set(primary.id, (perServer.get(primary.id) ?? 0) + 1);
    if (perZone.has(primary.zone)) perZone.set(primary.zone, (perZone.get(primary.zone) ?? 0) + 1);
  }
  return { perZone, perServer, bound: primaryBound(regions.size, usable.length) };
}

/** Problems with the spread of primaries, as sentences; empty when balanced. */
export function balanceProblems(core: Coordinator, options: { distinctZones?: boolean; nowMs?: number } = {}): string[] {
  const { servers, regions } = core.records();
  const spread = primarySpread(core);
  const problems: string[] = [];
  // The split of the regions that have a primary to spread (an unavailable region has none).
  const led = [...spread.perZone.values()].reduce((a, b) => a + b, 0);
  const even = led / Math.max(1, spread.perZone.size);
  const roomIn = (zone: string) => [...servers.values()].some((s) => s.zone === zone && isUsable(s.status) &&
    s.hosted.size < s.capacity && (spread.perServer.get(s.id) ?? 0) < spread.bound);
  for (const [zone, count] of spread.perZone) {
    // Below the split: only if the zone had room. Above: only if a zone with fewer had room.
    const short = count < even - 1 && roomIn(zone);
    const over = count > even + 1 && [...spread.perZone].some(([other, n]) => n < count - 1 && roomIn(other));
    if (short || over) problems.push(`${zone} leads ${count} regions; the even split is ${even.toFixed(1)}`);
  }
  for (const [id, count] of spread.perServer) {
    if (count > spread.bound && canShed(core, spread, id, options.nowMs ?? Infinity)) problems.push(`${id} leads ${count} regions; at most ${spread.bound} allowed`);
  }
  if (options.distinctZones) problems.push(...sharedZones(core));
  return problems.slice(0, 20);
}

/** Regions with a backup in their primary's zone although they have no more replicas than zones. */
function sharedZones(core: Coordinator): string[] {
  const { servers, regions } = core.records();
  const zones = new Set([...servers.values()].filter((s) => isUsable(s.status)).map((s) => s.zone)).size;
  const problems: string[] = [];
  for (const region of regions.values()) {
    if (region.primary === null || region.backups.length + 1 > zones) continue;
    const zone = servers.get(region.primary)?.zone;
    const shared = region.backups.filter((id) => servers.get(id)?.zone === zone);
    if (shared.length > 0) problems.push(`${region.id}: backup ${shared.join(',')} shares ${zone} with primary ${region.primary}`);
  }
  return problems;
}

/** How long a region must have been whole before its primary is expected to have moved. */
const settleMs = 5000;

/**
 * True when a server under the bound (in any zone: the bound comes before the zones' split, and a
 * server at the even share in the same zone will do) could take one of `id`'s primaries that may
 * move (room, or a backup); critical regions may not move while the mesh is degraded.
 */
function canShed(core: Coordinator, spread: PrimarySpread, id: ServerId, nowMs: number): boolean {
  const { servers, regions } = core.records();
  const degraded = Coordinator.partsForTests(core).degraded.level !== 'NORMAL';
  const under = [...servers.values()].filter((s) => isUsable(s.status) && (spread.perServer.get(s.id) ?? 0) < spread.bound);
  const backups = new Set<ServerId>();
  let movable = false;
  for (const region of regions.values()) {
    // Only whole regions move: one short of backups for lack of room waits for room first.
    // A region whole for less than `settleMs` may not have been planned yet (once a second).
    if (region.primary !== id || region.phase !== 'active' || region.phaseSinceMs > nowMs - settleMs ||
      (region.critical && degraded)) continue;
    movable = true;
    for (const b of region.backups) backups.add(b);
  }
  return movable && (under.some((s) => s.hosted.size < s.capacity) || under.some((s) => backups.has(s.id)));
}

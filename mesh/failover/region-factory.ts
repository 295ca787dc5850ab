/**
 * Creation of regions: validation of the batch, then placement of every region's primary (spread
 * over zones and servers, primary-placement.ts) and backups (other zones, least loaded) with one
 * planner each, so that creating the 10,000 regions of a large test mesh is linear.
 */
import { refreshPhase, type CoreContext } from './context.ts';
import { PlacementPlanner } from './placement.ts';
import { PrimaryPlanner } from './primary-placement.ts';
import { isUsable, type RegionRecord } from './topology.ts';
import { ok, regionId as toRegionId, reject, type RegionId, type Result } from '../base/types.ts';

/** What is needed to create a region. */
export interface RegionInput {
  readonly id?: string;
  readonly critical?: boolean;
  readonly players?: number;
  /** True for regions of the simulated test mesh. */
  readonly simulated?: boolean;
  /** Backups wanted; `backupsPerRegion` by default. */
  readonly backups?: number;
}

/**
 * Creates a batch of regions. The batch is refused as a whole, changing nothing, when an id is
 * taken or when the usable servers have fewer free slots than the batch needs primaries. New
 * regions hold no state yet, so their first replicas count as confirmed at once.
 */
export function createRegions(ctx: CoreContext, inputs: readonly RegionInput[], nowMs: number,
  newId: () => string): Result<RegionRecord[], 'duplicate_region' | 'no_capacity'> {
  const ids = new Set<RegionId>();
  for (const input of inputs) {
    if (input.id === undefined) continue;
    const id = toRegionId(input.id);
    if (ctx.topology.regions.has(id) || ids.has(id)) return reject('duplicate_region', `region ${id} already exists`);
    ids.add(id);
  }
  const free = freeSlots(ctx);
  if (free < inputs.length) {
    return reject('no_capacity', `${inputs.length} new region(s) need a primary each but the usable servers have ` +
      `${free} free slot(s); register servers or raise their capacity`);
  }
  const planner = new PlacementPlanner(ctx.topology, () => true);
  const primaries = new PrimaryPlanner(ctx.topology, inputs.length);
  const created: RegionRecord[] = [];
  for (const input of inputs) {
    const region = emptyRegion(input.id === undefined ? toRegionId(newId()) : toRegionId(input.id), input, nowMs,
      input.backups ?? ctx.config.backupsPerRegion);
    ctx.topology.addRegion(region);
    ctx.counts.phases.unavailable += 1;
    for (let i = 0; i <= region.backupTarget; i++) {
      // The primary is spread over zones and servers first; its backups then go to other zones.
      const asPrimary = region.primary === null;
      const chosen = (asPrimary ? primaries.pick() : null) ?? planner.pick(region);
      if (chosen === null) break;
      if (asPrimary) ctx.topology.setPrimary(region, chosen);
      else ctx.topology.addBackup(region, chosen, null);
      planner.placed(chosen);
      primaries.placed(chosen, asPrimary);
    }
    refreshPhase(ctx, region, nowMs);
    // Like a promotion, a new region is announced to servers only once it is on disk: a restart
    // that lost it must not find servers serving a region id it will hand out again.
    ctx.outbox.holdAnnouncement(region.id, region.epoch);
    created.push(region);
  }
  ctx.outbox.changed();
  return ok(created);
}

function freeSlots(ctx: CoreContext): number {
  let free = 0;
  for (const server of ctx.topology.servers.values()) {
    if (isUsable(server.status)) free += Math.max(0, server.capacity - server.hosted.size);
  }
  return free;
}

function emptyRegion(id: RegionId, input: RegionInput, nowMs: number, backupTarget: number): RegionRecord {
  return {
    id, simulated: input.simulated ?? false, backupTarget, critical: input.critical ?? false, players: input.players ?? 0,
    epoch: 1, announcedEpoch: 0, phase: 'unavailable', phaseSinceMs: nowMs, primary: null, primaryAcked: true,
    deadlineMs: null, backups: [], syncing: new Map(), syncTarget: new Map(), appliedSeq: new Map(), failoverId: null, lastFailoverId: null,
    lostPrimary: null, formerReplicas: [], createdAtMs: nowMs,
  };
}

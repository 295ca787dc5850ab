/**
 * Which servers a change of the core concerns, so that the session hub pushes them their new
 * assignment without recomputing every server's: a server is concerned when a region it holds or
 * held changed in what its assignment shows (announced epoch, primary and whether it acknowledged,
 * backups and which still sync, criticality, buffered actions), when the degraded level changed
 * (every server's fidelity), or when its own status or a replication peer's changed (a suspect
 * primary asks its peers for sooner heartbeats). Only regions the core noted as touched are
 * looked at, and each is compared with what was last shown by a short fingerprint.
 */
import type { MeshEvent } from '../../mesh/effects/events.ts';
import type { RegionId, ServerId } from '../../mesh/base/types.ts';
import type { CoreQueries } from '../deps.ts';

/** What the watch reads from the core. */
export type WatchedCore = Pick<CoreQueries, 'records' | 'pendingActions' | 'peersOf' | 'takeTouchedRegions'>;

interface RegionMark {
  readonly fingerprint: string;
  readonly servers: readonly ServerId[];
}

/** Remembers what servers were last shown and names those a change concerns. */
export class ChangeWatch {
  private readonly regions = new Map<RegionId, RegionMark>();
  private levelChanged = false;
  private readonly statusChanged = new Set<ServerId>();

  /** `core` is read at each call: a host may replace its coordinator (tests swap meshes). */
  constructor(private readonly core: () => WatchedCore) {}

  /** Notes an event that concerns servers beyond the regions' records (statuses, the degraded level). */
  observe(event: MeshEvent): void {
    if (event.type === 'server_status_changed' || event.type === 'server_failure_detected') this.statusChanged.add(event.serverId);
    else if (event.type === 'degraded_mode_activated' || event.type === 'degraded_mode_deactivated') this.levelChanged = true;
  }

  /**
   * The servers concerned since the last call, or `'all'` when the degraded level changed. Looks
   * only at the regions the core noted as touched since the last call, so its cost follows the
   * change, not the size of the mesh.
   */
  concerned(): Set<ServerId> | 'all' {
    const core = this.core();
    const out = new Set<ServerId>();
    for (const id of this.statusChanged) {
      out.add(id);
      for (const peer of core.peersOf(id)) out.add(peer);
    }
    this.statusChanged.clear();
    const regions = core.records().regions;
    for (const id of core.takeTouchedRegions()) {
      const region = regions.get(id);
      const before = this.regions.get(id);
      if (region === undefined) {
        // Removed: its former servers drop it.
        for (const server of before?.servers ?? []) out.add(server);
        this.regions.delete(id);
        continue;
      }
      const servers = region.primary === null ? region.backups : [region.primary, ...region.backups];
      const fingerprint = `${region.announcedEpoch}|${region.primary}|${region.primaryAcked}|${region.backups.join(',')}|` +
        `${region.syncing.size}|${region.critical}|${core.pendingActions(region.id)}`;
      if (before?.fingerprint === fingerprint) continue;
      for (const server of servers) out.add(server);
      for (const server of before?.servers ?? []) out.add(server);
      this.regions.set(id, { fingerprint, servers });
    }
    const all = this.levelChanged;
    this.levelChanged = false;
    return all ? 'all' : out;
  }
}

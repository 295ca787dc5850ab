/**
 * Which servers a change of the core concerns, so that the session hub pushes them their new
 * assignment without recomputing every server's: a server is concerned when a region it holds or
 * held changed in what its assignment shows (announced epoch, primary and whether it acknowledged,
 * backups and which still sync, criticality, buffered actions), when the degraded level changed
 * (every server's fidelity), or when its own status or a replication peer's changed (a suspect
 * primary asks its peers for sooner heartbeats). Regions are compared by a short fingerprint.
 */
import type { MeshEvent } from '../../mesh/effects/events.ts';
import type { RegionId, ServerId } from '../../mesh/base/types.ts';
import type { CoreQueries } from '../deps.ts';

/** What the watch reads from the core. */
export type WatchedCore = Pick<CoreQueries, 'records' | 'pendingActions' | 'peersOf'>;

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
   * The servers concerned since the last call, or `'all'` when the degraded level changed. Walks
   * every region once (a string per region), so it is called at most once per event-loop turn.
   */
  concerned(): Set<ServerId> | 'all' {
    const core = this.core();
    const out = new Set<ServerId>();
    for (const id of this.statusChanged) {
      out.add(id);
      for (const peer of core.peersOf(id)) out.add(peer);
    }
    this.statusChanged.clear();
    const seen = new Set<RegionId>();
    for (const region of core.records().regions.values()) {
      seen.add(region.id);
      const servers = region.primary === null ? region.backups : [region.primary, ...region.backups];
      const fingerprint = `${region.announcedEpoch}|${region.primary}|${region.primaryAcked}|${region.backups.join(',')}|` +
        `${region.syncing.size}|${region.critical}|${core.pendingActions(region.id)}`;
      const before = this.regions.get(region.id);
      if (before?.fingerprint === fingerprint) continue;
      for (const id of servers) out.add(id);
      for (const id of before?.servers ?? []) out.add(id);
      this.regions.set(region.id, { fingerprint, servers });
    }
    for (const [id, mark] of this.regions) {
      if (seen.has(id)) continue;
      for (const server of mark.servers) out.add(server);
      this.regions.delete(id);
    }
    const all = this.levelChanged;
    this.levelChanged = false;
    return all ? 'all' : out;
  }
}

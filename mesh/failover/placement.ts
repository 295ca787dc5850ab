/**
 * Where replicas go. A new replica goes to a usable server with spare capacity and spare transition
 * budget, in a zone that does not hold the region yet whenever such a server exists, choosing the
 * least loaded (hosted regions over capacity, then players, then id). Promotion candidates are the
 * confirmed, usable backups with the most replicated state.
 *
 * A planner is built once per batch of decisions and keeps one heap per zone, so placing thousands
 * of replicas after a mass failure costs O(zones x log servers) each instead of a scan of the fleet.
 */
import { MinHeap } from '../base/heap.ts';
import { isUsable, replicasOf, type RegionRecord, type ServerRecord, type Topology } from './topology.ts';
import type { ServerId } from '../base/types.ts';

interface Candidate {
  readonly id: ServerId;
  readonly load: number;
  readonly players: number;
}

const lessLoaded = (a: Candidate, b: Candidate): boolean =>
  a.load !== b.load ? a.load < b.load : a.players !== b.players ? a.players < b.players : a.id < b.id;

/** Picks servers for new replicas during one batch of decisions. */
export class PlacementPlanner {
  private readonly zones = new Map<string, MinHeap<Candidate>>();

  constructor(
    private readonly topology: Topology,
    private readonly canTakeTransition: (id: ServerId) => boolean,
  ) {
    const byZone = new Map<string, Candidate[]>();
    for (const server of topology.servers.values()) {
      const candidate = this.candidateWithRoom(server);
      if (candidate === null) continue;
      const list = byZone.get(server.zone);
      if (list === undefined) byZone.set(server.zone, [candidate]);
      else list.push(candidate);
    }
    for (const [zone, list] of byZone) this.zones.set(zone, new MinHeap(lessLoaded, list));
  }

  /**
   * Best server for one more replica of `region`, or null when none has room. The caller records
   * the assignment in the topology and then calls `placed` so the server's new load is seen.
   */
  pick(region: RegionRecord): ServerId | null {
    const hosting = replicasOf(region);
    const usedZones: string[] = [];
    for (const id of hosting) {
      const zone = this.topology.servers.get(id)?.zone;
      if (zone !== undefined) usedZones.push(zone);
    }
    return this.bestIn(hosting, usedZones) ?? this.bestIn(hosting, null);
  }

  /** Re-queues a server after it took a replica, with its new load. */
  placed(id: ServerId): void {
    const server = this.topology.servers.get(id);
    if (server === undefined) return;
    const candidate = this.candidateWithRoom(server);
    if (candidate !== null) this.heapOf(server.zone).push(candidate);
  }

  /** Best candidate not hosting the region, outside `avoidZones` unless that is null. */
  private bestIn(hosting: readonly ServerId[], avoidZones: readonly string[] | null): ServerId | null {
    let best: { heap: MinHeap<Candidate>; candidate: Candidate } | null = null;
    const setAside: { heap: MinHeap<Candidate>; candidate: Candidate }[] = [];
    for (const [zone, heap] of this.zones) {
      if (avoidZones !== null && avoidZones.includes(zone)) continue;
      const top = this.validTop(heap, hosting, (candidate) => setAside.push({ heap, candidate }));
      if (top && (best === null || lessLoaded(top, best.candidate))) best = { heap, candidate: top };
    }
    // The chosen candidate is the top of its heap until the set-aside entries go back.
    best?.heap.pop();
    for (const { heap, candidate } of setAside) heap.push(candidate);
    return best === null ? null : best.candidate.id;
  }

  /**
   * Top of a zone's heap that is still current and does not host the region. Stale entries (load
   * changed since they were pushed, or no room left) are discarded; entries hosting the region are
   * popped and handed to `setAside`: the caller pushes them back once it has taken its pick, since
   * they remain good candidates for other regions.
   */
  private validTop(heap: MinHeap<Candidate>, hosting: readonly ServerId[], setAside: (c: Candidate) => void): Candidate | undefined {
    let found: Candidate | undefined;
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      const server = this.topology.servers.get(top.id);
      const current = server === undefined ? null : this.candidateWithRoom(server);
      if (current === null) {
        heap.pop();
      } else if (current.load !== top.load) {
        heap.pop();
        heap.push(current);
      } else if (hosting.includes(top.id)) {
        setAside(top);
        heap.pop();
      } else {
        found = top;
        break;
      }
    }
    return found;
  }

  /** The server as a candidate with its current load, or null when it cannot take a replica now. */
  private candidateWithRoom(server: ServerRecord): Candidate | null {
    if (!isUsable(server.status)) return null;
    const hosted = server.hosted.size;
    if (hosted >= server.capacity || !this.canTakeTransition(server.id)) return null;
    return { id: server.id, load: hosted / server.capacity, players: server.players };
  }

  private heapOf(zone: string): MinHeap<Candidate> {
    let heap = this.zones.get(zone);
    if (!heap) {
      heap = new MinHeap(lessLoaded);
      this.zones.set(zone, heap);
    }
    return heap;
  }
}

/**
 * The backup to promote: usable and confirmed, highest `applied_seq`; ties go to the lower load,
 * then to a zone no other surviving replica uses, then to the lower id.
 */
export function chooseCandidate(topology: Topology, region: RegionRecord): ServerId | null {
  // One pass and one lookup per backup: this runs for every region that lost its primary, thousands
  // of times in a mass failure's tick. A region has a handful of backups, so the zone count is a
  // scan of their records, looked up once for both uses.
  const { backups } = region;
  const records = backups.map((id) => topology.servers.get(id));
  let best: ServerId | null = null;
  let bestSeq = 0;
  let bestLoad = 0;
  let bestShared = 0;
  for (let at = 0; at < backups.length; at++) {
    const id = backups[at] as ServerId;
    const server = records[at];
    if (region.syncing.has(id) || server === undefined || !isUsable(server.status)) continue;
    const seq = region.appliedSeq.get(id) ?? 0;
    const load = server.hosted.size / server.capacity;
    const shared = sharesZone(records, at, server.zone) ? 1 : 0;
    const better = best === null || seq > bestSeq || (seq === bestSeq && (load < bestLoad ||
      (load === bestLoad && (shared < bestShared || (shared === bestShared && id < best)))));
    if (better) {
      best = id;
      bestSeq = seq;
      bestLoad = load;
      bestShared = shared;
    }
  }
  return best;
}

/** True when another of the region's backups (`records`, all but the one at `at`) is in `zone`. */
function sharesZone(records: readonly (ServerRecord | undefined)[], at: number, zone: string): boolean {
  for (let other = 0; other < records.length; other++) {
    if (other !== at && (records[other]?.zone ?? '') === zone) return true;
  }
  return false;
}

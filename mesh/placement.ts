/**
 * Where replicas go. A new replica goes to a usable server with spare capacity and spare transition
 * budget, in a zone that does not hold the region yet whenever such a server exists, choosing the
 * least loaded (hosted regions over capacity, then players, then id). Promotion candidates are the
 * confirmed, usable backups with the most replicated state.
 *
 * A planner is built once per batch of decisions and keeps one heap per zone, so placing thousands
 * of replicas after a mass failure costs O(zones x log servers) each instead of a scan of the fleet.
 */
import { MinHeap } from './heap.ts';
import { confirmedBackups, isUsable, replicasOf, type RegionRecord, type ServerRecord, type Topology } from './topology.ts';
import type { ServerId } from './types.ts';

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
    for (const server of topology.servers.values()) {
      if (this.hasRoom(server)) this.heapOf(server.zone).push(this.candidate(server));
    }
  }

  /**
   * Best server for one more replica of `region`, or null when none has room. The caller records
   * the assignment in the topology and then calls `placed` so the server's new load is seen.
   */
  pick(region: RegionRecord): ServerId | null {
    const hosting = new Set(replicasOf(region));
    const usedZones = new Set<string>();
    for (const id of hosting) {
      const zone = this.topology.servers.get(id)?.zone;
      if (zone !== undefined) usedZones.add(zone);
    }
    return this.bestIn(hosting, (zone) => !usedZones.has(zone)) ?? this.bestIn(hosting, () => true);
  }

  /** Re-queues a server after it took a replica, with its new load. */
  placed(id: ServerId): void {
    const server = this.topology.servers.get(id);
    if (server && this.hasRoom(server)) this.heapOf(server.zone).push(this.candidate(server));
  }

  private bestIn(hosting: Set<ServerId>, zoneAllowed: (zone: string) => boolean): ServerId | null {
    let best: { heap: MinHeap<Candidate>; candidate: Candidate } | null = null;
    const setAside: { heap: MinHeap<Candidate>; candidate: Candidate }[] = [];
    for (const [zone, heap] of this.zones) {
      if (!zoneAllowed(zone)) continue;
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
  private validTop(heap: MinHeap<Candidate>, hosting: Set<ServerId>, setAside: (c: Candidate) => void): Candidate | undefined {
    let found: Candidate | undefined;
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      const server = this.topology.servers.get(top.id);
      if (!server || !this.hasRoom(server)) {
        heap.pop();
      } else if (this.candidate(server).load !== top.load) {
        heap.pop();
        heap.push(this.candidate(server));
      } else if (hosting.has(top.id)) {
        setAside(top);
        heap.pop();
      } else {
        found = top;
        break;
      }
    }
    return found;
  }

  private hasRoom(server: ServerRecord): boolean {
    return isUsable(server.status) && this.topology.hostedCount(server.id) < server.capacity &&
      this.canTakeTransition(server.id);
  }

  private candidate(server: ServerRecord): Candidate {
    return { id: server.id, load: this.topology.hostedCount(server.id) / server.capacity, players: server.players };
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
  const options = confirmedBackups(region).filter((id) => {
    const server = topology.servers.get(id);
    return server !== undefined && isUsable(server.status);
  });
  const zoneCount = new Map<string, number>();
  for (const id of region.backups) {
    const zone = topology.servers.get(id)?.zone ?? '';
    zoneCount.set(zone, (zoneCount.get(zone) ?? 0) + 1);
  }
  const rank = (id: ServerId) => {
    const server = topology.servers.get(id) as ServerRecord;
    return {
      id,
      seq: region.appliedSeq[id] ?? 0,
      load: topology.hostedCount(id) / server.capacity,
      shared: (zoneCount.get(server.zone) ?? 0) > 1 ? 1 : 0,
    };
  };
  const ranked = options.map(rank).sort((a, b) =>
    b.seq - a.seq || a.load - b.load || a.shared - b.shared || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return ranked[0]?.id ?? null;
}

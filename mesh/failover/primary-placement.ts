/**
 * Where new primaries go. Primaries carry the simulation load and a zone outage fails over every
 * primary in the zone at once, so they are spread twice over: evenly over the zones (the zone with
 * the fewest primaries takes the next one), and within a zone over its servers (fewest primaries,
 * then least loaded, then id). A server takes one primary beyond the even share, ceil(regions /
 * servers), only when every other server of its zone has its share, and never two: so no server
 * leads more than ceil(regions / servers) + 1 while another has room, and the zones stay within one
 * region of the even split as far as their servers' room allows (a zone with fewer servers than
 * the others takes one extra primary on some of them rather than fall behind).
 *
 * Like the backup planner, it is built once per batch with one heap per zone, so placing the
 * primaries of thousands of regions costs O(zones + log servers) each.
 */
import { MinHeap } from '../base/heap.ts';
import { isUsable, type ServerRecord, type Topology } from './topology.ts';
import type { ServerId } from '../base/types.ts';

interface Candidate {
  readonly id: ServerId;
  readonly primaries: number;
  readonly load: number;
}

const fewerPrimaries = (a: Candidate, b: Candidate): boolean =>
  a.primaries !== b.primaries ? a.primaries < b.primaries : a.load !== b.load ? a.load < b.load : a.id < b.id;

/** Primaries per server, from the regions' records (servers that lead nothing are absent). */
export function primaryCounts(topology: Topology): Map<ServerId, number> {
  const counts = new Map<ServerId, number>();
  for (const region of topology.regions.values()) {
    if (region.primary !== null) counts.set(region.primary, (counts.get(region.primary) ?? 0) + 1);
  }
  return counts;
}

/** The even share of primaries per usable server, ceil(regions / servers). */
export function primaryShare(regions: number, usableServers: number): number {
  return usableServers === 0 ? regions : Math.max(1, Math.ceil(regions / usableServers));
}

/** The most primaries one server leads while others have room: the even share plus one. */
export function primaryBound(regions: number, usableServers: number): number {
  return primaryShare(regions, usableServers) + 1;
}

/** Picks the servers of new primaries during one batch of region creations. */
export class PrimaryPlanner {
  private readonly zones = new Map<string, MinHeap<Candidate>>();
  private readonly zonePrimaries = new Map<string, number>();
  private readonly primaries: Map<ServerId, number>;
  private readonly bound: number;

  /** @param newRegions regions of the batch, which count towards the even share */
  constructor(private readonly topology: Topology, newRegions: number) {
    this.primaries = primaryCounts(topology);
    let usable = 0;
    const byZone = new Map<string, Candidate[]>();
    for (const server of topology.servers.values()) {
      if (!isUsable(server.status)) continue;
      usable += 1;
      const led = this.primaries.get(server.id) ?? 0;
      this.zonePrimaries.set(server.zone, (this.zonePrimaries.get(server.zone) ?? 0) + led);
      const list = byZone.get(server.zone) ?? [];
      byZone.set(server.zone, list);
      const candidate = this.candidate(server);
      if (candidate !== null) list.push(candidate);
    }
    this.bound = primaryBound(topology.regions.size + newRegions, usable);
    for (const [zone, list] of byZone) this.zones.set(zone, new MinHeap(fewerPrimaries, list));
  }

  /**
   * The server for the next primary: in the zone with the fewest primaries that has a server under
   * the bound with room, its server with the fewest primaries. Null when no server under the bound
   * has room (the caller then falls back to the least loaded server with room).
   */
  pick(): ServerId | null {
    let best: { zone: string; top: Candidate } | null = null;
    for (const [zone, heap] of this.zones) {
      const top = this.validTop(heap);
      if (top === undefined) continue;
      const led = this.zonePrimaries.get(zone) ?? 0;
      const bestLed = best === null ? Infinity : this.zonePrimaries.get(best.zone) ?? 0;
      if (led < bestLed || (led === bestLed && best !== null && zone < best.zone)) best = { zone, top };
    }
    return best?.top.id ?? null;
  }

  /** Records that `id` took a replica, as primary when `asPrimary`, so later picks see it. */
  placed(id: ServerId, asPrimary: boolean): void {
    const server = this.topology.servers.get(id);
    if (server === undefined || !isUsable(server.status)) return;
    if (asPrimary) {
      this.primaries.set(id, (this.primaries.get(id) ?? 0) + 1);
      this.zonePrimaries.set(server.zone, (this.zonePrimaries.get(server.zone) ?? 0) + 1);
    }
    const candidate = this.candidate(server);
    if (candidate !== null) this.zones.get(server.zone)?.push(candidate);
  }

  /** Top of a zone's heap that is current; stale entries are re-queued, full ones dropped. */
  private validTop(heap: MinHeap<Candidate>): Candidate | undefined {
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      const server = this.topology.servers.get(top.id);
      const current = server === undefined ? null : this.candidate(server);
      if (current !== null && current.primaries === top.primaries && current.load === top.load) return top;
      heap.pop();
      if (current !== null) heap.push(current);
    }
    return undefined;
  }

  /** The server as a candidate, or null when it is full or already leads the most it may. */
  private candidate(server: ServerRecord): Candidate | null {
    const primaries = this.primaries.get(server.id) ?? 0;
    if (server.hosted.size >= server.capacity || primaries >= this.bound) return null;
    return { id: server.id, primaries, load: server.hosted.size / server.capacity };
  }
}

/**
 * Hand-built topologies for unit tests of placement and fault targeting: plain records, no
 * coordinator, so that each test states exactly the loads, zones and roles it depends on.
 */
import { Topology, type RegionRecord, type ServerRecord } from '../../mesh/failover/topology.ts';
import { regionId, serverId, type RegionId, type ServerId, type ServerStatus } from '../../mesh/base/types.ts';

/** A server record; only what placement reads needs to be given. */
export function server(id: string, zone: string, options: { capacity?: number; status?: ServerStatus; players?: number } = {}): ServerRecord {
  // Asserted rather than annotated: the record grows fields the placement code does not read.
  return {
    id: serverId(id), address: `10.0.0.1:${id}`, zone, capacity: options.capacity ?? 10, name: null, simulated: false,
    credentialHash: null, status: options.status ?? 'alive', statusSinceMs: 0, registeredAtMs: 0,
    players: options.players ?? 0, incarnation: null, lastSeq: null, hosted: new Set(),
  } as ServerRecord;
}

/** A region record with the given replicas; `syncing` backups get a far deadline. */
export function region(id: string, options: {
  primary?: string | null; backups?: string[]; syncing?: string[]; appliedSeq?: Record<string, number>;
  backupTarget?: number; critical?: boolean; players?: number;
} = {}): RegionRecord {
  const syncing = new Map((options.syncing ?? []).map((b) => [serverId(b), 1_000_000]));
  return {
    id: regionId(id), simulated: false, backupTarget: options.backupTarget ?? 2, critical: options.critical ?? false,
    players: options.players ?? 0, epoch: 1, announcedEpoch: 1, phase: 'active', phaseSinceMs: 0,
    primary: options.primary === undefined || options.primary === null ? null : serverId(options.primary),
    primaryAcked: true, deadlineMs: null, backups: (options.backups ?? []).map(serverId), syncing,
    syncTarget: new Map(), appliedSeq: new Map(Object.entries(options.appliedSeq ?? {}).map(([id, seq]) => [serverId(id), seq])), failoverId: null, lastFailoverId: null, lostPrimary: null,
    formerReplicas: [], createdAtMs: 0,
  };
}

/** A topology holding the given servers and regions (regions index their replicas). */
export function topologyOf(servers: ServerRecord[], regions: RegionRecord[] = []): Topology {
  const topology = new Topology();
  for (const s of servers) topology.addServer(s);
  for (const r of regions) topology.addRegion(r);
  return topology;
}

/** `count` filler regions hosted (as primary) by one server, to give it load. */
export function filler(topology: Topology, host: string, count: number, prefix = `fill-${host}`): void {
  for (let i = 0; i < count; i++) topology.addRegion(region(`${prefix}-${i}`, { primary: host, backupTarget: 0 }));
}

export const sid = (raw: string): ServerId => serverId(raw);
export const rid = (raw: string): RegionId => regionId(raw);

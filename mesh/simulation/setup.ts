/**
 * Builds a simulated test mesh (`POST /mesh/setup_test`): simulated servers spread over zones, then
 * regions placed on them, then the fleet adopts the placement and starts heartbeating.
 */
import type { Coordinator } from '../core/coordinator.ts';
import { ok, reject, serverId, type Result, type ServerId, type RegionId } from '../base/types.ts';
import { SimulatedFleet, type FleetOptions } from './fleet.ts';
import type { NetworkModel } from './network.ts';
import { standardNetwork } from './network.ts';
import type { SeededRandom } from '../runtime/random.ts';

/** Parameters of a test mesh. */
export interface TestMeshSpec {
  readonly regions: number;
  readonly backupsPerRegion?: number;
  /** Servers beyond what the regions need (at the target utilisation). */
  readonly spareServers?: number;
  readonly zones?: number;
  readonly playersPerRegion?: number;
  /** How many regions are critical (the first ones). */
  readonly criticalRegions?: number;
  /** Heartbeat loss probability; the standard model's 1% by default. */
  readonly heartbeatLoss?: number;
  /** Regions each simulated server can host. */
  readonly serverCapacity?: number;
}

/**
 * Replicas fill at most this share of the simulated servers' capacity, so that after 30% of the
 * servers fail the survivors still have room to restore every surviving region's backups.
 */
export const targetUtilisation = 0.6;

/** Default regions per simulated server. */
export const defaultSimCapacity = 10;

/** Creates the servers and regions of a test mesh and the fleet that simulates them. */
export function setupTestMesh(coordinator: Coordinator, random: SeededRandom, spec: TestMeshSpec, nowMs: number,
  fleetOptions: FleetOptions = {}): Result<{ fleet: SimulatedFleet; servers: ServerId[]; regions: RegionId[] }, 'no_capacity' | 'duplicate_region'> {
  const backups = spec.backupsPerRegion ?? coordinator.config.backupsPerRegion;
  const capacity = spec.serverCapacity ?? defaultSimCapacity;
  const zones = Math.max(1, spec.zones ?? 3);
  const needed = Math.ceil((spec.regions * (1 + backups)) / (capacity * targetUtilisation));
  // backups + 2: after any one failure the survivors can still hold a primary and every backup.
  const count = Math.max(needed, backups + 2) + (spec.spareServers ?? 0);
  const network: NetworkModel = { ...standardNetwork, ...fleetOptions.network,
    ...(spec.heartbeatLoss === undefined ? {} : { lossProbability: spec.heartbeatLoss }) };
  const fleet = new SimulatedFleet(coordinator, random, { ...fleetOptions, network,
    playersPerRegion: fleetOptions.playersPerRegion ?? 0 });
  const serverIds: ServerId[] = [];
  const firstFree = coordinator.records().servers.size;
  for (let i = 0; i < count; i++) {
    const id = serverId(`sim-${firstFree + i + 1}`);
    const registered = coordinator.registerServer({
      id, address: `sim://${id}`, zone: `zone-${(i % zones) + 1}`, capacity, simulated: true,
    }, nowMs);
    if (!registered.ok) return reject('no_capacity', registered.detail);
    serverIds.push(id);
  }
  const critical = spec.criticalRegions ?? 0;
  const created = coordinator.createRegions(Array.from({ length: spec.regions }, (_, i) => ({
    critical: i < critical, players: spec.playersPerRegion ?? 0, simulated: true, backups,
  })), nowMs);
  if (!created.ok) return created;
  for (const id of serverIds) fleet.addServer(id, `sim://${id}`, nowMs);
  fleet.adoptAssignments(nowMs);
  return ok({ fleet, servers: serverIds, regions: created.value.map((r) => r.id) });
}

/**
 * Rebuilds the fleet of a test mesh after a coordinator restart: the simulated servers kept
 * running while the coordinator was down, so they resume with the assignments it persisted.
 */
export function resumeTestMesh(coordinator: Coordinator, random: SeededRandom, nowMs: number,
  fleetOptions: FleetOptions = {}): SimulatedFleet {
  const fleet = new SimulatedFleet(coordinator, random, fleetOptions);
  for (const server of coordinator.records().servers.values()) {
    if (server.simulated && server.status !== 'left' && server.status !== 'failed') fleet.addServer(server.id, server.address, nowMs);
  }
  fleet.adoptAssignments(nowMs);
  return fleet;
}

/**
 * A mesh driven straight through the coordinator's commands, with no simulated fleet: servers are
 * registered with `registerServer`, regions placed with `createRegions`, and heartbeats built from
 * the coordinator's own topology (every server claims exactly what it was assigned, with fresh
 * `applied_seq`, and reports every replication peer as just heard). This is what the service holds
 * for real servers, so its memory is the coordinator's alone, and a heartbeat costs exactly one
 * `coordinator.heartbeat` call.
 */
import { Coordinator } from '../../mesh/core/coordinator.ts';
import { testMeshConfig, type MeshConfig } from '../../mesh/base/config.ts';
import type { HeartbeatInput, PeerSilence, RegionClaim } from '../../mesh/core/heartbeat.ts';
import { SeededRandom } from '../../mesh/runtime/random.ts';
import type { ServerId } from '../../mesh/base/types.ts';

/** Shape of a directly driven mesh. */
export interface DirectMeshSpec {
  readonly servers: number;
  readonly regions: number;
  readonly capacity: number;
  readonly zones: number;
  readonly seed: number;
  readonly config?: MeshConfig;
}

/** A coordinator and the ids of its servers, in heartbeat order. */
export interface DirectMesh {
  readonly coordinator: Coordinator;
  readonly ids: readonly ServerId[];
}

/** Registers the servers and creates the regions at time 0. */
export function buildDirectMesh(spec: DirectMeshSpec): DirectMesh {
  const coordinator = new Coordinator(spec.config ?? testMeshConfig, 0);
  const ids: ServerId[] = [];
  for (let i = 0; i < spec.servers; i++) {
    const registered = coordinator.registerServer({
      id: `srv-${i + 1}`, address: `10.0.${(i >> 8) & 255}.${i & 255}:7000`, zone: `zone-${(i % spec.zones) + 1}`,
      capacity: spec.capacity,
    }, 0);
    if (!registered.ok) throw new Error(registered.detail);
    ids.push(registered.value.serverId);
  }
  const created = coordinator.createRegions(Array.from({ length: spec.regions }, (_, i) => ({ players: 10 + (i % 50) })), 0);
  if (!created.ok) throw new Error(created.detail);
  markAllDurable(coordinator);
  return { coordinator, ids };
}

/** What a well-behaved server would send now: its assignment as the coordinator sees it. */
export function heartbeatInput(coordinator: Coordinator, id: ServerId, nowMs: number): HeartbeatInput {
  const regions: RegionClaim[] = [];
  for (const region of coordinator.hostedBy(id)) {
    regions.push({ regionId: region.id, role: region.primary === id ? 'primary' : 'backup', epoch: region.announcedEpoch,
      appliedSeq: Math.floor(nowMs / 10) });
  }
  const peers: PeerSilence[] = [...coordinator.peersOf(id)].map((serverId) => ({ serverId, silentForMs: 20 }));
  return { incarnation: `${id}#1`, players: 0, regions, peers };
}

/** Builds one heartbeat input per server (outside any timed section). */
export function heartbeatInputs(mesh: DirectMesh, nowMs: number): HeartbeatInput[] {
  return mesh.ids.map((id) => heartbeatInput(mesh.coordinator, id, nowMs));
}

/** Marks every change durable, as the simulator's immediate durability does. */
export function markAllDurable(coordinator: Coordinator): void {
  for (const effect of coordinator.drain()) if (effect.type === 'persist') coordinator.markDurable(effect.seq);
}

/**
 * Runs `rounds` heartbeat intervals from `fromMs`: every server heartbeats once per interval at its
 * own phase (spread evenly over the interval) and the coordinator ticks every tick interval.
 * Returns the time reached. `onTick` may time the tick.
 */
export function driveRounds(mesh: DirectMesh, fromMs: number, rounds: number,
  tick: (nowMs: number) => void = (nowMs) => mesh.coordinator.tick(nowMs)): number {
  const { coordinator, ids } = mesh;
  const { heartbeatIntervalMs: interval, tickIntervalMs } = coordinator.config;
  let nextTick = fromMs;
  for (let round = 0; round < rounds; round++) {
    const start = fromMs + round * interval;
    for (let i = 0; i < ids.length; i++) {
      const at = start + (i * interval) / ids.length;
      while (nextTick <= at) {
        tick(nextTick);
        markAllDurable(coordinator);
        nextTick += tickIntervalMs;
      }
      const id = ids[i] as ServerId;
      const result = coordinator.heartbeat(id, heartbeatInput(coordinator, id, at), at);
      if (!result.ok) throw new Error(result.detail);
    }
  }
  return fromMs + rounds * interval;
}

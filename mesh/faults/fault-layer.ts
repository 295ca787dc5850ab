/**
 * Fault injection as a layer around the core, so that the core's heartbeat path knows nothing of
 * faults. The simulated fleet carries out faults on simulated servers itself; for servers that
 * registered themselves this layer plays the fault: while one is unreachable its heartbeats are
 * dropped and its peers' sightings of it become silence, and under a `slow` fault its heartbeats
 * are held back and applied late. The core only learns which outages were provoked, so that they
 * are not counted as false failovers.
 */
import { MinHeap } from '../base/heap.ts';
import type { Random } from '../base/ports.ts';
import { ok, reject, type Result, type ServerId } from '../base/types.ts';
import type { Coordinator } from '../core/coordinator.ts';
import type { HeartbeatInput, HeartbeatReply } from '../core/heartbeat.ts';
import { FaultRegistry, resolveTargets, type FaultSpec, type InjectedFault } from './faults.ts';

/** A held-back heartbeat; `order` keeps heartbeats due at the same time in arrival order. */
interface Delayed {
  readonly serverId: ServerId;
  readonly input: HeartbeatInput;
  readonly dueAtMs: number;
  readonly order: number;
}

/** The coordinator with injected faults played on its self-registered servers. */
export class FaultLayer {
  private readonly registry = new FaultRegistry();
  private readonly delayed = new MinHeap<Delayed>((a, b) => (a.dueAtMs !== b.dueAtMs ? a.dueAtMs < b.dueAtMs : a.order < b.order));
  private delayedOrder = 0;

  /** @param random draws the servers of a `fraction` target */
  constructor(readonly core: Coordinator, private readonly random: Random) {}

  /** Resolves and records a fault; the core learns that its servers are down on purpose. */
  inject(spec: FaultSpec, nowMs: number): Result<InjectedFault, 'unknown_server' | 'unknown_region' | 'unknown_zone' | 'no_target'> {
    const targets = resolveTargets(this.core.records(), spec.target, this.random);
    if (!targets.ok) return targets;
    const fault = this.registry.record(spec, targets.value, nowMs, this.core.config.heartbeatIntervalMs);
    this.core.expectOutage(fault.serverIds, fault.untilMs);
    return ok(fault);
  }

  /** A heartbeat as the faults let it through: dropped, held back, or applied with the peers' silence. */
  heartbeat(id: ServerId, input: HeartbeatInput, nowMs: number):
    Result<HeartbeatReply, 'unknown_server' | 'server_left' | 'heartbeat_dropped'> {
    if (this.registry.isEmpty()) return this.core.heartbeat(id, input, nowMs);
    const server = this.core.serverRecord(id);
    if (server === undefined || server.status === 'left') return this.core.heartbeat(id, input, nowMs);
    if (!server.simulated && this.registry.unreachableSince(id, nowMs) !== null) {
      return reject('heartbeat_dropped', `heartbeat dropped: an injected ${this.registry.latest(id)?.mode} fault makes ${id} unreachable`);
    }
    const delay = server.simulated ? 0 : this.registry.heartbeatDelay(id, nowMs);
    if (delay > 0) {
      this.delayed.push({ serverId: id, input, dueAtMs: nowMs + delay, order: this.delayedOrder++ });
      return this.core.assignment(id, nowMs, input.leaseMs);
    }
    return this.core.heartbeat(id, this.withSilence(input, nowMs), nowMs);
  }

  /** Applies the held-back heartbeats that are due, then ticks the core. */
  tick(nowMs: number): void {
    while ((this.delayed.peek()?.dueAtMs ?? Infinity) <= nowMs) {
      const next = this.delayed.pop() as Delayed;
      const server = this.core.serverRecord(next.serverId);
      if (server !== undefined && server.status !== 'left') this.core.heartbeat(next.serverId, this.withSilence(next.input, nowMs), nowMs);
    }
    this.core.tick(nowMs);
  }

  /** Recent faults, newest first. */
  list(): InjectedFault[] {
    return this.registry.list();
  }

  /** Forgets every fault (a reset of the test mesh). */
  clear(): void {
    this.registry.clear();
  }

  /**
   * A sighting of a self-registered server under an injected outage becomes silence since the
   * outage began, as if the server were really unreachable.
   */
  private withSilence(input: HeartbeatInput, nowMs: number): HeartbeatInput {
    let peers: HeartbeatInput['peers'] | null = null;
    input.peers.forEach((peer, i) => {
      const target = this.core.serverRecord(peer.serverId);
      const down = target === undefined || target.simulated ? null : this.registry.unreachableSince(peer.serverId, nowMs);
      if (down === null || peer.silentForMs >= nowMs - down) return;
      peers ??= [...input.peers];
      (peers as HeartbeatInput['peers'][number][])[i] = { serverId: peer.serverId, silentForMs: nowMs - down };
    });
    return peers === null ? input : { ...input, peers };
  }
}

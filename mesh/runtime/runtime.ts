/**
 * Drives a coordinator (and, when there is one, a simulated world around it) through time, tick by
 * tick: messages due before a tick are delivered first, then the coordinator ticks (through its
 * fault layer), then its effects are handed over. The service's ticker and the simulator both
 * advance the mesh through this class.
 */
import type { Result } from '../base/types.ts';
import type { Coordinator } from '../core/coordinator.ts';
import type { HeartbeatInput, HeartbeatReply } from '../core/heartbeat.ts';
import type { MeshEvent, MeshEventType } from '../effects/events.ts';
import type { Effect } from '../effects/outbox.ts';
import type { FaultLayer } from '../faults/fault-layer.ts';
import type { FaultSpec, InjectedFault } from '../faults/faults.ts';
import { ClockWatch } from './clock-watch.ts';

/**
 * What to do with effects. The default marks every change durable at once, which is right for an
 * in-memory simulation; the service persists first and marks durable when the write completes.
 */
export type EffectSink = (effects: Effect[], coordinator: Coordinator) => void;

/** Marks changes durable at once and forwards events. */
export const immediateDurability = (onEvent?: (event: MeshEvent) => void): EffectSink => (effects, coordinator) => {
  for (const effect of effects) {
    if (effect.type === 'persist') coordinator.markDurable(effect.seq);
    else onEvent?.(effect.event);
  }
};

/** Where a world's servers send their heartbeats. */
export type HeartbeatSink = (id: HeartbeatTarget, input: HeartbeatInput, nowMs: number) => Result<HeartbeatReply>;
type HeartbeatTarget = Parameters<Coordinator['heartbeat']>[0];

/**
 * Simulated servers around the coordinator (mesh/simulation/fleet.ts), as the runtime drives them.
 * Declared here so that the runtime does not depend on the simulation.
 */
export interface World {
  /** Delivers every message due up to `nowMs`. */
  runUntil(nowMs: number): void;
  /** What the world does on each tick (players' actions, replication). */
  playTick(nowMs: number, tickMs: number): void;
  /** Sees one of the coordinator's events. */
  observe(type: MeshEventType, regionId: string | undefined): void;
  /** Carries out a fault on the simulated servers it hits. */
  inject(fault: InjectedFault, nowMs: number): void;
  /** Stops every simulated server. */
  clear(): void;
  /** Sends the world's heartbeats through `sink` (the fault layer) from now on. */
  sendHeartbeatsTo(sink: HeartbeatSink): void;
}

/** A coordinator behind its fault layer, an optional simulated world, and the time they have reached. */
export class MeshRuntime {
  readonly coordinator: Coordinator;
  private world: World | null = null;
  private nextTickMs: number;

  private readonly clockWatch: ClockWatch;

  constructor(readonly faults: FaultLayer, startMs: number, private readonly sink: EffectSink = immediateDurability()) {
    this.coordinator = faults.core;
    this.nextTickMs = startMs;
    this.clockWatch = new ClockWatch(this.coordinator.config.clockStepThresholdMs);
  }

  /**
   * Compares the wall clock with the monotonic time the core runs on (`nowMs`); a step puts the
   * coordinator in TILT. Returns the step (0: none). Called before each advance by whatever has a
   * wall clock: the service's ticker, the simulator's wall-clock faults.
   */
  observeWallClock(nowMs: number, wallMs: number): number {
    const stepMs = this.clockWatch.observe({ monotonicMs: nowMs, wallMs });
    if (stepMs !== 0) {
      this.coordinator.clockStepped(stepMs, nowMs);
      this.flush();
    }
    return stepMs;
  }

  /** The simulated world (the test mesh's fleet), if any. */
  get fleet(): World | null {
    return this.world;
  }

  set fleet(world: World | null) {
    this.world = world;
    world?.sendHeartbeatsTo((id, input, nowMs) => this.faults.heartbeat(id, input, nowMs));
  }

  /** Time of the next tick. */
  get nextTick(): number {
    return this.nextTickMs;
  }

  /**
   * Runs every tick due up to `targetMs` inclusive. A gap much longer than a tick (the process
   * stalled) is not replayed tick by tick: the coordinator sees the gap, which is how it notices
   * its own stall (TILT).
   */
  advanceTo(targetMs: number, replayGaps = true): void {
    const tickMs = this.coordinator.config.tickIntervalMs;
    if (!replayGaps && targetMs - this.nextTickMs > tickMs) this.nextTickMs = Math.floor(targetMs / tickMs) * tickMs;
    while (this.nextTickMs <= targetMs) {
      const now = this.nextTickMs;
      this.world?.runUntil(now);
      this.world?.playTick(now, tickMs);
      this.faults.tick(now);
      this.flush();
      this.nextTickMs += tickMs;
    }
  }

  /** Hands over the coordinator's effects (call after any command issued outside a tick). */
  flush(): void {
    const effects = this.coordinator.drain();
    if (effects.length === 0) return;
    if (this.world) {
      for (const effect of effects) {
        if (effect.type === 'emit') this.world.observe(effect.event.type, 'regionId' in effect.event ? effect.event.regionId : undefined);
      }
    }
    this.sink(effects, this.coordinator);
  }

  /** Injects a fault: recorded by the fault layer, carried out by the world for simulated servers. */
  injectFailure(spec: FaultSpec, nowMs: number): Result<InjectedFault> {
    const result = this.faults.inject(spec, nowMs);
    if (result.ok) this.world?.inject(result.value, nowMs);
    this.flush();
    return result;
  }
}

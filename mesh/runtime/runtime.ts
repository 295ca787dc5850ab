/**
 * Drives a coordinator (and, when there is one, its simulated fleet) through time, tick by tick:
 * messages due before a tick are delivered first, then the coordinator ticks, then its effects are
 * handed over. The service's ticker and the simulator both advance the mesh through this class.
 */
import type { Coordinator } from '../core/coordinator.ts';
import type { MeshEvent } from '../effects/events.ts';
import type { FaultSpec, InjectedFault } from '../faults/faults.ts';
import type { Effect } from '../effects/outbox.ts';
import type { Result } from '../base/types.ts';
import type { SimulatedFleet } from '../simulation/fleet.ts';

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

/** A coordinator, its optional simulated fleet, and the virtual or real time they have reached. */
export class MeshRuntime {
  fleet: SimulatedFleet | null = null;
  private nextTickMs: number;

  constructor(readonly coordinator: Coordinator, startMs: number, private readonly sink: EffectSink = immediateDurability()) {
    this.nextTickMs = startMs;
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
    const tickMs = this.coordinator.ctx.config.tickIntervalMs;
    if (!replayGaps && targetMs - this.nextTickMs > tickMs) this.nextTickMs = Math.floor(targetMs / tickMs) * tickMs;
    while (this.nextTickMs <= targetMs) {
      const now = this.nextTickMs;
      this.fleet?.runUntil(now);
      this.fleet?.playTick(now, tickMs);
      this.coordinator.tick(now);
      this.flush();
      this.nextTickMs += tickMs;
    }
  }

  /** Hands over the coordinator's effects (call after any command issued outside a tick). */
  flush(): void {
    const effects = this.coordinator.drain();
    if (effects.length === 0) return;
    if (this.fleet) {
      for (const effect of effects) {
        if (effect.type === 'emit') this.fleet.observe(effect.event.type, 'regionId' in effect.event ? effect.event.regionId : undefined);
      }
    }
    this.sink(effects, this.coordinator);
  }

  /** Injects a fault: recorded by the coordinator, carried out by the fleet for simulated servers. */
  injectFailure(spec: FaultSpec, nowMs: number): Result<InjectedFault> {
    const result = this.coordinator.injectFailure(spec, nowMs);
    if (result.ok) this.fleet?.inject(result.value, nowMs);
    this.flush();
    return result;
  }
}

/**
 * Cuts long serialisation into slices so that the event loop keeps answering heartbeats and ticks:
 * the loop that serialises asks `due()` after each item and, when it is, awaits `pause()`.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';

/** Tracks how long the current slice has run. */
export class Slicer {
  private started = performance.now();
  private items = 0;

  /** @param sliceMs longest slice in ms. */
  constructor(private readonly sliceMs: number) {}

  /** True when the slice has run its time (checked every 16 items: reading the clock costs too). */
  due(): boolean {
    this.items += 1;
    return (this.items & 15) === 0 && this.overdue();
  }

  /** True when the slice has run its time, reading the clock now (for callers whose steps are larger). */
  overdue(): boolean {
    return performance.now() - this.started >= this.sliceMs;
  }

  /** Lets the event loop run, then starts a new slice. */
  async pause(): Promise<void> {
    await yieldToLoop();
    this.started = performance.now();
  }
}

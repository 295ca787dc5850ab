/**
 * Cuts long work (serialising a write, sending pushes) into slices so that the event loop keeps
 * answering heartbeats and ticks: the loop that works asks `due()` after each item and, when it
 * is, awaits `pause()`.
 *
 * A slice runs `sliceMs`, or longer when the loop is congested: at least a fair share of the time
 * the loop took before handing back. When thousands of sockets are readable at once, one turn of
 * the loop can take a second; one short slice per such turn would starve the write (and the
 * promotions that wait for it to be durable) for as many seconds as it has slices.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';

/** Share of the time spent away (in other work of the loop) that the next slice may take. */
const fairShare = 0.25;
/** Longest slice however congested the loop: the work still ends, and no reply waits on it longer. */
const longestSliceMs = 50;

/** Tracks how long the current slice has run. */
export class Slicer {
  private started = performance.now();
  private items = 0;
  private lengthMs: number;

  /** @param sliceMs longest slice in ms while the event loop is not congested. */
  constructor(private readonly sliceMs: number) {
    this.lengthMs = sliceMs;
  }

  /** True when the slice has run its time (checked every 16 items: reading the clock costs too). */
  due(): boolean {
    this.items += 1;
    return (this.items & 15) === 0 && this.overdue();
  }

  /** True when the slice has run its time, reading the clock now (for callers whose steps are larger). */
  overdue(): boolean {
    return performance.now() - this.started >= this.lengthMs;
  }

  /** Lets the event loop run, then starts a new slice. */
  async pause(): Promise<void> {
    const pausedAt = performance.now();
    await yieldToLoop();
    this.started = performance.now();
    this.lengthMs = Math.max(this.sliceMs, Math.min(longestSliceMs, (this.started - pausedAt) * fairShare));
  }
}

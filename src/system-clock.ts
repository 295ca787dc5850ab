/**
 * The process's two clocks. The core runs on the monotonic one (`performance.now()`), which never
 * steps: a wall-clock step back once stopped every tick for as long as the step. The wall clock is
 * read for what is shown or persisted outside the core (the data file's `savedAtMs`, webhook
 * signatures) and, every tick, to notice its steps (mesh/runtime/clock-watch.ts).
 */
import type { Clock } from '../mesh/base/ports.ts';

/** Where the time comes from; tests pass their own to step the wall clock. */
export interface TimeSources {
  /** Milliseconds from an arbitrary origin; never goes back, never steps. */
  monotonicMs(): number;
  /** Milliseconds since the Unix epoch, as the operating system has them (may step either way). */
  wallMs(): number;
}

/** The process's real clocks. */
export const processTimeSources: TimeSources = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

/**
 * The core's clock: monotonic, anchored at the wall clock when it is built, so that its readings
 * look like Unix milliseconds in events and alerts. After a wall-clock step the two differ by the
 * step until the next restart, which is what keeps every interval the core measures true.
 */
export function monotonicClock(sources: TimeSources): Clock {
  const anchorMs = sources.wallMs() - sources.monotonicMs();
  return { now: () => anchorMs + sources.monotonicMs() };
}

/**
 * What held the event loop during a stretch of a bench: the event-loop delay (what a message
 * arriving meanwhile waited at most, from `monitorEventLoopDelay`), the garbage collector's pauses
 * (the `gc` performance entries) and the durations of the sections the bench wraps with `timed`
 * (the service's ticker steps). Whatever delay none of them explains came from the rest of the
 * process's work (replies, pushes, writes).
 */
import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';

/** Durations in ms of one kind of loop holder. */
export interface Holds {
  readonly count: number;
  readonly maxMs: number;
  /** Those at or over {@link longMs}. */
  readonly long: number;
  readonly totalMs: number;
}

/** A stretch's loop delay and what held the loop. */
export interface LoopReport {
  readonly delayP99Ms: number;
  readonly delayMaxMs: number;
  readonly gc: Holds;
  readonly timed: Holds;
}

/** A hold counted as long. */
export const longMs = 50;

/** Watches the loop between `start` and `stop`. */
export class LoopWatch {
  private histogram: IntervalHistogram | null = null;
  private observer: PerformanceObserver | null = null;
  private gcMs: number[] = [];
  private timedMs: number[] = [];

  /** Runs `section`, and records its duration while watching. */
  timed<T>(section: () => T): T {
    if (this.histogram === null) return section();
    const started = performance.now();
    try {
      return section();
    } finally {
      this.timedMs.push(performance.now() - started);
    }
  }

  start(): void {
    this.gcMs = [];
    this.timedMs = [];
    this.histogram = monitorEventLoopDelay({ resolution: 5 });
    this.histogram.enable();
    this.observer = new PerformanceObserver((list) => { for (const entry of list.getEntries()) this.gcMs.push(entry.duration); });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): LoopReport {
    const histogram = this.histogram;
    if (histogram === null) throw new Error('LoopWatch.stop without start');
    histogram.disable();
    this.observer?.disconnect();
    this.histogram = null;
    return {
      delayP99Ms: histogram.percentile(99) / 1e6, delayMaxMs: histogram.max / 1e6,
      gc: holds(this.gcMs), timed: holds(this.timedMs),
    };
  }
}

function holds(durations: readonly number[]): Holds {
  return {
    count: durations.length, maxMs: Math.max(0, ...durations), long: durations.filter((d) => d >= longMs).length,
    totalMs: durations.reduce((a, d) => a + d, 0),
  };
}

/**
 * Watches the wall clock against the monotonic clock the core runs on. Between two readings both
 * should move by the same amount; a difference beyond a threshold is a wall-clock step (NTP, an
 * operator, a VM restored from a snapshot or resumed after a suspension). The core never steps with
 * it, but Redis Sentinel's rule holds here too: a coordinator whose clocks disagree cannot trust
 * what it last observed (a suspended VM's monotonic clock does not count the suspension), so the
 * caller enters TILT. Pure: the readings are passed in, by `src/` from the process's clocks and by
 * the simulator from its virtual ones.
 */

/** Both clocks read at one instant, in milliseconds. */
export interface ClockReading {
  readonly monotonicMs: number;
  readonly wallMs: number;
}

/** Compares successive readings of the two clocks. */
export class ClockWatch {
  private last: ClockReading | null = null;

  constructor(private readonly thresholdMs: number) {}

  /**
   * Takes a reading; returns how far the wall clock stepped since the last one (positive forward,
   * negative back) when that exceeds the threshold, else 0.
   */
  observe(reading: ClockReading): number {
    const last = this.last;
    this.last = reading;
    if (last === null) return 0;
    const step = (reading.wallMs - last.wallMs) - (reading.monotonicMs - last.monotonicMs);
    return Math.abs(step) > this.thresholdMs ? step : 0;
  }
}

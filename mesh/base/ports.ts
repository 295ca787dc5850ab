/**
 * Ports through which the pure core receives what it must not produce itself. The core never reads
 * the time or draws a random number on its own: `src/` passes the system clock and a seeded PRNG,
 * tests a manual clock and the same seeded PRNG.
 */

/** Source of the current time in milliseconds. */
export interface Clock {
  /** Milliseconds since an arbitrary but fixed origin (the Unix epoch for the system clock). */
  now(): number;
}

/** Deterministic source of randomness. */
export interface Random {
  /** A float uniformly drawn from [0, 1). */
  next(): number;
}

/** A clock that only moves when told to; used by tests and `MESH_CLOCK=manual`. */
export class ManualClock implements Clock {
  private current: number;

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /** Moves time forward; time never goes backwards. */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    this.current += ms;
    return this.current;
  }
}

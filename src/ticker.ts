/**
 * The ticker: the only place that turns the passage of real time into `onTick` calls. A step that
 * throws has violated an invariant of the core halfway through a tick, leaving counters and records
 * that may disagree: the ticker stops and hands the error to `onError`, which stops the process
 * (fail-stop), so that its supervisor restarts it from the last durable state instead of letting
 * it decide failovers from a half-updated picture.
 */

/** A running ticker. */
export interface Ticker {
  stop(): void;
}

/** Calls `step` every `intervalMs` until stopped, or until a step throws (then `onError`, once). */
export function startTicker(step: () => void, intervalMs: number, onError: (error: unknown) => void): Ticker {
  const timer = setInterval(() => {
    try {
      step();
    } catch (error) {
      clearInterval(timer);
      onError(error);
    }
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}

/**
 * The ticker: the only place that turns the passage of real time into `onTick` calls. A step that
 * throws is logged and the ticker goes on; one broken tick must not stop failure detection.
 */

/** A running ticker. */
export interface Ticker {
  stop(): void;
}

/** Calls `step` every `intervalMs` until stopped. */
export function startTicker(step: () => void, intervalMs: number, onError: (error: unknown) => void): Ticker {
  const timer = setInterval(() => {
    try {
      step();
    } catch (error) {
      onError(error);
    }
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}

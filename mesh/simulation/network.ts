/**
 * The standard network model of ARCHITECTURE.md: every message is delayed 2 ms plus an exponential with
 * mean 10 ms, capped at 250 ms, and lost independently with probability 1%.
 */
import type { SeededRandom } from '../runtime/random.ts';

/** Parameters of message delivery between simulated servers and the coordinator. */
export interface NetworkModel {
  readonly baseDelayMs: number;
  readonly meanExtraDelayMs: number;
  readonly maxDelayMs: number;
  readonly lossProbability: number;
}

/** The standard model for tests and benchmarks. */
export const standardNetwork: NetworkModel = Object.freeze({
  baseDelayMs: 2,
  meanExtraDelayMs: 10,
  maxDelayMs: 250,
  lossProbability: 0.01,
});

/** Draws one delivery: the delay in whole ms, or null when the message is lost. */
export function deliver(model: NetworkModel, random: SeededRandom): number | null {
  if (random.chance(model.lossProbability)) return null;
  return Math.round(Math.min(model.maxDelayMs, model.baseDelayMs + random.exponential(model.meanExtraDelayMs)));
}

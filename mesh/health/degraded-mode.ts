/**
 * Degraded mode: how much simulation fidelity the mesh asks of its servers while it is hurt.
 *
 * Levels and fidelity: NORMAL 1.0, LIGHT 0.75, MODERATE 0.5, SEVERE 0.25. A critical region keeps
 * the fidelity of the level one better than the mesh's (SEVERE 0.5, MODERATE 0.75, LIGHT 1.0,
 * NORMAL 1.0), so the regions with the most players suffer least.
 *
 * Target level. Three metrics are compared with the thresholds of `MeshConfig`:
 * - failures in the sliding window: server failures recorded at most `failureWindowMs` ago
 *   (a failure exactly `failureWindowMs` old still counts; an older one is evicted);
 * - the share of servers that are failed;
 * - the share of regions that are impaired (under-replicated or unavailable).
 * A metric reaches a level when it is greater than or equal to that level's threshold. The target
 * is the highest level that any metric reaches, NORMAL when none reaches LIGHT.
 *
 * Hysteresis, applied at every `evaluate`:
 * 1. Up is immediate: when the target is above the current level, the level jumps straight to
 *    the target (NORMAL to SEVERE in one step).
 * 2. Down is slow: the level steps down only after the target has been below the current level
 *    at every evaluation for at least `degradedCooldownMs`, and then by exactly ONE level, even
 *    if the target is lower still.
 * 3. After each step down the cool-down starts again, so SEVERE to NORMAL takes three full
 *    cool-downs.
 * 4. If the target comes back up to the current level during a cool-down, the cool-down is
 *    cancelled and starts from zero the next time the target drops below the level. (A target
 *    that rises but stays below the current level does not cancel it: it is still below.)
 * A metric that oscillates around a threshold faster than the cool-down therefore holds the
 * higher level instead of flapping.
 *
 * The failure count is owned by this class (`recordFailure`); `evaluate` takes the two shares
 * only, so there is a single source of truth for the sliding window.
 */
import { degradedLevels } from '../base/config.ts';
import type { LevelThresholds, MeshConfig } from '../base/config.ts';
import { invariantFor, type Invariant } from '../base/invariant.ts';
import type { DegradedLevel } from '../base/types.ts';

const invariant: Invariant = invariantFor('degraded-mode invariant violated');

/** The configuration fields the degraded mode reads; a full `MeshConfig` fits. */
export type DegradedModeConfig = Pick<MeshConfig,
  'failureWindowMs' | 'failureCountThresholds' | 'failedServerShareThresholds'
  | 'impairedRegionShareThresholds' | 'degradedCooldownMs'>;

/** Simulation fidelity servers are asked to run at, per mesh level. */
export const levelFidelity: Readonly<Record<DegradedLevel, number>> = Object.freeze({
  NORMAL: 1.0,
  LIGHT: 0.75,
  MODERATE: 0.5,
  SEVERE: 0.25,
});

/** Fidelity of a region at a mesh level; a critical region gets the fidelity of one level better. */
export function fidelityFor(level: DegradedLevel, critical: boolean): number {
  const index = Math.max(0, rank(level) - (critical ? 1 : 0));
  return levelFidelity[levelAt(index)];
}

/** The two metrics the caller measures; the failure count comes from {@link DegradedMode}. */
export interface ShareSample {
  /** Failed servers divided by all servers, in [0, 1]. */
  readonly failedServerShare: number;
  /** Impaired regions divided by all regions, in [0, 1]. */
  readonly impairedRegionShare: number;
}

/** All three metrics that decide the target level. */
export interface LevelSample extends ShareSample {
  /** Server failures recorded within the sliding window. */
  readonly failuresInWindow: number;
}

/** The level the metrics call for and one sentence saying why. */
export interface LevelTarget {
  readonly level: DegradedLevel;
  readonly reason: string;
}

interface Metric {
  readonly value: number;
  readonly thresholds: LevelThresholds;
  readonly describe: (value: number) => string;
  readonly format: (threshold: number) => string;
}

/**
 * The highest level any metric reaches (value >= threshold). The reason names the metric(s) that
 * reach that level with their values and thresholds, for example
 * "4 failures in the last 60 s (LIGHT at 3)"; at NORMAL it lists every metric's value.
 */
export function targetLevel(sample: LevelSample, config: DegradedModeConfig): LevelTarget {
  invariant(isFiniteNonNegative(sample.failuresInWindow), `bad failuresInWindow ${sample.failuresInWindow}`);
  invariant(isFiniteNonNegative(sample.failedServerShare), `bad failedServerShare ${sample.failedServerShare}`);
  invariant(isFiniteNonNegative(sample.impairedRegionShare), `bad impairedRegionShare ${sample.impairedRegionShare}`);
  const metrics = metricsOf(sample, config);
  const levels = metrics.map((metric) => levelReached(metric.value, metric.thresholds));
  const level = levelAt(Math.max(...levels.map(rank)));
  if (level === 'NORMAL') {
    const values = metrics.map((metric) => metric.describe(metric.value)).join(', ');
    return { level, reason: `no metric reaches a degraded threshold (${values})` };
  }
  const causes = metrics
    .filter((_, i) => levels[i] === level)
    .map((metric) => `${metric.describe(metric.value)} (${level} at ${metric.format(metric.thresholds[level])})`);
  return { level, reason: causes.join(' and ') };
}

function metricsOf(sample: LevelSample, config: DegradedModeConfig): Metric[] {
  const windowS = formatNumber(config.failureWindowMs / 1000);
  return [
    {
      value: sample.failuresInWindow,
      thresholds: config.failureCountThresholds,
      describe: (n) => `${n} failure${n === 1 ? '' : 's'} in the last ${windowS} s`,
      format: String,
    },
    {
      value: sample.failedServerShare,
      thresholds: config.failedServerShareThresholds,
      describe: (share) => `${percent(share)} of servers failed`,
      format: percent,
    },
    {
      value: sample.impairedRegionShare,
      thresholds: config.impairedRegionShareThresholds,
      describe: (share) => `${percent(share)} of regions impaired`,
      format: percent,
    },
  ];
}

function levelReached(value: number, thresholds: LevelThresholds): DegradedLevel {
  if (value >= thresholds.SEVERE) return 'SEVERE';
  if (value >= thresholds.MODERATE) return 'MODERATE';
  if (value >= thresholds.LIGHT) return 'LIGHT';
  return 'NORMAL';
}

/** A level change made by {@link DegradedMode.evaluate}. */
export interface LevelChange {
  readonly from: DegradedLevel;
  readonly to: DegradedLevel;
  readonly reason: string;
  readonly direction: 'up' | 'down';
}

/** Outcome of one {@link DegradedMode.evaluate}: the level now, the target, and any change. */
export interface LevelEvaluation {
  readonly level: DegradedLevel;
  readonly target: LevelTarget;
  readonly changed: LevelChange | null;
}

/** Persisted form of a {@link DegradedMode}; `fromJSON(toJSON())` restores it exactly. */
export interface DegradedModeJSON {
  readonly level: DegradedLevel;
  /** When the level last changed. */
  readonly since: number;
  /** Start of the running cool-down, or null when the target is not below the level. */
  readonly belowSinceMs: number | null;
  /** Failure times still in the window, oldest first. */
  readonly failures: readonly number[];
}

/** The mesh's degraded level with the hysteresis rules stated at the top of this file. */
export class DegradedMode {
  private readonly config: DegradedModeConfig;
  private current: DegradedLevel = 'NORMAL';
  private sinceMs: number;
  private belowSinceMs: number | null = null;
  /** Failure times, oldest first; entries before `head` are evicted (a queue without shifting). */
  private failures: number[] = [];
  private head = 0;

  /** @param nowMs the time the mesh starts at NORMAL. */
  constructor(config: DegradedModeConfig, nowMs = 0) {
    invariant(config.failureWindowMs > 0, 'failureWindowMs must be > 0');
    invariant(config.degradedCooldownMs >= 0, 'degradedCooldownMs must be >= 0');
    this.config = config;
    this.sinceMs = nowMs;
  }

  /** Current level. */
  get level(): DegradedLevel {
    return this.current;
  }

  /** When the level last changed (construction time if it never did). */
  get since(): number {
    return this.sinceMs;
  }

  /** Counts one server failure at `nowMs`; times must not go backwards. */
  recordFailure(nowMs: number): void {
    invariant(Number.isFinite(nowMs), () => `nowMs must be finite, got ${nowMs}`);
    // No read past the end of an empty window: optimised code that reads out of bounds is thrown
    // away (a new mesh's first failure did so, in the middle of a mass failure's tick).
    const count = this.failures.length;
    if (count > 0) {
      const last = this.failures[count - 1] as number;
      invariant(nowMs >= last, () => `failure at ${nowMs} recorded after one at ${last}`);
    }
    this.failures.push(nowMs);
  }

  /** Failures recorded within the window ending at `nowMs`; evicts older ones. */
  failuresInWindow(nowMs: number): number {
    this.evict(nowMs);
    return this.failures.length - this.head;
  }

  /**
   * Recomputes the target from the two shares and the failure window at `nowMs`, and moves the
   * level according to the hysteresis rules. Call it on every tick.
   */
  evaluate(sample: ShareSample, nowMs: number): LevelEvaluation {
    const target = targetLevel({ ...sample, failuresInWindow: this.failuresInWindow(nowMs) }, this.config);
    const changed = this.step(target, nowMs);
    return { level: this.current, target, changed };
  }

  /** Plain-data snapshot for persistence. */
  toJSON(): DegradedModeJSON {
    return {
      level: this.current,
      since: this.sinceMs,
      belowSinceMs: this.belowSinceMs,
      failures: this.failures.slice(this.head),
    };
  }

  /** Restores a mode saved by {@link toJSON}. */
  static fromJSON(data: DegradedModeJSON, config: DegradedModeConfig): DegradedMode {
    invariant(degradedLevels.includes(data.level), `unknown degraded level ${String(data.level)}`);
    const mode = new DegradedMode(config, data.since);
    mode.current = data.level;
    mode.belowSinceMs = data.belowSinceMs;
    for (const at of data.failures) mode.recordFailure(at);
    return mode;
  }

  private step(target: LevelTarget, nowMs: number): LevelChange | null {
    const currentRank = rank(this.current);
    const targetRank = rank(target.level);
    if (targetRank > currentRank) return this.change(target.level, target.reason, 'up', nowMs, false);
    if (targetRank === currentRank) {
      this.belowSinceMs = null;
      return null;
    }
    this.belowSinceMs ??= nowMs;
    const belowForMs = nowMs - this.belowSinceMs;
    if (belowForMs < this.config.degradedCooldownMs) return null;
    const reason = `below ${this.current} for ${formatNumber(belowForMs / 1000)} s: ${target.reason}`;
    const next = levelAt(currentRank - 1);
    return this.change(next, reason, 'down', nowMs, targetRank < currentRank - 1);
  }

  /** Moves to `to`; the cool-down restarts at once if the target is still below the new level. */
  private change(
    to: DegradedLevel, reason: string, direction: 'up' | 'down', nowMs: number, stillBelow: boolean,
  ): LevelChange {
    const from = this.current;
    this.current = to;
    this.sinceMs = nowMs;
    this.belowSinceMs = stillBelow ? nowMs : null;
    return { from, to, reason, direction };
  }

  private evict(nowMs: number): void {
    const oldestKept = nowMs - this.config.failureWindowMs;
    while (this.head < this.failures.length && (this.failures[this.head] ?? Infinity) < oldestKept) {
      this.head += 1;
    }
    // Compact once the dead prefix dominates, so memory stays proportional to the window.
    if (this.head > 1024 && this.head * 2 > this.failures.length) {
      this.failures = this.failures.slice(this.head);
      this.head = 0;
    }
  }
}

function rank(level: DegradedLevel): number {
  const index = degradedLevels.indexOf(level);
  invariant(index >= 0, `unknown degraded level ${String(level)}`);
  return index;
}

function levelAt(index: number): DegradedLevel {
  const level = degradedLevels[index];
  invariant(level !== undefined, `no degraded level at index ${index}`);
  return level;
}

function isFiniteNonNegative(value: number): boolean {
  return Number.isFinite(value) && value >= 0;
}

/** Formats a share as a percentage with at most one decimal ("12.5%", "30%"). */
function percent(share: number): string {
  return `${formatNumber(share * 100)}%`;
}

/** At most one decimal, without trailing zeros; also hides binary noise such as 15.000000000000002. */
function formatNumber(value: number): string {
  return String(Number(value.toFixed(1)));
}

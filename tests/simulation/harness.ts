/**
 * Shared helpers of the simulation properties: a run with the safety checker wired in, the
 * fast-check parameters (seed from SIM_SEED to replay, numRuns scaled by SIM_RUNS_FACTOR), and
 * percentile summaries printed next to the targets.
 */
import fc from 'fast-check';
import type { FaultSpec } from '../../mesh/faults/faults.ts';
import type { RegionId, ServerId } from '../../mesh/base/types.ts';
import { SafetyChecker } from '../../mesh/simulation/checkers.ts';
import { DurabilityChecker } from '../../mesh/simulation/durability-checker.ts';
import { SimRun, type ScenarioSpec } from '../../mesh/simulation/scenario.ts';
import { summarize, type DurationStats } from '../../mesh/health/failover-metrics.ts';

/**
 * A run whose safety is checked after every tick and on every heartbeat; with `storeFaults`, its
 * durability too (`durability`, null otherwise).
 */
export function checkedRun(spec: ScenarioSpec): { run: SimRun; safety: SafetyChecker; durability: DurabilityChecker | null } {
  let run: SimRun | undefined;
  const current = () => run as SimRun;
  const safety = new SafetyChecker(() => current().coordinator, () => current().fleet);
  const durability = spec.storeFaults === true ? new DurabilityChecker(current, safety) : null;
  const observer = safety.observer();
  run = new SimRun(spec, durability === null ? observer : {
    ...observer,
    accepted: (regionId, playerId, seq, nowMs, changeSeq) => {
      observer.accepted?.(regionId, playerId, seq, nowMs, changeSeq);
      durability.accepted(regionId, playerId, seq, changeSeq);
    },
    expired: (refs, nowMs) => {
      observer.expired?.(refs, nowMs);
      durability.expiredActions(refs);
    },
  });
  run.onTick((nowMs) => safety.afterStep(nowMs));
  if (spec.coordinatorFaults === true || durability !== null) run.onPersist(() => safety.persisted());
  if (spec.coordinatorFaults === true) run.onRestart((nowMs, restored) => safety.coordinatorRestarted(nowMs, restored));
  if (durability !== null) {
    run.onWrite(() => safety.writeStarted(), () => safety.writeFailed());
    run.onPersist(() => durability.persisted(current().nowMs));
    run.onRestart((nowMs, restored) => durability.restarted(nowMs, restored));
    run.onTick((nowMs) => durability.afterStep(nowMs));
  }
  return { run, safety, durability };
}

/**
 * fast-check parameters: `numRuns` (times SIM_RUNS_FACTOR, at least 1) and, when SIM_SEED is set,
 * that seed, so that a failure printed by CI is replayed with `SIM_SEED=<seed>` (add `path` from the
 * report to jump straight to the shrunk case).
 *
 * Under CI (`CI=true`) a failure is reported as found, without shrinking: shrinking a simulated
 * scenario runs it thousands of times, which once took a failing liveness property past CI's time
 * limit. The report still carries the seed and path; replay them locally to shrink.
 */
export function fcParams(numRuns: number): { numRuns: number; seed?: number; path?: string; endOnFailure?: boolean } {
  const factor = Number(process.env.SIM_RUNS_FACTOR ?? 1);
  const params: { numRuns: number; seed?: number; path?: string; endOnFailure?: boolean } = {
    numRuns: Math.max(1, Math.round(numRuns * factor)),
  };
  if (process.env.SIM_SEED !== undefined) params.seed = Number(process.env.SIM_SEED);
  if (process.env.SIM_PATH !== undefined) params.path = process.env.SIM_PATH;
  if (process.env.CI === 'true') params.endOnFailure = true;
  return params;
}

/** One line of statistics for the test log. */
export function describeStats(name: string, values: readonly number[]): { stats: DurationStats; line: string } {
  const stats = summarize(values);
  const f = (n: number) => n.toFixed(0);
  return { stats, line: `${name}: n=${stats.count} p50=${f(stats.p50)} p99=${f(stats.p99)} max=${f(stats.max)} ms` };
}

/** The spec as one line, for assertion messages. */
export const show = (spec: unknown): string => JSON.stringify(spec);

// ---- random fault schedules ------------------------------------------------------------------


/**
 * Faults of time and of the coordinator itself (issue 16 point 6), planned like the others:
 * - `isolated_primary`: a region's primary is partitioned from the coordinator and its peers for
 *   `durationMs`, but players still reach it (the lease checker counts it as serving);
 * - `wall_step`: the coordinator's wall clock steps by `stepMs` (either way);
 * - `coordinator_stall`: the coordinator's whole process pauses for `durationMs`.
 */
export const timeFaultKinds = ['isolated_primary', 'wall_step', 'coordinator_stall'] as const;

/**
 * Faults of the coordinator's storage (issue 16 point 2), planned like the others, for `durationMs`
 * (up to 12 s: long runs of failures cross promotion deadlines):
 * - `store_slow`: every write takes `delayMs`;
 * - `store_fail`: every write fails (retried with back-off, as the service does).
 */
export const storeFaultKinds = ['store_slow', 'store_fail'] as const;

/** One planned fault: when (after the warm-up), what, and for how long. */
export interface FaultPlan {
  readonly atMs: number;
  /**
   * `coordinator`: the coordinator process crashes for `durationMs` (capped at 5 s) and restarts
   * from its last durable state, or, with `restoreAgeMs` > 0, from an older one (an operator's restore).
   */
  readonly kind: 'crash' | 'partition' | 'slow' | 'flap' | 'zone' | 'fraction' | 'primary' | 'coordinator' | (typeof timeFaultKinds)[number]
    | (typeof storeFaultKinds)[number];
  /** For `wall_step`: how far the wall clock steps (negative: back). */
  readonly stepMs?: number;
  readonly durationMs: number;
  /** For `zone` and `fraction`: crash (lose state, restart empty) or partition (keep state). */
  readonly zoneMode: 'crash' | 'partition';
  /** For `fraction`: the share of live servers hit, in percent. */
  readonly percent: number;
  /** For `slow`: the extra heartbeat delay. */
  readonly delayMs: number;
  /** For `coordinator`: how old the restored state is (0: its last durable state, a plain restart). */
  readonly restoreAgeMs?: number;
}

/** The longest a planned coordinator crash lasts (longer ones are cut to this). */
export const maxCoordinatorDownMs = 5000;

/**
 * Fault plans that also crash and restore the coordinator itself (about one plan in four), stall
 * it, step its wall clock and cut primaries off from it alone ({@link timeFaultKinds}), and slow
 * down or fail its writes ({@link storeFaultKinds}), over a window of `windowMs`: the combined
 * property's faults (tests/simulation/combined.test.ts).
 */
export const combinedFaultPlanArb = (windowMs: number, maxFaults: number, maxDurationMs = 12_000): fc.Arbitrary<FaultPlan[]> =>
  fc.array(fc.record({
    atMs: fc.integer({ min: 0, max: windowMs }),
    kind: fc.constantFrom('crash', 'partition', 'slow', 'flap', 'zone', 'fraction', 'primary', 'coordinator', 'coordinator', 'coordinator',
      ...timeFaultKinds, ...storeFaultKinds, ...storeFaultKinds),
    durationMs: fc.integer({ min: 100, max: maxDurationMs }),
    stepMs: fc.integer({ min: -120_000, max: 120_000 }),
    zoneMode: fc.constantFrom('crash', 'partition'),
    percent: fc.integer({ min: 5, max: 30 }),
    delayMs: fc.integer({ min: 200, max: 4000 }),
    restoreAgeMs: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 500, max: 15_000 })),
  }), { minLength: 1, maxLength: maxFaults }).map((plans) => [...plans].sort((a, b) => a.atMs - b.atMs));

/** Fault plans over a window of `windowMs` after the warm-up; every fault ends (heals or restarts). */
export const faultPlanArb = (windowMs: number, maxFaults: number, maxDurationMs = 20_000): fc.Arbitrary<FaultPlan[]> =>
  fc.array(fc.record({
    atMs: fc.integer({ min: 0, max: windowMs }),
    kind: fc.constantFrom('crash', 'partition', 'slow', 'flap', 'zone', 'fraction', 'primary'),
    durationMs: fc.integer({ min: 500, max: maxDurationMs }),
    zoneMode: fc.constantFrom('crash', 'partition'),
    percent: fc.integer({ min: 5, max: 30 }),
    delayMs: fc.integer({ min: 200, max: 4000 }),
  }), { minLength: 1, maxLength: maxFaults }).map((plans) => [...plans].sort((a, b) => a.atMs - b.atMs));

/** Plans of {@link timeFaultKinds} over a window of `windowMs` (stalls and partitions up to `maxDurationMs`). */
export const timeFaultPlanArb = (windowMs: number, maxFaults: number, maxDurationMs = 8_000): fc.Arbitrary<FaultPlan[]> =>
  fc.array(fc.record({
    atMs: fc.integer({ min: 0, max: windowMs }),
    kind: fc.constantFrom(...timeFaultKinds),
    durationMs: fc.integer({ min: 500, max: maxDurationMs }),
    stepMs: fc.integer({ min: -120_000, max: 120_000 }),
    zoneMode: fc.constant('partition' as const),
    percent: fc.constant(0),
    delayMs: fc.constant(0),
  }), { minLength: 1, maxLength: maxFaults });

/** Turns a plan into a fault spec at injection time (targets drawn from the run's workload stream). */
export function faultSpecOf(run: SimRun, plan: FaultPlan): FaultSpec | null {
  const live = [...run.coordinator.records().servers.values()]
    .filter((s) => s.status === 'alive' || s.status === 'suspect').map((s) => s.id).sort();
  const duration = { durationMs: plan.durationMs };
  switch (plan.kind) {
    case 'crash':
    case 'partition':
    case 'flap':
      return live.length === 0 ? null : { target: { serverId: run.pick(live) as ServerId }, mode: plan.kind, ...duration };
    case 'slow':
      return live.length === 0 ? null : { target: { serverId: run.pick(live) as ServerId }, mode: 'slow', delayMs: plan.delayMs, ...duration };
    case 'zone': {
      const zones = [...new Set([...run.coordinator.records().servers.values()].map((s) => s.zone))].sort();
      return { target: { zone: run.pick(zones) }, mode: plan.zoneMode, ...duration };
    }
    case 'fraction':
      return { target: { fraction: plan.percent / 100 }, mode: plan.zoneMode, ...duration };
    case 'primary': {
      const led = [...run.coordinator.records().regions.values()].filter((r) => r.primary !== null).map((r) => r.id).sort();
      return led.length === 0 ? null : { target: { regionId: run.pick(led) as RegionId, role: 'primary' }, mode: 'crash', ...duration };
    }
    case 'isolated_primary': {
      const led = [...run.coordinator.records().regions.values()].filter((r) => r.primary !== null).map((r) => r.id).sort();
      return led.length === 0 ? null : { target: { regionId: run.pick(led) as RegionId, role: 'primary' }, mode: 'partition', ...duration };
    }
    case 'wall_step':
    case 'coordinator_stall':
    case 'coordinator':
    case 'store_slow':
    case 'store_fail':
      return null;
  }
}

/**
 * Injects every planned fault at `startMs + plan.atMs` and returns when the last one ends (every
 * partition healed, every crashed server restarted): the heal time.
 */
export function applyFaultPlans(run: SimRun, plans: readonly FaultPlan[], startMs: number): number {
  let healAt = startMs;
  for (const plan of plans) {
    const at = startMs + plan.atMs;
    if (plan.kind === 'coordinator_stall') {
      run.stallCoordinator(at, plan.durationMs);
      healAt = Math.max(healAt, at + plan.durationMs);
      continue;
    }
    if (plan.kind === 'store_slow' || plan.kind === 'store_fail') {
      const fault = { fromMs: at, untilMs: at + plan.durationMs, mode: plan.kind === 'store_slow' ? 'slow' as const : 'fail' as const, latencyMs: plan.delayMs };
      if (run.addStoreFault(fault)) healAt = Math.max(healAt, fault.untilMs);
      continue;
    }
    if (plan.kind === 'wall_step') {
      run.stepWallClock(at, plan.stepMs ?? 0);
      healAt = Math.max(healAt, at);
      continue;
    }
    run.advanceTo(at);
    if (plan.kind === 'coordinator') {
      const downMs = Math.min(plan.durationMs, maxCoordinatorDownMs);
      if (run.crashCoordinator(at, downMs, plan.restoreAgeMs ?? 0)) healAt = Math.max(healAt, at + downMs);
      continue;
    }
    const spec = faultSpecOf(run, plan);
    if (spec === null) continue;
    const injected = run.inject(spec, at);
    if (injected.ok) healAt = Math.max(healAt, injected.value.untilMs ?? Infinity);
  }
  return healAt;
}

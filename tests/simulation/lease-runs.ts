/**
 * The scenario of the primary-lease property (lease-safety.test.ts) as a plain function of a
 * printable spec, so that the property and the regression-seed replay run exactly the same code.
 */
import fc from 'fast-check';
import { LeaseChecker } from '../../mesh/simulation/lease-checker.ts';
import { applyFaultPlans, checkedRun, faultPlanArb, timeFaultPlanArb, type FaultPlan } from './harness.ts';
import type { FleetOptions } from '../../mesh/simulation/fleet.ts';
import type { SimRun } from '../../mesh/simulation/scenario.ts';

/** One scenario of this property, printed whole when it fails. */
export interface LeaseSpec {
  readonly seed: number;
  readonly regions: number;
  readonly faults: readonly FaultPlan[];
}

export const leaseSpecArb: fc.Arbitrary<LeaseSpec> = fc.record({
  seed: fc.noShrink(fc.integer({ min: 1, max: 2 ** 31 - 1 })),
  regions: fc.integer({ min: 10, max: 40 }),
  faults: fc.tuple(timeFaultPlanArb(15_000, 4), faultPlanArb(15_000, 2, 8_000))
    .map(([time, other]) => [...time, ...other].sort((a, b) => a.atMs - b.atMs)),
});

/**
 * Runs one scenario; returns every problem found (empty when the lease held). `fleet` and `setup`
 * vary the fleet (servers that hold sessions, session-lease.test.ts) and what it does meanwhile.
 */
export function runLeaseScenario(s: LeaseSpec, fleet?: FleetOptions, setup?: (run: SimRun) => void):
  { problems: string[]; checks: number; steps: number } {
  const { run, safety } = checkedRun({ seed: s.seed, regions: s.regions, zones: 3, spareServers: 2, playersPerRegion: 2,
    ...(fleet === undefined ? {} : { fleet }) });
  setup?.(run);
  const lease = new LeaseChecker(run.fleet);
  const problems: string[] = [];
  let steps = 0;
  run.advanceTo(5_000);
  // Every tick that sees the wall clock step must be in TILT (the runtime compares the clocks
  // before each tick, as the service's ticker does).
  let stepsSeen = 0;
  const observe = run.runtime.observeWallClock.bind(run.runtime);
  run.runtime.observeWallClock = (nowMs, wallMs) => {
    const stepMs = observe(nowMs, wallMs);
    if (stepMs !== 0) {
      stepsSeen += 1;
      if (!run.coordinator.tilted(nowMs)) problems.push(`no TILT at ${nowMs} ms after a wall-clock step of ${stepMs} ms`);
    }
    return stepMs;
  };
  run.onTick(() => {
    steps += 1;
  });
  const healAt = applyFaultPlans(run, s.faults, 5_000);
  run.advanceTo(Math.min(healAt, 60_000) + 10_000);
  const planned = s.faults.filter((f) => f.kind === 'wall_step' && Math.abs(f.stepMs ?? 0) > 2 * run.coordinator.config.clockStepThresholdMs);
  if (planned.length > 0 && stepsSeen === 0) problems.push(`${planned.length} wall-clock steps planned, none seen`);
  problems.push(...lease.violations, ...safety.violations);
  return { problems, checks: lease.checks, steps };
}

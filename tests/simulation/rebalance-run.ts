/**
 * The rebalance scenario (issue 16, point 9), shared by its property (rebalance.test.ts) and the
 * regression seeds: a random small mesh with players acting during every hand-off; a whole zone or
 * a share of the servers crashes for 100 s and restarts empty. The balance of primaries
 * (mesh/simulation/balance.ts) is checked after setup, once the mesh settled with the servers down,
 * and once it settled after they came back; safety after every tick, liveness at the end. Planned
 * hand-offs make no failover record, count no false failover and raise no failure alert. The lease
 * checker watches every applied reply: no two servers serve one region at one instant, through the
 * failovers and every planned hand-off (servers honour their leases).
 */
import fc from 'fast-check';
import { balanceProblems } from '../../mesh/simulation/balance.ts';
import { livenessProblems } from '../../mesh/simulation/checkers.ts';
import { LeaseChecker } from '../../mesh/simulation/lease-checker.ts';
import type { SimRun } from '../../mesh/simulation/scenario.ts';
import { checkedRun, show } from './harness.ts';
import type { Findings } from './runs.ts';

export const rebalanceSpecArb = fc.record({
  seed: fc.noShrink(fc.integer({ min: 1, max: 2 ** 31 - 1 })),
  regions: fc.integer({ min: 20, max: 80 }),
  zones: fc.integer({ min: 2, max: 4 }),
  criticalPercent: fc.integer({ min: 0, max: 20 }),
  fault: fc.constantFrom<'zone' | 'fraction'>('zone', 'fraction'),
  percent: fc.integer({ min: 10, max: 30 }),
});
export type RebalanceSpec = typeof rebalanceSpecArb extends fc.Arbitrary<infer T> ? T : never;

const outageMs = 100_000;

/** Moves started and not yet completed or aborted. */
function movesInFlight(run: SimRun): number {
  let open = 0;
  for (const e of run.events) {
    if (e.type === 'rebalance_started') open += 1;
    else if (e.type === 'rebalance_completed' || e.type === 'rebalance_aborted') open -= 1;
  }
  return open;
}

/**
 * Advances second by second (at most `limitMs`) until, for three seconds running, no move was in
 * flight and every region was active: planning runs once a second, so a quiet instant between two
 * moves is not yet the end.
 */
function settle(run: SimRun, limitMs: number): void {
  const until = run.nowMs + limitMs;
  let quiet = 0;
  for (let t = run.nowMs + 1000; t <= until && quiet < 3; t += 1000) {
    run.advanceTo(t);
    const { phases } = run.coordinator.counts();
    quiet = movesInFlight(run) === 0 && phases.failing_over === 0 && phases.under_replicated === 0 ? quiet + 1 : 0;
  }
}

export function runRebalance(s: RebalanceSpec): Findings {
  const { run, safety } = checkedRun({
    seed: s.seed, regions: s.regions, zones: s.zones, criticalRegions: Math.round((s.regions * s.criticalPercent) / 100),
    fleet: { playersPerRegion: 4 },
  });
  const lease = new LeaseChecker(run.fleet);
  const problems: string[] = [];
  const stage = (name: string, found: string[]) => problems.push(...found.map((p) => `${name}: ${p} in ${show(s)}`));
  stage('unbalanced after setup', balanceProblems(run.coordinator, { distinctZones: true }));
  run.advanceTo(5000);
  const zones = [...new Set([...run.coordinator.records().servers.values()].map((x) => x.zone))].sort();
  const target = s.fault === 'zone' ? { zone: run.pick(zones) } : { fraction: s.percent / 100 };
  if (!run.inject({ target, mode: 'crash', durationMs: outageMs }, 5000).ok) problems.push('the crash was not injected');
  // Moves wait out the failure window (60 s) after the last failure; the servers are still down.
  run.advanceTo(70_000);
  settle(run, 5000 + outageMs - 2000 - run.nowMs);
  stage('unbalanced with the servers down', balanceProblems(run.coordinator, { nowMs: run.nowMs }));
  const failovers = run.coordinator.metrics().recent.length;
  const healAt = 5000 + outageMs;
  run.advanceTo(healAt + 1000);
  settle(run, 120_000);
  stage('unbalanced after healing', balanceProblems(run.coordinator, { nowMs: run.nowMs }));
  // The servers hear of the last hand-off or released backup by their next heartbeat replies.
  run.advanceTo(run.nowMs + 3000);
  stage('actions applied twice or never accepted', run.fleet.ledger.violations());
  stage('not whole after healing', livenessProblems(run.coordinator, run.fleet));
  if (movesInFlight(run) !== 0) problems.push(`moves still in flight in ${show(s)}`);
  if (run.coordinator.metrics().recent.length !== failovers) problems.push(`planned hand-offs made failover records in ${show(s)}`);
  if (run.coordinator.metrics().falseFailovers !== 0) problems.push(`false failovers in ${show(s)}`);
  const failureAlerts = run.events.filter((e) => e.type === 'administrator_alert' && e.atMs > healAt && e.alert.resolvedAtMs === null &&
    /^(server-failed|mass-server-failure|failover-stuck)/.test(e.alert.dedupKey));
  stage('failure alert after healing', failureAlerts.map((e) => (e.type === 'administrator_alert' ? e.alert.dedupKey : '')));
  const completed = run.events.filter((e) => e.type === 'rebalance_completed');
  if (s.fault === 'zone' && completed.length === 0) problems.push(`a zone came back empty, yet nothing moved in ${show(s)}`);
  // Every completed move is a hand-off at a new epoch to its planned server.
  for (const e of completed) {
    const initiated = run.events.find((x) => x.type === 'failover_initiated' && x.regionId === e.regionId && x.epoch === e.epoch);
    if (!(initiated?.type === 'failover_initiated' && initiated.newPrimaryId === e.toServerId && initiated.failedServerId === null)) {
      problems.push(`move of ${e.regionId} to ${e.toServerId} at epoch ${e.epoch} was not a planned hand-off in ${show(s)}`);
    }
  }
  stage('two primaries serve at one instant', lease.violations);
  if (lease.checks === 0) problems.push(`the lease checker saw no serving primary in ${show(s)}`);
  return { problems, safety: [...safety.violations], lostState: [...safety.lostState] };
}

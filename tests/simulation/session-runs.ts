/**
 * The scenarios of the session properties (issue 17 in the simulator: session-failure.test.ts,
 * session-cuts.test.ts) as plain functions of a printable spec, so that the properties and the
 * regression-seed replay run exactly the same code. Simulated servers hold a session
 * (mesh/simulation/sessions.ts): heartbeats, pushes and lease renewals flow over it.
 */
import fc from 'fast-check';
import { failoverRecords } from '../../mesh/simulation/checkers.ts';
import { LeaseChecker } from '../../mesh/simulation/lease-checker.ts';
import type { SessionLayer, SessionOptions } from '../../mesh/simulation/sessions.ts';
import { SimRun } from '../../mesh/simulation/scenario.ts';
import type { ServerId } from '../../mesh/base/types.ts';
import { checkedRun, show } from './harness.ts';
import type { Findings, QuietSpec } from './runs.ts';

const seedArb = fc.noShrink(fc.integer({ min: 1, max: 2 ** 31 - 1 }));

/** A checked run whose servers hold sessions, pushed after every durable change. */
function sessionRun(spec: { seed: number; regions: number; zones: number; spareServers: number; playersPerRegion?: number; coordinatorFaults?: boolean },
  sessions: SessionOptions = {}): { run: SimRun; sessions: SessionLayer; safety: ReturnType<typeof checkedRun>['safety'] } {
  const { run, safety } = checkedRun({ ...spec, fleet: { sessions }, coordinatorFaults: spec.coordinatorFaults === true });
  const layer = run.fleet.sessions;
  if (layer === null) throw new Error('the fleet holds no sessions');
  // Pushes follow durability: with a store that answers later, the write's completion is the change.
  run.onPersist(() => layer.changed(run.nowMs));
  return { run, sessions: layer, safety };
}

// ---- a primary fails: crashed (its session closes) or silent (nothing closes) -----------------

export interface SessionFailureSpec {
  readonly seed: number;
  readonly regions: number;
  readonly zones: number;
  readonly spareServers: number;
  readonly warmupMs: number;
  readonly offsetMs: number;
  /** `crash`: the process dies and its sockets close; `partition`: it goes silent (stopped, cut off, vanished). */
  readonly mode: 'crash' | 'partition';
}

export const sessionFailureArb = (mode: SessionFailureSpec['mode']): fc.Arbitrary<SessionFailureSpec> => fc.record({
  seed: seedArb,
  regions: fc.integer({ min: 10, max: 80 }),
  zones: fc.integer({ min: 3, max: 5 }),
  spareServers: fc.integer({ min: 0, max: 3 }),
  warmupMs: fc.integer({ min: 5_000, max: 30_000 }),
  offsetMs: fc.integer({ min: 1, max: 999 }),
  mode: fc.constant(mode),
});

/**
 * Fails one random server that leads a region, at a random instant, and follows the failover for
 * 8 s (detection <= 5 s, then the promotion and its acknowledgement). Every region it led must complete its failover (detection <= 5 s), with no false failover,
 * the safety checker after every tick and the lease checker on every reply, push and renewal.
 * Returns per failover: detection, promotion and recovery (from the last heartbeat, as
 * failover_metrics count them) and the time from the failure itself to its detection and to the
 * new primary's acknowledgement.
 */
export function runSessionFailure(s: SessionFailureSpec): Findings & { detection: number[]; recovery: number[]; promotion: number[];
  failureToDetection: number[]; failureToAck: number[]; pushes: number; renewals: number } {
  const { run, sessions, safety } = sessionRun({ seed: s.seed, regions: s.regions, zones: s.zones, spareServers: s.spareServers, playersPerRegion: 10 });
  const lease = new LeaseChecker(run.fleet);
  run.advanceTo(s.warmupMs);
  const victim = run.pick(run.primaries());
  const led = [...run.coordinator.records().regions.values()].filter((r) => r.primary === victim).map((r) => r.id).sort();
  const failAt = s.warmupMs + s.offsetMs;
  run.inject({ target: { serverId: victim }, mode: s.mode }, failAt);
  run.advanceTo(failAt + 8_000);

  const problems: string[] = [];
  const records = failoverRecords(run.coordinator);
  const failedOver = records.map((r) => r.regionId).sort();
  if (show(failedOver) !== show(led)) problems.push(`failovers of ${show(failedOver)} but ${victim} led ${show(led)}`);
  for (const r of records) {
    if (r.failedServerId !== victim) problems.push(`${r.regionId} failed over from ${r.failedServerId}, not ${victim}`);
    if (r.outcome !== 'completed') problems.push(`${r.regionId} failover ended ${r.outcome}: ${show(r)}`);
    if (r.detectionMs > 5000) problems.push(`${r.regionId} detected ${r.detectionMs.toFixed(0)} ms after the last heartbeat (> 5 s)`);
  }
  if (run.coordinator.metrics().falseFailovers > 0) problems.push('a false failover was counted');
  const done = records.filter((r) => r.completedAtMs !== null);
  return {
    problems, safety: [...safety.violations, ...lease.violations], lostState: safety.lostState,
    detection: records.map((r) => r.detectionMs), recovery: records.map((r) => r.recoveryMs ?? Infinity),
    promotion: records.map((r) => (r.promotedAtMs ?? Infinity) - r.failedAtMs),
    failureToDetection: records.map((r) => r.detectedAtMs - failAt),
    failureToAck: done.map((r) => (r.completedAtMs as number) - failAt),
    pushes: sessions.counters.pushes, renewals: sessions.counters.renewals,
  };
}

// ---- sessions cut while every server stays healthy ----------------------------------------------

export interface SessionCutSpec {
  readonly seed: number;
  readonly regions: number;
  readonly zones: number;
  readonly spareServers: number;
  readonly warmupMs: number;
  /** Cuts of every session at once, this far apart; each `refusedForMs` long (0: the coordinator dropped them). */
  readonly cuts: readonly { readonly gapMs: number; readonly refusedForMs: number }[];
}

export const sessionCutArb: fc.Arbitrary<SessionCutSpec> = fc.record({
  seed: seedArb,
  regions: fc.integer({ min: 10, max: 120 }),
  zones: fc.integer({ min: 3, max: 5 }),
  spareServers: fc.integer({ min: 0, max: 3 }),
  warmupMs: fc.integer({ min: 5_000, max: 30_000 }),
  cuts: fc.array(fc.record({
    gapMs: fc.integer({ min: 1, max: 15_000 }),
    refusedForMs: fc.oneof(fc.constant(0), fc.integer({ min: 100, max: 1_500 })),
  }), { minLength: 1, maxLength: 3 }),
});

/**
 * Every session is cut at once, one or more times (the coordinator drops them all, or a proxy in
 * between restarts and refuses connections up to 1.5 s), while every server stays healthy and its
 * replication peers keep hearing it; the servers reconnect with jittered back-off. Nothing may
 * fail over and no server may be declared failed; every session must be open again at the end.
 */
export function runSessionCuts(s: SessionCutSpec): Findings & { suspicions: number; closes: number } {
  const { run, sessions, safety } = sessionRun({ seed: s.seed, regions: s.regions, zones: s.zones, spareServers: s.spareServers });
  const lease = new LeaseChecker(run.fleet);
  run.advanceTo(s.warmupMs);
  let at = s.warmupMs;
  for (const cut of s.cuts) {
    at += cut.gapMs;
    cutAt(run, sessions, at, undefined, cut.refusedForMs);
  }
  run.advanceTo(at + 20_000);
  const problems = healthyRunProblems(run, sessions);
  const suspicions = run.events.filter((e) => e.type === 'server_status_changed' && e.to === 'suspect').length;
  if (suspicions < run.servers.length) problems.push(`only ${suspicions} suspicions for ${run.servers.length} servers: the cuts were not seen`);
  return { problems, safety: [...safety.violations, ...lease.violations], lostState: safety.lostState, suspicions, closes: sessions.counters.closesSeen };
}

export interface CoordinatorRestartSpec {
  readonly seed: number;
  readonly regions: number;
  readonly warmupMs: number;
  /** How long the coordinator's process is down (its sockets close with it). */
  readonly downMs: number;
}

export const coordinatorRestartArb: fc.Arbitrary<CoordinatorRestartSpec> = fc.record({
  seed: seedArb,
  regions: fc.integer({ min: 10, max: 80 }),
  warmupMs: fc.integer({ min: 5_000, max: 20_000 }),
  downMs: fc.integer({ min: 100, max: 5_000 }),
});

/**
 * The coordinator's process dies and restarts from its durable state: every session closes with it
 * and reconnection is refused until it is back; the servers stay healthy. Nothing may fail over and
 * every session must be open again (on the new process) at the end.
 */
export function runCoordinatorRestart(s: CoordinatorRestartSpec): Findings {
  const { run, sessions, safety } = sessionRun({ seed: s.seed, regions: s.regions, zones: 3, spareServers: 1, coordinatorFaults: true });
  run.advanceTo(s.warmupMs);
  const problems: string[] = [];
  if (!run.crashCoordinator(s.warmupMs + 50, s.downMs)) problems.push('the coordinator did not crash');
  run.advanceTo(s.warmupMs + s.downMs + 20_000);
  problems.push(...healthyRunProblems(run, run.fleet.sessions ?? sessions));
  return { problems, safety: safety.violations, lostState: safety.lostState };
}

/** Cuts sessions at exactly `atMs` (the fleet's messages due by then delivered first). */
function cutAt(run: SimRun, sessions: SessionLayer, atMs: number, ids: readonly ServerId[] | undefined, refusedForMs: number): void {
  run.advanceTo(atMs);
  run.fleet.runUntil(atMs);
  sessions.cut(atMs, ids, refusedForMs);
}

/** What a run without any failure must show: no failover, no server declared failed, every session open. */
function healthyRunProblems(run: SimRun, sessions: SessionLayer): string[] {
  const problems: string[] = [];
  const m = run.coordinator.metrics();
  if (m.falseFailovers !== 0) problems.push(`${m.falseFailovers} false failovers`);
  if (m.failovers.total !== 0) problems.push(`${m.failovers.total} failovers without any failure: ${show(m.recent.slice(0, 3))}`);
  const failures = run.events.filter((e) => e.type === 'server_failure_detected');
  if (failures.length > 0) problems.push(`servers declared failed without any failure: ${show(failures.slice(0, 3))}`);
  const closed = run.servers.filter((id) => !sessions.isOpen(id));
  if (closed.length > 0) problems.push(`sessions still closed at the end: ${show(closed.slice(0, 5))}`);
  return problems;
}

// ---- long healthy running with random session cuts -----------------------------------------------

export interface SessionQuietSpec extends QuietSpec {
  /** Mean time between cuts of one server's session (a network hiccup), per server. */
  readonly meanCutIntervalMs: number;
  /** Mean time between cuts of every session at once. */
  readonly meanMassCutIntervalMs: number;
}

export const sessionQuietArb = (serverHours: number): fc.Arbitrary<SessionQuietSpec> => fc.record({
  seed: seedArb,
  // Large meshes: the same server-hours in fewer ticks (each tick judges every server anyway).
  regions: fc.integer({ min: 200, max: 400 }),
  zones: fc.integer({ min: 3, max: 5 }),
  serverHours: fc.constant(serverHours),
  meanCutIntervalMs: fc.integer({ min: 300_000, max: 1_800_000 }),
  meanMassCutIntervalMs: fc.integer({ min: 300_000, max: 1_800_000 }),
});

/**
 * Healthy servers under the standard network model for `serverHours`, their sessions cut at
 * random: one server's at a time (Poisson, per server) and, now and then, every session at once.
 * What keeps this long run affordable, and why it still tests what it claims: lease renewals are
 * left out (`leaseRenewals: false`: they feed only the lease book, never the failure detector, and
 * would be most of the messages), and so is the safety checker after every tick (it costs more than
 * the run; the other session properties check safety with sessions and renewals on).
 */
export function runSessionQuiet(s: SessionQuietSpec): Findings & { serverHours: number; suspicions: number; cuts: number; massCuts: number } {
  const run = new SimRun({ seed: s.seed, regions: s.regions, zones: s.zones, fleet: { sessions: { leaseRenewals: false } } });
  const sessions = run.fleet.sessions as SessionLayer;
  run.onPersist(() => sessions.changed(run.nowMs));
  const durationMs = Math.ceil((s.serverHours * 3_600_000) / run.servers.length / 1000) * 1000;
  const meanGapMs = s.meanCutIntervalMs / run.servers.length;
  let cuts = 0;
  let massCuts = 0;
  let nextCut = run.workload.exponential(meanGapMs);
  let nextMass = run.workload.exponential(s.meanMassCutIntervalMs);
  while (Math.min(nextCut, nextMass) < durationMs) {
    if (nextCut <= nextMass) {
      cutAt(run, sessions, Math.round(nextCut), [run.pick(run.servers)], 0);
      cuts++;
      nextCut += run.workload.exponential(meanGapMs);
    } else {
      cutAt(run, sessions, Math.round(nextMass), undefined, run.workload.chance(0.5) ? 0 : run.workload.int(100, 1_500));
      massCuts++;
      nextMass += run.workload.exponential(s.meanMassCutIntervalMs);
    }
  }
  run.advanceTo(durationMs + 20_000);
  const problems = healthyRunProblems(run, sessions);
  const suspicions = run.events.filter((e) => e.type === 'server_status_changed' && e.to === 'suspect').length;
  return { problems, safety: [], lostState: [], serverHours: run.serverHours(), suspicions, cuts, massCuts };
}

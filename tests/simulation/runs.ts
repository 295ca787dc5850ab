/**
 * The scenarios behind the simulation properties, as plain functions of a printable spec, so that
 * the property tests and the regression-seed replay run exactly the same code. Each returns what
 * it measured plus the problems it found (empty lists when every guarantee held).
 */
import { Coordinator } from '../../mesh/core/coordinator.ts';
import fc from 'fast-check';
import { capacityAllows, criticalOrderingProblems, failoverRecords, livenessProblems, recoverableCoverage } from '../../mesh/simulation/checkers.ts';
import type { SimRun } from '../../mesh/simulation/scenario.ts';
import { LeaseChecker } from '../../mesh/simulation/lease-checker.ts';
import { chooseCandidate } from '../../mesh/failover/placement.ts';
import { confirmedBackups } from '../../mesh/failover/topology.ts';
import type { RegionId, ServerId } from '../../mesh/base/types.ts';
import { applyFaultPlans, checkedRun, faultPlanArb, show, storeFaultKinds, type FaultPlan } from './harness.ts';

/** Problems found in one run, by kind (kept apart so a known bug of one kind hides nothing else). */
export interface Findings {
  /** Guarantees of the property itself (bounds, completion, liveness). */
  readonly problems: string[];
  /** Safety invariants checked after every tick and on every heartbeat. */
  readonly safety: string[];
  /** Regions served again after all their state was lost. */
  readonly lostState: string[];
}

const seedArb = fc.noShrink(fc.integer({ min: 1, max: 2 ** 31 - 1 }));

// ---- property 1: single failure ----------------------------------------------------------------

export interface SingleFailureSpec {
  readonly seed: number;
  readonly regions: number;
  readonly zones: number;
  readonly criticalPercent: number;
  readonly spareServers: number;
  readonly warmupMs: number;
  readonly crashOffsetMs: number;
}

export const singleFailureArb = (minWarmupMs: number, maxWarmupMs: number): fc.Arbitrary<SingleFailureSpec> => fc.record({
  seed: seedArb,
  regions: fc.integer({ min: 10, max: 200 }),
  zones: fc.integer({ min: 3, max: 5 }),
  criticalPercent: fc.integer({ min: 0, max: 20 }),
  spareServers: fc.integer({ min: 0, max: 3 }),
  warmupMs: fc.integer({ min: minWarmupMs, max: maxWarmupMs }),
  crashOffsetMs: fc.integer({ min: 1, max: 99 }),
});

/**
 * Crashes one random server that leads at least one region, between two ticks, and follows the
 * failover for 12 s (detection <= 5 s, then room for one aborted promotion and its retry).
 */
export function runSingleFailure(s: SingleFailureSpec): Findings & { detection: number[]; recovery: number[] } {
  const { run, safety } = checkedRun({
    seed: s.seed, regions: s.regions, zones: s.zones, spareServers: s.spareServers,
    criticalRegions: Math.round((s.regions * s.criticalPercent) / 100), playersPerRegion: 10,
  });
  run.advanceTo(s.warmupMs);
  const victim = run.pick(run.primaries());
  const led = [...run.coordinator.records().regions.values()].filter((r) => r.primary === victim).map((r) => r.id).sort();
  const crashAt = s.warmupMs + s.crashOffsetMs;
  run.inject({ target: { serverId: victim }, mode: 'crash' }, crashAt);
  run.advanceTo(crashAt + 12_000);

  const problems: string[] = [];
  const records = failoverRecords(run.coordinator);
  const failedOver = records.map((r) => r.regionId).sort();
  if (show(failedOver) !== show(led)) problems.push(`failovers of ${show(failedOver)} but ${victim} led ${show(led)}`);
  for (const r of records) {
    if (r.failedServerId !== victim) problems.push(`${r.regionId} failed over from ${r.failedServerId}, not ${victim}`);
    if (r.outcome !== 'completed') problems.push(`${r.regionId} failover ended ${r.outcome}: ${show(r)}`);
    if (r.detectionMs > 5000) problems.push(`${r.regionId} detected ${r.detectionMs.toFixed(0)} ms after the last heartbeat (> 5 s)`);
    const region = run.coordinator.records().regions.get(r.regionId);
    if (!region || region.primary === null || region.primary === victim || !region.primaryAcked) {
      problems.push(`${r.regionId} has no acknowledged new primary`);
    }
  }
  if (run.coordinator.metrics().falseFailovers > 0) problems.push('a false failover was counted');
  return {
    problems, safety: safety.violations, lostState: safety.lostState,
    detection: records.map((r) => r.detectionMs), recovery: records.map((r) => r.recoveryMs ?? Infinity),
  };
}

// ---- property 2: mass failure ------------------------------------------------------------------

export interface MultiFailureSpec {
  readonly seed: number;
  readonly zones: number;
  readonly criticalRegions: number;
  readonly warmupMs: number;
  readonly crashOffsetMs: number;
}

export const multiFailureArb: fc.Arbitrary<MultiFailureSpec> = fc.record({
  seed: seedArb,
  zones: fc.integer({ min: 3, max: 5 }),
  criticalRegions: fc.integer({ min: 10, max: 100 }),
  warmupMs: fc.integer({ min: 20_000, max: 40_000 }),
  crashOffsetMs: fc.integer({ min: 1, max: 99 }),
});

/**
 * 30% of the servers of a 1,000-region mesh crash at once; the run goes on for 20 s. Returns the
 * recovery of every region that failed over, the time from the crash until regions that kept their
 * primary had all their backups again, and the regions that lost every replica.
 */
export function runMultiFailure(s: MultiFailureSpec): Findings & { recovery: number[]; rereplication: number[]; lostAll: number; revived: string[] } {
  const { run, safety } = checkedRun({
    seed: s.seed, regions: 1000, zones: s.zones, criticalRegions: s.criticalRegions, playersPerRegion: 20, fleet: { playersPerRegion: 2 },
  });
  const crashAt = s.warmupMs + s.crashOffsetMs;
  run.advanceTo(crashAt);
  run.fleet.runUntil(crashAt);
  const before = new Map([...run.coordinator.records().regions.values()].map((r) => [r.id, { primary: r.primary, confirmed: confirmedBackups(r) }]));
  const injected = run.inject({ target: { fraction: 0.3 }, mode: 'crash' }, crashAt);
  const crashed = new Set<ServerId | null>(injected.ok ? injected.value.serverIds : []);
  const activeAgain = trackReturnToActive(run);
  const waitedForJudgement = trackWaitsForPromotable(run);
  const leaseEnds = trackLeaseEnds(run);
  run.advanceTo(crashAt + 20_000);

  const problems: string[] = [];
  const recovery: number[] = [];
  const rereplication: number[] = [];
  const revived: string[] = [];
  let lostAll = 0;
  const records = new Map(failoverRecords(run.coordinator).map((r) => [r.regionId, r]));
  const open = new Set(run.coordinator.listAlerts({ state: 'open' }).filter((a) => a.severity === 'critical').map((a) => a.dedupKey));
  for (const [id, was] of before) {
    const region = run.coordinator.records().regions.get(id);
    if (!region) continue;
    const survivors = was.confirmed.filter((b) => !crashed.has(b));
    if (!crashed.has(was.primary)) {
      if (region.primary !== was.primary) problems.push(`${id} lost its surviving primary ${was.primary}`);
      if (was.confirmed.some((b) => crashed.has(b))) {
        const at = activeAgain.get(id);
        if (at === undefined) problems.push(`${id} never got its backups back`);
        else rereplication.push(at - crashAt);
      }
    } else if (survivors.length > 0) {
      const r = records.get(id);
      if (!r || r.outcome !== 'completed' || r.recoveryMs === null) problems.push(`${id} did not complete its failover: ${show(r)}`);
      else if (r.recoveryMs > 5000) problems.push(`${id} recovered in ${r.recoveryMs.toFixed(0)} ms (> 5 s): ${show(r)}`);
      else recovery.push(r.recoveryMs);
    } else {
      lostAll++;
      if (region.phase !== 'unavailable' || !open.has(`region-unavailable:${id}`)) revived.push(`${id} lost every replica but is ${region.phase}`);
    }
  }
  const firstPromotion = new Map<RegionId, number>();
  // A second promotion: the first promoted backup had crashed too and was declared failed since.
  const promotedAgain = new Set<RegionId>();
  for (const e of run.events) {
    if (e.type !== 'failover_initiated') continue;
    if (firstPromotion.has(e.regionId)) promotedAgain.add(e.regionId);
    else firstPromotion.set(e.regionId, e.atMs);
  }
  const waited = new Set([...waitedForJudgement, ...promotedAgain]);
  problems.push(...criticalOrderingProblems([...records.values()], firstPromotion, waited, leaseEnds, run.tickMs));
  problems.push(...run.fleet.ledger.violations().slice(0, 5));
  return { problems, safety: safety.violations, lostState: safety.lostState, recovery, rereplication, lostAll, revived };
}

/**
 * Regions that, after some tick, had no primary and confirmed backups of which none could be
 * promoted (suspect ones): they wait for the detector's judgement, whatever their priority.
 */
function trackWaitsForPromotable(run: SimRun): Set<RegionId> {
  const waited = new Set<RegionId>();
  run.onTick(() => {
    const { topology } = Coordinator.partsForTests(run.coordinator);
    for (const r of topology.regions.values()) {
      if (r.primary === null && confirmedBackups(r).length > 0 && chooseCandidate(topology, r) === null) waited.add(r.id);
    }
  });
  return waited;
}

/** When each region that lost its primary may promote a backup: the lost primary's lease plus its margin (its fence). */
function trackLeaseEnds(run: SimRun): Map<RegionId, number> {
  const ends = new Map<RegionId, number>();
  const { leases } = Coordinator.partsForTests(run.coordinator);
  run.onTick(() => {
    for (const r of run.coordinator.records().regions.values()) {
      if (r.lostPrimary !== null && !ends.has(r.id)) ends.set(r.id, leases.fenceOf(r.lostPrimary.serverId));
    }
  });
  return ends;
}

/** Records when each region that left `active` was back to it. */
function trackReturnToActive(run: SimRun): Map<RegionId, number> {
  const impaired = new Set<RegionId>();
  const activeAt = new Map<RegionId, number>();
  run.onTick((now) => {
    for (const r of run.coordinator.records().regions.values()) {
      if (r.phase !== 'active') impaired.add(r.id);
      else if (impaired.has(r.id) && !activeAt.has(r.id)) activeAt.set(r.id, now);
    }
  });
  return activeAt;
}

// ---- properties 3, 4, 5: faults, then healing --------------------------------------------------

export interface FaultsSpec {
  readonly seed: number;
  readonly regions: number;
  readonly zones: number;
  readonly serverCapacity: number;
  readonly spareServers: number;
  readonly players: number;
  readonly actionsPerSecond: number;
  readonly bufferPerPlayer: number;
  readonly bufferAgeMs: number;
  readonly faults: readonly FaultPlan[];
}

export const faultsArb = (options: { maxRegions: number; windowMs: number; maxFaults: number; players: boolean }): fc.Arbitrary<FaultsSpec> => fc.record({
  seed: seedArb,
  regions: fc.integer({ min: 5, max: options.maxRegions }),
  zones: fc.integer({ min: 2, max: 5 }),
  serverCapacity: fc.integer({ min: 3, max: 12 }),
  spareServers: fc.integer({ min: 0, max: 3 }),
  players: options.players ? fc.integer({ min: 1, max: 4 }) : fc.constant(0),
  actionsPerSecond: fc.integer({ min: 1, max: 10 }),
  bufferPerPlayer: fc.integer({ min: 2, max: 30 }),
  bufferAgeMs: fc.integer({ min: 1000, max: 10_000 }),
  faults: faultPlanArb(options.windowMs, options.maxFaults),
});

/** How long after the last fault ends the mesh must be whole again (see liveness.test.ts). */
export const healBoundMs = 10_000;

/**
 * Warm-up 10 s, the planned faults, then healing: returns when (after the last fault ended) the
 * liveness checker first found nothing wrong, and what it found at the end (after the bound and a
 * further 10 s, so that a mesh that heals and breaks again is caught too).
 */
export function runFaultsThenHeal(s: FaultsSpec): Findings & {
  healMs: number | null; rejected: number; accepted: number; expired: number; coordinatorFaults: { crashes: number; restores: number };
  leaseChecks: number; storage: { failedWrites: number; slowWrites: number; answered: number; abortsJudged: number; longWaits: number };
} {
  const { run, safety, durability } = checkedRun({
    seed: s.seed, regions: s.regions, zones: s.zones, serverCapacity: s.serverCapacity, spareServers: s.spareServers, criticalRegions: 1,
    playersPerRegion: 5, config: { actionBufferMaxPerPlayer: s.bufferPerPlayer, actionBufferMaxAgeMs: s.bufferAgeMs },
    fleet: { playersPerRegion: s.players, actionsPerSecond: s.actionsPerSecond },
    coordinatorFaults: s.faults.some((f) => f.kind === 'coordinator'),
    storeFaults: s.faults.some((f) => (storeFaultKinds as readonly string[]).includes(f.kind)),
  });
  if (s.players > 0) playersOfStrandedRegions(run, s.actionsPerSecond);
  const lease = new LeaseChecker(run.fleet);
  run.advanceTo(10_000);
  const healAt = applyFaultPlans(run, s.faults, 10_000);
  let healedAt: number | null = null;
  for (let t = healAt + run.tickMs; t <= healAt + healBoundMs; t += run.tickMs) {
    run.advanceTo(t);
    if (livenessProblems(run.coordinator, run.fleet).length === 0) {
      healedAt = t;
      break;
    }
  }
  run.advanceTo(healAt + healBoundMs + Math.max(10_000, s.bufferAgeMs));
  const problems = livenessProblems(run.coordinator, run.fleet).map((p) => `after healing: ${p}`);
  if (healedAt === null) problems.unshift(`not healed within ${healBoundMs} ms of the last fault's end`);
  problems.push(...safety.accountingProblems(), ...run.fleet.ledger.violations().slice(0, 5));
  problems.push(...run.reusedEventIds.map((id) => `event id ${id} published twice`));
  problems.push(...(durability?.endProblems() ?? []));
  const c = run.coordinator.metrics().actions;
  return {
    problems, safety: [...safety.violations, ...lease.violations, ...(durability?.violations ?? [])], lostState: safety.lostState, healMs: healedAt === null ? null : healedAt - healAt,
    rejected: c.rejected, accepted: c.buffered, expired: c.expired, coordinatorFaults: { ...run.coordinatorFaultsDone },
    leaseChecks: lease.checks,
    storage: { failedWrites: run.store?.counts.failed ?? 0, slowWrites: run.store?.counts.slow ?? 0,
      answered: durability?.answeredCount ?? 0, abortsJudged: durability?.abortsJudged ?? 0, longWaits: durability?.longWaits ?? 0 },
  };
}

/**
 * A player in every region that has no primary to route to without a failover in progress (an
 * unavailable region, or one whose promotion waits): the fleet's players only act between
 * failover_initiated and failover_completed, so without this no action would ever grow old
 * enough to expire.
 */
function playersOfStrandedRegions(run: SimRun, actionsPerSecond: number): void {
  const seqs = new Map<RegionId, number>();
  run.onTick((now) => {
    for (const region of run.coordinator.records().regions.values()) {
      if (region.phase !== 'unavailable' || !run.workload.chance((actionsPerSecond * run.tickMs) / 1000)) continue;
      const seq = (seqs.get(region.id) ?? 0) + 1;
      const result = run.coordinator.submitAction(region.id, { playerId: 'stranded', seq, payload: { seq } }, now);
      if (result.ok && result.value.status === 'buffered') {
        seqs.set(region.id, seq);
        run.fleet.ledger.accepted(region.id, 'stranded', seq);
      }
    }
  });
}

export interface ReplicationSpec {
  readonly seed: number;
  readonly regions: number;
  readonly zones: number;
  readonly serverCapacity: number;
  readonly spareServers: number;
  /** Share of the servers crashed, in percent, one at a time over 10 s. */
  readonly crashPercent: number;
}

export const replicationArb: fc.Arbitrary<ReplicationSpec> = fc.record({
  seed: seedArb,
  regions: fc.integer({ min: 10, max: 120 }),
  zones: fc.integer({ min: 2, max: 5 }),
  serverCapacity: fc.integer({ min: 3, max: 12 }),
  spareServers: fc.integer({ min: 0, max: 3 }),
  crashPercent: fc.integer({ min: 5, max: 50 }),
});

/**
 * Crashes servers one by one over 10 s (they stay down 40 s), lets the mesh settle, checks that
 * every region that is not unavailable has its primary and full backups wherever capacity allows;
 * then the servers restart empty, and after another settling period every recoverable region must
 * have every replica (coverage 1.0), since the whole fleet's capacity is back.
 */
export function runReplication(s: ReplicationSpec): Findings & { starved: number; coverageDown: number; coverageBack: number } {
  const { run, safety } = checkedRun({ seed: s.seed, regions: s.regions, zones: s.zones, serverCapacity: s.serverCapacity, spareServers: s.spareServers });
  run.advanceTo(15_000);
  const count = Math.max(1, Math.round((run.servers.length * s.crashPercent) / 100));
  const downUntil = 15_000 + 40_000;
  for (let i = 0; i < count; i++) {
    const at = 15_000 + Math.floor((i * 10_000) / count) + 7;
    run.advanceTo(at);
    const live = [...run.coordinator.records().servers.values()].filter((x) => x.status === 'alive').map((x) => x.id).sort();
    if (live.length > 0) run.inject({ target: { serverId: run.pick(live) }, mode: 'crash', durationMs: downUntil - at }, at);
  }
  run.advanceTo(downUntil - 100);
  const problems = livenessProblems(run.coordinator, run.fleet).map((p) => `while servers were down: ${p}`);
  const starved = [...run.coordinator.records().regions.values()]
    .filter((r) => r.phase !== 'unavailable' && confirmedBackups(r).length < r.backupTarget && !capacityAllows(run.coordinator, r)).length;
  const coverageDown = recoverableCoverage(run.coordinator);
  run.advanceTo(downUntil + 15_000);
  problems.push(...livenessProblems(run.coordinator, run.fleet).map((p) => `after the restarts: ${p}`));
  const coverageBack = recoverableCoverage(run.coordinator);
  if (coverageBack !== 1) problems.push(`coverage of recoverable regions ${coverageBack.toFixed(4)} after the restarts, not 1`);
  return { problems, safety: safety.violations, lostState: safety.lostState, starved, coverageDown, coverageBack };
}

// ---- property 6: no false failovers ------------------------------------------------------------

export interface QuietSpec {
  readonly seed: number;
  readonly regions: number;
  readonly zones: number;
  readonly serverHours: number;
}

export const quietArb = (serverHours: number): fc.Arbitrary<QuietSpec> => fc.record({
  seed: seedArb,
  regions: fc.integer({ min: 40, max: 120 }),
  zones: fc.integer({ min: 3, max: 5 }),
  serverHours: fc.constant(serverHours),
});

/** A long run with no injected fault under the standard network model (1% heartbeat loss). */
export function runQuiet(s: QuietSpec): Findings & { serverHours: number; suspicions: number } {
  const { run, safety } = checkedRun({ seed: s.seed, regions: s.regions, zones: s.zones });
  const durationMs = Math.ceil((s.serverHours * 3_600_000) / run.servers.length / 1000) * 1000;
  run.advanceTo(durationMs);
  const m = run.coordinator.metrics();
  const problems: string[] = [];
  if (m.falseFailovers !== 0) problems.push(`${m.falseFailovers} false failovers`);
  if (m.failovers.total !== 0) problems.push(`${m.failovers.total} failovers without any fault: ${show(m.recent.slice(0, 3))}`);
  const failures = run.events.filter((e) => e.type === 'server_failure_detected');
  if (failures.length > 0) problems.push(`servers declared failed without any fault: ${show(failures.slice(0, 3))}`);
  const suspicions = run.events.filter((e) => e.type === 'server_status_changed' && e.to === 'suspect').length;
  return { problems, safety: safety.violations, lostState: safety.lostState, serverHours: run.serverHours(), suspicions };
}

/**
 * Mass failure: the cost of the coordinator tick in which 30% of a 10,000-server, 10,000-region
 * mesh is declared failed, the memory such a mesh takes, and recovery times when 30% of a
 * 1,000-region mesh fails.
 *
 * 1. One-tick mass failure (each repetition in its own child process, fresh meshes and seeds).
 *    `setupTestMesh` builds 10,000 regions (5% critical) on 10,000 simulated servers of capacity 5
 *    in 3 zones (30,000 replicas, 3 per server); the fleet heartbeats through the standard network
 *    model for `warmup` simulated seconds, ticking every 100 ms. Right after a regular tick a random
 *    30% of the servers crash; the fleet keeps running (heartbeats arrive, peers report the silence),
 *    and the coordinator's next tick comes 1,900 ms later (tiltThresholdMs - tickIntervalMs, the
 *    longest gap it does not take for its own stall). By then every crashed server has been silent
 *    1.9-2.9 s and its surviving peers have reported it, so that single tick declares (nearly) all
 *    3,000 failures, promotes a backup in every region that lost its primary and assigns
 *    replacement backups. (A crashed server whose last heartbeat before the crash was lost may
 *    already be declared at the regular tick; the table counts them.)
 *    Measured: `coordinator.tick(now)` for that one tick, with process.hrtime.bigint(), nothing
 *    else (the simulator's message handling before it and the effect hand-over after it are
 *    outside the timed section). A full GC runs just before it, so that garbage from the warm-up
 *    is not charged to the tick; collections caused by the tick's own allocations are included.
 *    Next to the wall-clock time, the CPU the tick's own thread got and the CPU V8's other threads
 *    (optimising compiler, garbage collector) took meanwhile, from /proc (schedstat, in
 *    nanoseconds; 10 ms ticks of /proc's stat where the kernel has no schedstat). On a 2-core VM
 *    those threads compete with the tick for the cores unless V8's pool is sized to the machine,
 *    as `npm start` does (`--v8-pool-size=0`; `npm run bench` runs the bench with the start
 *    script's node options, and the child processes inherit them).
 *    Two meshes per process: the first ("cold") is the first real failover work the process does,
 *    so its failover code runs before the JIT has optimised it, as in a coordinator's first mass
 *    failure; the second ("warm", seed + 1000) comes after the first has exercised the same code.
 *    A third mesh, the warm one again, runs with `maxBackupAssignmentsPerTick` unlimited: with the
 *    default budget (500) the tick's promotions use it up (promotions come first and count against
 *    it) and every replacement backup is left to the following ticks; this shows what the tick
 *    costs when it assigns all of them.
 *    "Warm" is relative: every new mesh and every mass failure changes what V8 has learnt (a new
 *    mesh's objects, and the allocation sites V8 decides to pretenure after a mass failure's
 *    collections, invalidate optimised failure-path code), so during the second mesh's tick the
 *    optimising compiler is still at work on helper threads (`--trace-opt`, one process of five
 *    meshes: TurboFan jobs taking 330 ms finished during the first mesh's tick, 37, 71 and 65 ms
 *    during the second to fourth, 8 ms during the fifth). A fourth and a fifth mesh (seeds + 2000,
 *    + 3000) therefore run too, and the fifth is measured: the tick of a process that has been
 *    through four mass failures.
 *    After the measured tick the mesh runs on for 6 s of regular ticks, each also timed.
 * 2. Memory (RSS and V8 heap used after a full GC): the first mesh above after warm-up, which is
 *    what the service holds for a 10,000-server `POST /mesh/setup_test` (coordinator + simulated
 *    fleet), and, in a separate process, the coordinator alone for 10,000 self-registered servers
 *    driven directly through `coordinator.heartbeat` (no simulator), which is what the service
 *    holds for real servers. Baseline RSS of the process before the mesh is built is shown. `npm run bench` runs the bench bundled, without the TypeScript loader (as the service runs after `npm start`); run alone under tsx, every RSS reading is about 40 MiB higher.
 * 3. 30% of a 1,000-region mesh (setup as in tests: 500 servers of capacity 10, 50 critical
 *    regions, 10 simulated players per region) crashes at once under regular ticks; recovery time
 *    per failover from `metrics()` (completed_at - last heartbeat of the failed primary).
 *
 * 4. Attribution: one more process repeats the warm measurement under the sampling profiler and
 *    prints the functions where that tick spent its time (skip with --no-profile).
 *
 * Run alone: node --expose-gc --import tsx bench/mass-failure.bench.ts [--reps 5] [--warmup 10] [--no-profile] [--quick]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Coordinator } from '../mesh/core/coordinator.ts';
import { testMeshConfig, type MeshConfig } from '../mesh/base/config.ts';
import { SeededRandom } from '../mesh/runtime/random.ts';
import { immediateDurability, MeshRuntime } from '../mesh/runtime/runtime.ts';
import { setupTestMesh } from '../mesh/simulation/setup.ts';
import { buildDirectMesh, driveRounds } from './lib/direct-mesh.ts';
import { hotFunctions, profileSection } from './lib/profile.ts';
import { booleanFlag, collectGarbage, elapsedMs, heading, memoryAfterGc, mib, ms, num, numberFlag, quick, stringFlag, table, verdict } from './lib/report.ts';
import { median, summarize } from './lib/stats.ts';
import { threadCpu, threadCpuSince, threadCpuSource } from './lib/thread-cpu.ts';
import { FaultLayer } from '../mesh/faults/fault-layer.ts';

const failFraction = 0.3;
/** The 200 MB, read as 200 x 10^6 bytes (190.7 MiB), the stricter reading. */
const rssTargetBytes = 200e6;

/** Result of one one-tick mass failure. */
interface TickResult {
  readonly seed: number;
  readonly servers: number;
  readonly regions: number;
  readonly crashed: number;
  /** Crashed servers declared at a regular tick before the measured one (their last heartbeat before the crash was lost). */
  readonly declaredBefore: number;
  readonly declaredInTick: number;
  readonly promotionsInTick: number;
  readonly backupsAssignedInTick: number;
  readonly eventsInTick: number;
  readonly tickMs: number;
  /** CPU of the main thread and of all other threads (V8's compiler and GC helpers) during the tick. */
  readonly tickCpu: { mainMs: number; helpersMs: number } | null;
  readonly followingTickMaxMs: number;
  readonly followingTicksOver100Ms: number;
  readonly followingTicksTotalMs: number;
  readonly healthyTickMedianMs: number;
  readonly buildMs: number;
  readonly warmupWallMs: number;
  readonly failoversCompleted: number;
  readonly failoversFailed: number;
  readonly failoversInProgress: number;
  readonly recoveryMaxMs: number;
  /** Last failover completion after the measured tick, minus the measured tick's time. */
  readonly lastCompletionAfterTickMs: number;
  /** Where the measured tick spent its time, when it was profiled. */
  readonly hot: ReturnType<typeof hotFunctions> | null;
}

/** Memory reading of the first mesh of a process. */
interface MemoryResult {
  readonly baselineRss: number;
  readonly baselineHeapUsed: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly gcRun: boolean;
}

function oneTickMassFailure(seed: number, regions: number, capacity: number, warmupMs: number,
  onWarm?: () => void, profile = false, config: MeshConfig = testMeshConfig): TickResult {
  const random = new SeededRandom(seed);
  const coordinator = new Coordinator(config, 0);
  const faults = new FaultLayer(coordinator, random.fork());
  const events = new Map<string, number>();
  let lastCompletionMs = 0;
  const runtime = new MeshRuntime(faults, 0, immediateDurability((e) => {
    events.set(e.type, (events.get(e.type) ?? 0) + 1);
    if (e.type === 'failover_completed') lastCompletionMs = Math.max(lastCompletionMs, e.atMs);
  }));
  const built = process.hrtime.bigint();
  const mesh = setupTestMesh(coordinator, random.fork(), {
    regions, serverCapacity: capacity, zones: 3, criticalRegions: Math.round(regions / 20), playersPerRegion: 10,
  }, 0);
  if (!mesh.ok) throw new Error(mesh.detail);
  runtime.fleet = mesh.value.fleet;
  const buildMs = elapsedMs(built);

  // Every tick goes through this wrapper, which times coordinator.tick alone.
  const tickMs: { atMs: number; ms: number }[] = [];
  const tick = coordinator.tick.bind(coordinator);
  let collectBeforeNextTick = false;
  let hot: TickResult['hot'] = null;
  let tickCpu: TickResult['tickCpu'] = null;
  coordinator.tick = (nowMs: number) => {
    const measured = collectBeforeNextTick;
    if (measured) collectGarbage();
    collectBeforeNextTick = false;
    const cpuBefore = measured ? threadCpu() : null;
    const start = process.hrtime.bigint();
    // A declaration, so that its name survives bundling and the TypeScript loader alike.
    function timedTick(): void {
      tick(nowMs);
    }
    if (measured && profile) hot = hotFunctions(profileSection(timedTick).profile, 25, tickCode, 'timedTick');
    else tick(nowMs);
    tickMs.push({ atMs: nowMs, ms: elapsedMs(start) });
    if (measured) tickCpu = threadCpuSince(cpuBefore);
  };

  const warmStart = process.hrtime.bigint();
  runtime.advanceTo(warmupMs);
  const warmupWallMs = elapsedMs(warmStart);
  const healthyTickMedianMs = median(tickMs.slice(-100).map((t) => t.ms));
  onWarm?.();

  // Crash 30% right after the last regular tick, then skip to one tick as late as possible without
  // the coordinator taking the gap for its own stall (TILT).
  const lastRegularTick = warmupMs;
  const injected = runtime.injectFailure({ target: { fraction: failFraction }, mode: 'crash' }, lastRegularTick);
  if (!injected.ok) throw new Error(injected.detail);
  runtime.advanceTo(lastRegularTick);
  const failedBefore = coordinator.counts().statuses.failed;
  events.clear();
  const assignedBefore = countSyncing(coordinator);
  collectBeforeNextTick = true;
  const { tiltThresholdMs, tickIntervalMs } = coordinator.config;
  const measuredAt = lastRegularTick + tiltThresholdMs - tickIntervalMs;
  runtime.advanceTo(measuredAt, false);
  const measured = tickMs[tickMs.length - 1];
  if (measured === undefined || measured.atMs !== measuredAt) throw new Error('the measured tick did not run');
  const declaredInTick = coordinator.counts().statuses.failed - failedBefore;
  const promotionsInTick = events.get('failover_initiated') ?? 0;
  const eventsInTick = [...events.values()].reduce((a, b) => a + b, 0);
  const backupsAssignedInTick = countSyncing(coordinator) - assignedBefore;

  const following = tickMs.length;
  runtime.advanceTo(measuredAt + 6000);
  const after = tickMs.slice(following).map((t) => t.ms);
  const metrics = coordinator.metrics();
  return {
    seed, servers: coordinator.records().servers.size, regions: coordinator.records().regions.size,
    crashed: injected.value.serverIds.length, declaredBefore: failedBefore, declaredInTick, promotionsInTick, backupsAssignedInTick, eventsInTick,
    tickMs: measured.ms, tickCpu, followingTickMaxMs: Math.max(...after), followingTicksOver100Ms: after.filter((v) => v > 100).length,
    followingTicksTotalMs: after.reduce((a, b) => a + b, 0), healthyTickMedianMs, buildMs, warmupWallMs,
    failoversCompleted: metrics.failovers.completed, failoversFailed: metrics.failovers.failed,
    failoversInProgress: metrics.failovers.in_progress, recoveryMaxMs: metrics.recoveryMs.max,
    lastCompletionAfterTickMs: lastCompletionMs - measuredAt, hot,
  };
}

/**
 * The scripts whose functions the profile lists: mesh/ without mesh/simulation/ when run under the
 * TypeScript loader; bundled (as `npm run bench` runs it), every function is in this one script,
 * and within the timed tick only mesh/ code runs.
 */
function tickCode(url: string): boolean {
  return url.includes('/mesh/') ? !url.includes('/mesh/simulation/') : url === import.meta.url;
}

/** Backups assigned and not yet confirmed, over every region. */
function countSyncing(coordinator: Coordinator): number {
  let n = 0;
  for (const region of coordinator.records().regions.values()) n += region.syncing.size;
  return n;
}

/**
 * Child process: the cold and the warm one-tick measurement and the memory of the first mesh.
 */
function childTick(seed: number, warmupMs: number, regions: number, capacity: number): void {
  const baseline = memoryAfterGc();
  let memory: MemoryResult | null = null;
  const cold = oneTickMassFailure(seed, regions, capacity, warmupMs, () => {
    const m = memoryAfterGc();
    memory = { baselineRss: baseline.rss, baselineHeapUsed: baseline.heapUsed, rss: m.rss, heapUsed: m.heapUsed,
      heapTotal: m.heapTotal, gcRun: m.gcRun };
  });
  const warm = oneTickMassFailure(seed + 1000, regions, capacity, warmupMs);
  // The same warm mesh without the re-replication budget: every replacement backup in the one tick.
  const unbudgeted = oneTickMassFailure(seed + 1000, regions, capacity, warmupMs, undefined, false,
    { ...testMeshConfig, maxBackupAssignmentsPerTick: Number.MAX_SAFE_INTEGER });
  // Two more meshes: the process's fourth mass failure warms the JIT further, the fifth is measured.
  oneTickMassFailure(seed + 2000, regions, capacity, warmupMs);
  const fifth = oneTickMassFailure(seed + 3000, regions, capacity, warmupMs);
  console.log(`RESULT ${JSON.stringify({ cold, warm, unbudgeted, fifth, memory })}`);
}

/** Child process: a cold mesh to warm the JIT up, then a profiled warm mesh (not counted in the timings). */
function childProfile(seed: number, warmupMs: number, regions: number, capacity: number): void {
  oneTickMassFailure(seed, regions, capacity, warmupMs);
  const warm = oneTickMassFailure(seed + 1000, regions, capacity, warmupMs, undefined, true);
  console.log(`RESULT ${JSON.stringify(warm)}`);
}

/** Child process: memory of the coordinator alone with 10,000 directly driven servers. */
function childDirectMemory(servers: number, regions: number, capacity: number, rounds: number): void {
  const baseline = memoryAfterGc();
  const mesh = buildDirectMesh({ servers, regions, capacity, zones: 3, seed: 1 });
  driveRounds(mesh, 0, rounds);
  const m = memoryAfterGc();
  const status = mesh.coordinator.status(rounds * 1000);
  console.log(`RESULT ${JSON.stringify({ servers: mesh.ids.length, regions: mesh.coordinator.records().regions.size,
    baselineRss: baseline.rss, baselineHeapUsed: baseline.heapUsed, rss: m.rss,
    heapUsed: m.heapUsed, heapTotal: m.heapTotal, gcRun: m.gcRun, alive: status.servers.alive, active: status.regions.active })}`);
}

function spawnChild(args: string[]): unknown {
  const script = fileURLToPath(import.meta.url);
  // The same flags as this process: a bundled bench's children run without the TypeScript loader too.
  const child = spawnSync(process.execPath, [...process.execArgv, script, ...args], {
    encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (child.status !== 0) throw new Error(`child ${args.join(' ')} exited with ${child.status}\n${child.stdout}`);
  const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (line === undefined) throw new Error(`child ${args.join(' ')} printed no result:\n${child.stdout}`);
  return JSON.parse(line.slice('RESULT '.length));
}

/** 30% of a 1,000-region mesh fails under regular ticks; recovery per failover from metrics(). */
function thousandRegions(seed: number) {
  const random = new SeededRandom(seed);
  const coordinator = new Coordinator(testMeshConfig, 0);
  const faults = new FaultLayer(coordinator, random.fork());
  // First promotion of each region, as (time, event sequence): the order in which work was done.
  const firstPromotion = new Map<string, { atMs: number; seq: number }>();
  let promotions = 0;
  const runtime = new MeshRuntime(faults, 0, immediateDurability((e) => {
    if (e.type !== 'failover_initiated') return;
    promotions += 1;
    if (!firstPromotion.has(e.regionId)) firstPromotion.set(e.regionId, { atMs: e.atMs, seq: e.seq });
  }));
  const mesh = setupTestMesh(coordinator, random.fork(), { regions: 1000, criticalRegions: 50, playersPerRegion: 10 }, 0,
    { playersPerRegion: 10 });
  if (!mesh.ok) throw new Error(mesh.detail);
  runtime.fleet = mesh.value.fleet;
  runtime.advanceTo(20_000);
  const injected = runtime.injectFailure({ target: { fraction: failFraction }, mode: 'crash' }, 20_050);
  if (!injected.ok) throw new Error(injected.detail);
  runtime.advanceTo(40_000);
  const m = coordinator.metrics();
  const records = coordinator.regions().map((r) => r.lastFailover).filter((f) => f !== null);
  const completed = records.filter((f) => f.outcome === 'completed');
  const critical = completed.filter((f) => f.critical).map((f) => f.recoveryMs ?? Number.NaN);
  const other = completed.filter((f) => !f.critical).map((f) => f.recoveryMs ?? Number.NaN);
  // Priority applies to one batch of work: among regions whose primary was detected failed in the
  // same tick, a critical region's first promotion must not come after a non-critical one's.
  const order = (regionId: string) => firstPromotion.get(regionId) ?? { atMs: Infinity, seq: Infinity };
  const later = (a: { atMs: number; seq: number }, b: { atMs: number; seq: number }) => a.atMs > b.atMs || (a.atMs === b.atMs && a.seq > b.seq);
  let criticalAfterOther = 0;
  for (const c of completed.filter((f) => f.critical)) {
    const firstOther = completed.filter((o) => !o.critical && o.detectedAtMs === c.detectedAtMs)
      .map((o) => order(o.regionId)).reduce((a, b) => (later(a, b) ? b : a), { atMs: Infinity, seq: Infinity });
    if (later(order(c.regionId), firstOther)) criticalAfterOther += 1;
  }
  return {
    seed, servers: mesh.value.servers.length, crashed: injected.value.serverIds.length, failovers: m.failovers,
    recovery: m.recoveryMs, criticalMax: Math.max(...critical), otherMax: Math.max(...other),
    criticalAfterOther, repromotions: promotions - firstPromotion.size, unavailable: coordinator.status(40_000).regions.unavailable,
    ledgerViolations: mesh.value.fleet.ledger.violations().length,
  };
}

function parent(): void {
  const q = quick();
  const reps = numberFlag('reps', q ? 1 : 5);
  const warmupS = numberFlag('warmup', q ? 5 : 10);
  const regions = numberFlag('regions', q ? 2000 : 10_000);
  const capacity = 5;
  const started = process.hrtime.bigint();

  const results: { cold: TickResult; warm: TickResult; unbudgeted: TickResult; fifth: TickResult; memory: MemoryResult }[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const args = ['--child', 'tick', '--seed', String(rep + 1), '--warmup', String(warmupS), '--regions', String(regions),
      '--capacity', String(capacity)];
    results.push(spawnChild(args) as (typeof results)[number]);
  }
  const profiled = booleanFlag('no-profile') ? null : spawnChild(['--child', 'profile', '--seed', String(reps + 1),
    '--warmup', String(warmupS), '--regions', String(regions), '--capacity', String(capacity)]) as TickResult;
  const direct = spawnChild(['--child', 'direct-memory', '--regions', String(regions), '--capacity', String(capacity)]) as
    MemoryResult & { servers: number; regions: number; alive: number; active: number };
  const thousand = [1, 2, 3, 4, 5].slice(0, q ? 2 : 5).map(thousandRegions);

  const first = results[0];
  if (first === undefined) throw new Error('no repetition ran');
  heading(`One tick in which ${failFraction * 100}% of a ${num(first.cold.servers)}-server, ${num(first.cold.regions)}-region mesh fails`);
  console.log(`coordinator.tick() of the tick that declares the failures, promotes and assigns backups; ${reps} ` +
    `repetitions, each in its own process (seeds 1..${reps} 1st mesh, 1001..${1000 + reps} 2nd, 3001..${3000 + reps} 5th mesh); warm-up ${warmupS} s of heartbeats; ` +
    'GC forced just before the timed tick.\n');
  console.log(table(['rep', 'seed', 'crashed', 'declared before', 'declared in tick', 'declared later', 'promotions in tick', 'backups assigned in tick',
    'events in tick', 'tick, 1st mesh', 'tick, 2nd mesh', 'declared in tick (2nd)'], results.map((r, i) => [
    String(i + 1), String(r.cold.seed), num(r.cold.crashed), num(r.cold.declaredBefore), num(r.cold.declaredInTick),
    num(r.cold.crashed - r.cold.declaredBefore - r.cold.declaredInTick), num(r.cold.promotionsInTick),
    num(r.cold.backupsAssignedInTick), num(r.cold.eventsInTick), ms(r.cold.tickMs),
    ms(r.warm.tickMs), num(r.warm.declaredInTick),
  ])));
  const cold = results.map((r) => r.cold.tickMs);
  const warmResults = results.map((r) => r.warm);
  const warm = warmResults.map((r) => r.tickMs);
  const unbudgeted = results.map((r) => r.unbudgeted.tickMs);
  const all = results.flatMap((r) => [r.cold, r.warm]);
  /** Median, min and max of `values`, formatted. */
  const spread = (values: number[], format: (v: number) => string = ms) =>
    [format(median(values)), format(Math.min(...values)), format(Math.max(...values))];
  /**
   * A tick-time row. The tick has no target of its own any more: what matters to servers is that no
   * heartbeat reply waits long during a mass failure, which the heartbeat-http bench measures.
   */
  const tickRow = (label: string, values: number[]) => [label, ...spread(values), '', ''];
  /** A row of one quantity over every mesh, without a target. */
  const meshRow = (label: string, of: (r: TickResult) => number, format: (v: number) => string = ms) =>
    [label, ...spread(all.map(of), format), '', ''];
  /** Rows of the tick's CPU split by thread, where /proc gave it. */
  const cpuRows = (label: string, of: TickResult[]) => {
    const cpu = of.map((r) => r.tickCpu).filter((c) => c !== null);
    if (cpu.length === 0) return [];
    return [[`  ${label}: CPU of the tick's own thread (${threadCpuSource})`, ...spread(cpu.map((c) => c.mainMs)), '', ''],
      [`  ${label}: CPU of V8's other threads meanwhile (optimising compiler, GC)`, ...spread(cpu.map((c) => c.helpersMs)), '', '']];
  };
  console.log('');
  console.log(table(['quantity', 'median', 'min', 'max', 'target', 'verdict (median)'], [
    tickRow('mass-failure tick, 1st of the process', cold),
    ...cpuRows('1st', results.map((r) => r.cold)),
    tickRow('mass-failure tick, 2nd of the process', warm),
    ...cpuRows('2nd', warmResults),
    tickRow('same warm mesh, backup budget unlimited (every replacement backup in this tick)', unbudgeted),
    tickRow('mass-failure tick, 5th mesh of the process (JIT settled further)', results.map((r) => r.fifth.tickMs)),
    ...cpuRows('5th mesh', results.map((r) => r.fifth)),
    ['  backups assigned in that tick, budgeted / unlimited (medians)', `${num(median(warmResults.map((r) => r.backupsAssignedInTick)))} / ` +
      `${num(median(results.map((r) => r.unbudgeted.backupsAssignedInTick)))}`, '', '', '', ''],
    meshRow('healthy tick just before (median of last 100)', (r) => r.healthyTickMedianMs),
    meshRow('slowest of the 60 ticks after the measured one', (r) => r.followingTickMaxMs),
    meshRow('ticks over 100 ms among those 60', (r) => r.followingTicksOver100Ms, num),
    meshRow('tick time summed over those 60 (6 s)', (r) => r.followingTicksTotalMs),
    meshRow('last failover completed, after the measured tick', (r) => r.lastCompletionAfterTickMs),
    meshRow('recovery max (from last heartbeat; includes the deliberate tick gap)', (r) => r.recoveryMaxMs),
  ]));
  console.log(`\nFailovers 6 s after the tick (all ${all.length} meshes): completed ${all.map((r) => r.failoversCompleted).join(', ')}; ` +
    `failed (no replica left) ${all.map((r) => r.failoversFailed).join(', ')}; in progress ${all.map((r) => r.failoversInProgress).join(', ')}.`);
  console.log(`Wall-clock per mesh: build ${ms(median(all.map((r) => r.buildMs)))}, warm-up ${ms(median(all.map((r) => r.warmupWallMs)))} (medians).`);

  if (profiled !== null && profiled.hot !== null) {
    heading('Where the mass-failure tick spends its time (sampling profile, 100 µs)');
    console.log(`An extra process (seed ${profiled.seed}, after an unprofiled mesh warmed the JIT up) profiled its measured tick: ` +
      `${ms(profiled.tickMs)} under the profiler, ${num(profiled.declaredInTick)} failures declared. Not part of the timings above. ` +
      'Functions of mesh/ (not mesh/simulation/) only, plus the garbage collector; bundled, file names are the bundle\'s. ' +
      'Inclusive time includes callees.\n');
    console.log(table(['file: function', 'inclusive', 'self'], profiled.hot.map((h) => [h.name, ms(h.inclusiveMs), ms(h.selfMs)])));
  }

  heading(`Memory of the ${num(first.cold.servers)}-server, ${num(first.cold.regions)}-region mesh (after a full GC)`);
  const memRows = results.map((r) => r.memory);
  const rssMedian = median(memRows.map((m) => m.rss));
  console.log(table(['what', 'RSS', 'heap used', 'baseline RSS (process before the mesh)', 'baseline heap used', 'target', 'verdict'], [
    [`coordinator + simulated fleet (setup_test), median of ${memRows.length}`, mib(rssMedian), mib(median(memRows.map((m) => m.heapUsed))),
      mib(median(memRows.map((m) => m.baselineRss))), mib(median(memRows.map((m) => m.baselineHeapUsed))), '<= 200 MB (190.7 MiB) RSS',
      verdict(rssMedian <= rssTargetBytes)],
    [`  range over ${memRows.length} processes`, `${mib(Math.min(...memRows.map((m) => m.rss)))} - ${mib(Math.max(...memRows.map((m) => m.rss)))}`,
      `${mib(Math.min(...memRows.map((m) => m.heapUsed)))} - ${mib(Math.max(...memRows.map((m) => m.heapUsed)))}`, '', '', '', ''],
    [`coordinator alone, ${num(direct.servers)} self-registered servers, ${num(direct.regions)} regions, 20 heartbeat rounds`, mib(direct.rss), mib(direct.heapUsed),
      mib(direct.baselineRss), mib(direct.baselineHeapUsed), '<= 200 MB (190.7 MiB) RSS', verdict(direct.rss <= rssTargetBytes)],
  ]));
  if (!first.memory.gcRun) console.log('\n(no --expose-gc: readings are without a forced GC)');

  heading(`${failFraction * 100}% of a 1,000-region mesh fails at once (regular ticks)`);
  console.log(table(['seed', 'servers', 'crashed', 'failovers', 'completed', 'failed (no replica)', 'in progress',
    'recovery p50', 'recovery p99', 'recovery max', 'critical max', 'others max', 'target', 'verdict'],
  thousand.map((t) => [String(t.seed), num(t.servers), num(t.crashed), num(t.failovers.total), num(t.failovers.completed),
    num(t.failovers.failed), num(t.failovers.in_progress), ms(t.recovery.p50), ms(t.recovery.p99), ms(t.recovery.max),
    ms(t.criticalMax), ms(t.otherMax), 'every completed <= 5,000 ms, none in progress',
    verdict(t.recovery.max <= 5000 && t.failovers.in_progress === 0)])));
  const worst = summarize(thousand.map((t) => t.recovery.max));
  console.log(`\nRecovery max over ${thousand.length} seeds: ${ms(worst.max)} (median of the per-seed maxima ${ms(worst.p50)}). ` +
    `Critical regions first promoted after a non-critical region detected in the same tick: ` +
    `${thousand.map((t) => t.criticalAfterOther).join(', ')} (per seed). Repromotions (a promoted backup had crashed too and ` +
    `was detected later): ${thousand.map((t) => t.repromotions).join(', ')}. Action-ledger violations: ${thousand.map((t) => t.ledgerViolations).join(', ')}.`);
  console.log(`\nBench wall-clock: ${ms(elapsedMs(started))}.`);
}

const child = stringFlag('child');
if (child === 'tick') {
  childTick(numberFlag('seed', 1), numberFlag('warmup', 10) * 1000, numberFlag('regions', 10_000), numberFlag('capacity', 5));
} else if (child === 'profile') {
  childProfile(numberFlag('seed', 1), numberFlag('warmup', 10) * 1000, numberFlag('regions', 10_000), numberFlag('capacity', 5));
} else if (child === 'direct-memory') {
  // Servers as setupTestMesh creates them at 60% utilisation: regions x 3 replicas / (capacity x 0.6).
  const regions = numberFlag('regions', 10_000);
  const capacity = numberFlag('capacity', 5);
  childDirectMemory(Math.ceil((regions * 3) / (capacity * 0.6)), regions, capacity, 20);
} else {
  parent();
}

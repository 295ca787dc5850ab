/**
 * Persistence: the change-log store (lowdb snapshot + append-only log) side by side with the
 * previous whole-document store (bench/lib/whole-document-store.ts), in one run, on this machine's
 * disk (fsync included), with the service's host (`RunningMesh`) over a 10,000-region test mesh.
 *
 * 1. Bytes written for one single failover: one server that leads a region crashes; everything the
 *    store writes from the crash until the failover completed and the lost backups are replaced.
 * 2. One action's durable 202 at 1,000 actions/s: `host.runDurably(submitAction)` for 5 s (100
 *    players, one region without an announced primary), latency from the call to its resolution;
 *    several runs, the stores alternating, so that the machine's load falls on both alike.
 * 3. A 30% mass failure's write (the records of 66% of the regions and 30% of the servers), several
 *    times: the longest the event loop was held while it was made (monitorEventLoopDelay: what a
 *    heartbeat or a tick arriving meanwhile waits at most; the old store's synchronous export and
 *    JSON.stringify, the new one's slices), the loop's busy time per 100 ms window
 *    (eventLoopUtilization: all of it persistence here, but no longer in one piece), and the time
 *    until durable. The main thread's own CPU time in its longest turn (Linux schedstat) tells what
 *    the code costs apart from the time other work on a shared machine holds the core meanwhile.
 *    Also the longest block while a snapshot of the whole mesh is rewritten.
 * 4. Restart: `RunningMesh.open` (read, replay, check, rebuild) of a 10,000-region snapshot plus
 *    100,000 log records, and of the old whole-document file of the same mesh, several times each.
 *
 * Run alone: node --expose-gc --import tsx bench/persistence.bench.ts [--regions 10000] [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Coordinator } from '../mesh/core/coordinator.ts';
import { setTimeout as delay } from 'node:timers/promises';
import { defaultMeshConfig } from '../mesh/base/config.ts';
import { ManualClock, type Clock } from '../mesh/base/ports.ts';
import { regionId, serverId, type PlayerId } from '../mesh/base/types.ts';
import { createLogger } from '../src/logger.ts';
import { RunningMesh } from '../src/mesh-host.ts';
import { LowdbStore } from '../src/store/lowdb-store.ts';
import { recordsOfState } from '../mesh/core/change-records.ts';
import type { CoreState } from '../mesh/core/state.ts';
import { dataFileProblem } from '../src/store/data-file-schema.ts';
import type { Store } from '../src/store/store.ts';
import { WholeDocumentStore } from './lib/whole-document-store.ts';
import { heading, ms, num, numberFlag, quick, table, verdict } from './lib/report.ts';
import { mainThreadCpu } from './lib/thread-cpu.ts';
import { median, summarize } from './lib/stats.ts';

const q = quick();
const REGIONS = numberFlag('regions', q ? 1000 : 10_000);
const log = createLogger({ level: 'error', sink: { write: () => true } });
const dirs: string[] = [];
process.once('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const freshDir = () => { const d = mkdtempSync(join(tmpdir(), 'mesh-bench-persist-')); dirs.push(d); return d; };

type Kind = 'whole document' | 'change log';
interface Built { host: RunningMesh; clock: ManualClock; bytes: () => number; store: Store; dir: string }

/** A host on the manual clock over a 10,000-region test mesh, warmed up, with a byte counter. */
async function build(kind: Kind): Promise<Built> {
  const dir = freshDir();
  const clock = new ManualClock(0);
  let host: RunningMesh | undefined;
  let logBytes = 0;
  const store = kind === 'change log'
    ? new LowdbStore({ dataDir: dir, onWritten: (_ms, bytes) => { logBytes += bytes; }, compaction: { maxLogRecords: 1_000_000, maxLogBytes: 2 ** 31 } })
    : new WholeDocumentStore(dir, () => (host as RunningMesh).coordinator.exportState(clock.now()));
  host = await RunningMesh.open({ config: defaultMeshConfig, clock, store, seed: 1, log });
  const created = await host.setupTest({ regions: REGIONS, zones: 3, serverCapacity: 5, criticalRegions: REGIONS / 20 });
  if (!created.ok) throw new Error(created.detail);
  await host.advance(5_000);
  const bytes = () => (store instanceof WholeDocumentStore ? store.bytes : logBytes);
  return { host, clock, bytes, store, dir };
}

async function singleFailover(b: Built): Promise<{ bytes: number; writes: number }> {
  const c = b.host.coordinator;
  const victim = [...c.records().regions.values()].find((r) => r.primary !== null)?.primary as string;
  // Notes of earlier changes that ride along with the next write (heartbeats' incarnations) are
  // written first: they are not the failover's.
  await b.host.runDurably((core) => core.updateRegion([...core.records().regions.keys()][0] as never, { players: 10 }));
  const [bytes0, writes0] = [b.bytes(), b.store.writes()];
  const injected = b.host.injectFailure({ target: { serverId: serverId(victim) }, mode: 'crash', durationMs: 600_000 });
  if (!injected.ok) throw new Error(injected.detail);
  for (let i = 0; i < 300 && !(c.metrics().failovers.completed >= 1 && c.counts().phases.under_replicated === 0); i++) await b.host.advance(100);
  return { bytes: b.bytes() - bytes0, writes: b.store.writes() - writes0 };
}

async function actionLatency(kind: Kind): Promise<number[]> {
  const dir = freshDir();
  const clock: Clock = { now: () => Date.now() };
  let host: RunningMesh | undefined;
  const store = kind === 'change log' ? new LowdbStore({ dataDir: dir })
    : new WholeDocumentStore(dir, () => (host as RunningMesh).coordinator.exportState(Date.now()));
  host = await RunningMesh.open({ config: defaultMeshConfig, clock, store, seed: 1, log });
  const created = await host.setupTest({ regions: REGIONS, zones: 3, serverCapacity: 5 });
  if (!created.ok) throw new Error(created.detail);
  const h = host;
  for (const id of ['a1', 'a2', 'a3']) h.run((c, now) => c.registerServer({ id, address: '10.0.0.1:1', zone: id, capacity: 2 }, now));
  await h.runDurably((c, now) => c.createRegions([{ id: 'inbox' }], now));
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const seconds = q ? 1 : 5;
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor(performance.now() - started);
    for (; sent < due; sent++) {
      const t0 = performance.now();
      const n = sent;
      pending.push(h.runDurably((c, now) => c.submitAction(regionId('inbox'), { playerId: `p${n % 100}` as PlayerId, seq: Math.floor(n / 100), payload: { n } }, now, { knownEpoch: 1 }))
        .then((r) => { if (!(r as { ok: boolean }).ok) throw new Error(JSON.stringify(r)); latencies.push(performance.now() - t0); }));
    }
    await delay(1);
  }
  await Promise.all(pending);
  await h.close();
  return latencies;
}

interface MassWrite { blockMs: number; cpuBlockMs: number; perWindowMs: number; writeMs: number; cpuMs: number }

/**
 * The disk's floor under a durable 202: appending 300 bytes and fdatasync, one after the other, for
 * as many rounds as a second allows (at most 1,000). A 202's p99 cannot be below this one's.
 */
async function fsyncLatency(): Promise<number[]> {
  const handle = await open(join(freshDir(), 'probe.log'), 'a');
  const line = Buffer.alloc(300, 0x61);
  const latencies: number[] = [];
  const started = performance.now();
  try {
    while (latencies.length < 1000 && performance.now() - started < 1000) {
      const t0 = performance.now();
      await handle.write(line);
      await handle.datasync();
      latencies.push(performance.now() - t0);
    }
  } finally {
    await handle.close();
  }
  return latencies;
}

/**
 * The write that follows a 30% mass failure: it carries the records of about 66% of the regions
 * (1 - 0.7^3 lose a replica) and of 30% of the servers. The bench changes exactly those and
 * measures their write alone, so that the core's tick is not counted as persistence.
 */
async function massFailureWrite(b: Built, rep: number): Promise<MassWrite> {
  const c = b.host.coordinator;
  const regions = [...c.records().regions.keys()];
  const servers = [...c.records().servers.keys()];
  // The changes themselves (the core's work) are not persistence: they are made, and the loop
  // settles, before the watch starts and the host hands them to the store.
  for (const id of regions.slice(0, Math.round(regions.length * 0.66))) c.updateRegion(id, { players: rep + 2 });
  const { topology } = Coordinator.partsForTests(c);
  for (const id of servers.slice(0, Math.round(servers.length * 0.3))) topology.changedServers.add(id);
  global.gc?.();
  await delay(20);
  const loop = watchLoop();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await b.host.durable(b.host.flush());
  const writeMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ...loop.stop(), writeMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** The longest snapshot rewrite block: the whole mesh folded into mesh.json in the background. */
async function snapshotRewrite(b: Built): Promise<{ blockMs: number; cpuBlockMs: number; ms: number }> {
  const store = b.store as LowdbStore;
  global.gc?.();
  const loop = watchLoop();
  const t0 = performance.now();
  await (store as unknown as { startSnapshot(): Promise<void> }).startSnapshot();
  await store.settled();
  const ms = performance.now() - t0;
  return { ...loop.stop(), ms };
}

/**
 * Watches the event loop: its longest delay (a 1 ms timer's lateness), the main thread's own CPU time
 * in its longest turn (between two turns of a 1 ms timer; what a block costs this process, apart from
 * the time other work on the shared machine holds the core) and its busiest 100 ms window.
 */
function watchLoop(): { restart: () => void; stop: () => { blockMs: number; cpuBlockMs: number; perWindowMs: number } } {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let cpuBlockMs = 0;
  let lastCpu = mainThreadCpu();
  const cpuSampler = setInterval(() => {
    const cpu = mainThreadCpu();
    if (cpu !== null && lastCpu !== null) cpuBlockMs = Math.max(cpuBlockMs, cpu - lastCpu);
    lastCpu = cpu;
  }, 1);
  const windows: number[] = [];
  let elu = performance.eventLoopUtilization();
  const sampler = setInterval(() => {
    const next = performance.eventLoopUtilization();
    windows.push(performance.eventLoopUtilization(next, elu).active);
    elu = next;
  }, 100);
  delay.enable();
  return {
    restart: () => {
      delay.reset();
      elu = performance.eventLoopUtilization();
      cpuBlockMs = 0;
    },
    stop: () => {
      clearInterval(sampler);
      clearInterval(cpuSampler);
      delay.disable();
      windows.push(performance.eventLoopUtilization(performance.eventLoopUtilization(), elu).active);
      return { blockMs: delay.max / 1e6, cpuBlockMs, perWindowMs: Math.max(...windows) };
    },
  };
}

/** Leaves on disk what a restart reads: the change log's 100,000 records, or the whole document. */
async function prepareRestart(kind: Kind, b: Built): Promise<number> {
  if (kind === 'whole document') {
    await b.host.durable(b.host.flush());
    return 0;
  }
  // The mesh as a snapshot first, then the log records after it, as a running service leaves them.
  await (b.store as unknown as { startSnapshot(): Promise<void> }).startSnapshot();
  await (b.store as LowdbStore).settled();
  const ids = [...b.host.coordinator.records().regions.keys()];
  const target = q ? 10_000 : 100_000;
  let logRecords = 0;
  for (let i = 0; logRecords < target; i++) {
    await b.host.runDurably((core) => { for (let k = 0; k < 1000; k++) core.updateRegion(ids[(i * 1000 + k) % ids.length] as never, { players: i + 2 }); return null; });
    logRecords += 1000;
  }
  return logRecords;
}

/** One restart, SIGKILL-like (nothing flushed or folded): a new host reads what is on disk. */
async function restart(kind: Kind, b: Built): Promise<number> {
  const store = kind === 'change log' ? new LowdbStore({ dataDir: b.dir }) : legacyReader(b.dir);
  global.gc?.();
  const t0 = performance.now();
  const host = await RunningMesh.open({ config: defaultMeshConfig, clock: new ManualClock(b.clock.now()), store, seed: 1, log, checkState: dataFileProblem });
  const took = performance.now() - t0;
  if (host.coordinator.records().regions.size < REGIONS) throw new Error('restart lost regions');
  // Not closed: closing would fold the log into the snapshot, and the next run must read the same files.
  return took;
}

/** The old file read as the service reads a format-1 file today. */
function legacyReader(dir: string): LowdbStore {
  return new LowdbStore({ dataDir: dir, legacyRecords: (state) => recordsOfState(state as CoreState) });
}

interface KindResult {
  failover: { bytes: number; writes: number };
  action: { p50: number; p99: number }[];
  mass: MassWrite[];
  restart: number[];
  logRecords: number;
}

const REPS = q ? 2 : 5;
const ACTION_RUNS = q ? 1 : 3;

async function main(): Promise<void> {
  heading(`Persistence: change log vs whole document, ${num(REGIONS)} regions`);
  const kinds = ['whole document', 'change log'] as const;
  const result = {} as Record<Kind, KindResult>;
  const snapshot: { blockMs: number; cpuBlockMs: number; ms: number }[] = [];
  for (const kind of kinds) {
    const failover = await singleFailover(await build(kind));
    const massBuilt = await build(kind);
    const mass: MassWrite[] = [];
    for (let rep = 0; rep < REPS; rep++) mass.push(await massFailureWrite(massBuilt, rep));
    if (kind === 'change log') for (let rep = 0; rep < 3; rep++) snapshot.push(await snapshotRewrite(massBuilt));
    const restartBuilt = await build(kind);
    const logRecords = await prepareRestart(kind, restartBuilt);
    const restarts: number[] = [];
    for (let rep = 0; rep < REPS; rep++) restarts.push(await restart(kind, restartBuilt));
    result[kind] = { failover, action: [], mass, restart: restarts, logRecords };
  }
  // Alternating runs, so that a busy moment of the shared machine does not fall on one store only.
  const fsyncs: { p50: number; p99: number }[] = [];
  for (let run = 0; run < ACTION_RUNS; run++) {
    for (const kind of kinds) {
      global.gc?.();
      const latencies = summarize(await actionLatency(kind));
      result[kind].action.push({ p50: latencies.p50, p99: latencies.p99 });
    }
    const fsync = summarize(await fsyncLatency());
    fsyncs.push({ p50: fsync.p50, p99: fsync.p99 });
  }
  const table1 = rows(result, snapshot);
  table1.splice(2, 0, ['  the disk alone: 300-byte append + fdatasync, p50 / p99 per run', '', fsyncs.map((f) => `${ms(f.p50)} / ${ms(f.p99)}`).join('; '), 'none', '']);
  console.log(table(['measure', 'whole document (before)', 'change log (now)', 'ratio / target', 'verdict'], table1));
}

/** Median and worst of a series, as "median (worst)". */
const spread = (values: readonly number[]) =>
  `${ms(median(values))} (${ms(Math.max(...values))})`;

function rows(result: Record<Kind, KindResult>, snapshot: { blockMs: number; cpuBlockMs: number; ms: number }[]): string[][] {
  const old = result['whole document'];
  const now = result['change log'];
  const p99s = (k: KindResult) => k.action.map((a) => a.p99);
  const blocks = (k: KindResult) => k.mass.map((m) => m.blockMs);
  return [
    ['bytes written, one single failover', `${num(old.failover.bytes)} (${old.failover.writes} writes)`, `${num(now.failover.bytes)} (${now.failover.writes} writes)`,
      `${num((100 * now.failover.bytes) / old.failover.bytes, 2)}% (target <= 1%)`, verdict(now.failover.bytes <= old.failover.bytes / 100)],
    [`202 latency at 1,000 actions/s, p50 / p99 per run (${ACTION_RUNS} runs, alternating)`, old.action.map((a) => `${ms(a.p50)} / ${ms(a.p99)}`).join('; '),
      now.action.map((a) => `${ms(a.p50)} / ${ms(a.p99)}`).join('; '), `median p99 ${num(median(p99s(now)) / median(p99s(old)), 3)}x; <= 10 ms`,
      verdict(median(p99s(now)) <= 10)],
    [`30% mass failure's write, longest loop block: median (worst) of ${REPS}`, spread(blocks(old)), spread(blocks(now)),
      `${num(median(blocks(now)) / median(blocks(old)), 2)}x; <= 10 ms`, verdict(median(blocks(now)) <= 10)],
    [`  same write: main-thread CPU time of its longest turn, median (worst) of ${REPS}`, spread(old.mass.map((m) => m.cpuBlockMs)),
      spread(now.mass.map((m) => m.cpuBlockMs)), 'none', ''],
    ['  same write: busiest 100 ms window of the loop; CPU time (process); time until durable (medians)',
      [old.mass.map((m) => m.perWindowMs), old.mass.map((m) => m.cpuMs), old.mass.map((m) => m.writeMs)].map((v) => ms(median(v))).join('; '),
      [now.mass.map((m) => m.perWindowMs), now.mass.map((m) => m.cpuMs), now.mass.map((m) => m.writeMs)].map((v) => ms(median(v))).join('; '), 'none', ''],
    ['snapshot rewrite of the whole mesh: longest loop block; its main-thread CPU; duration (medians of 3)', 'none (no snapshots)',
      [snapshot.map((x) => x.blockMs), snapshot.map((x) => x.cpuBlockMs), snapshot.map((x) => x.ms)].map((v) => ms(median(v))).join('; '), 'a few ms', ''],
    [`restart to ready (${num(now.logRecords)} log records): median (worst) of ${REPS}`, spread(old.restart), spread(now.restart),
      `${num(median(now.restart) / median(old.restart), 2)}x; <= 2,000 ms`, verdict(Math.max(...now.restart) <= 2000)],
  ];
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error);
  process.exit(1);
});

/**
 * Persistence: the change-log store (lowdb snapshot + append-only log) side by side with the
 * previous whole-document store (bench/lib/whole-document-store.ts), in one run, on this machine's
 * disk (fsync included), with the service's host (`RunningMesh`) over a 10,000-region test mesh.
 *
 * 1. Bytes written for one single failover: one server that leads a region crashes; everything the
 *    store writes from the crash until the failover completed and the lost backups are replaced.
 * 2. One action's durable 202 at 1,000 actions/s: `host.runDurably(submitAction)` for 5 s (100
 *    players, one region without an announced primary), latency from the call to its resolution.
 * 3. A 30% mass failure's write (the records of 66% of the regions and 30% of the servers):
 *    event-loop time per 100 ms window while it is made (eventLoopUtilization; the old store: its
 *    synchronous export and JSON.stringify; the new one: taking the records, then serialising in
 *    slices), and the longest single block (the old store's export and stringify, the new one's
 *    taking of the records; its serialisation slices are at most a few ms each).
 * 4. Restart: `RunningMesh.open` (read, replay, check, rebuild) of a 10,000-region snapshot plus
 *    100,000 log records, and of the old whole-document file of the same mesh.
 *
 * Run alone: node --expose-gc --import tsx bench/persistence.bench.ts [--regions 10000] [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
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
import { summarize } from './lib/stats.ts';

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

/**
 * The write that follows a 30% mass failure: it carries the records of about 66% of the regions
 * (1 - 0.7^3 lose a replica) and of 30% of the servers. The bench changes exactly those and
 * measures their write alone, so that the core's tick is not counted as persistence.
 */
async function massFailureWrite(b: Built): Promise<{ perTickMs: number; blockMs: number; writeMs: number }> {
  const c = b.host.coordinator;
  const regions = [...c.records().regions.keys()];
  const servers = [...c.records().servers.keys()];
  b.host.run((core) => {
    for (const id of regions.slice(0, Math.round(regions.length * 0.66))) core.updateRegion(id, { players: 1 });
    const { topology } = Coordinator.partsForTests(core);
    for (const id of servers.slice(0, Math.round(servers.length * 0.3))) topology.changedServers.add(id);
    return null;
  });
  global.gc?.();
  const windows: number[] = [];
  // The longest synchronous block: the old store's export and stringify, the new one's take.
  let takeMs = 0;
  const take = c.takeChanges.bind(c);
  c.takeChanges = (nowMs) => { const t = performance.now(); const batch = take(nowMs); takeMs = performance.now() - t; return batch; };
  let elu = performance.eventLoopUtilization();
  const sampler = setInterval(() => {
    const next = performance.eventLoopUtilization();
    windows.push(performance.eventLoopUtilization(next, elu).active);
    elu = next;
  }, 100);
  const t0 = performance.now();
  await b.host.durable(b.host.flush());
  const writeMs = performance.now() - t0;
  clearInterval(sampler);
  windows.push(performance.eventLoopUtilization(performance.eventLoopUtilization(), elu).active);
  c.takeChanges = take;
  const blockMs = b.store instanceof WholeDocumentStore ? (b.store.serialiseMs.at(-1) ?? NaN) : takeMs;
  return { perTickMs: Math.max(...windows), blockMs, writeMs };
}

async function restart(kind: Kind, b: Built): Promise<{ ms: number; logRecords: number }> {
  let logRecords = 0;
  if (kind === 'change log') {
    const c = b.host.coordinator;
    const ids = [...c.records().regions.keys()];
    const target = q ? 10_000 : 100_000;
    for (let i = 0; logRecords < target; i++) {
      await b.host.runDurably((core) => { for (let k = 0; k < 1000; k++) core.updateRegion(ids[(i * 1000 + k) % ids.length] as never, { players: i + 2 }); return null; });
      logRecords += 1000;
    }
  } else {
    await b.host.durable(b.host.flush());
  }
  // SIGKILL-like: nothing flushed or folded; a new host reads what is on disk.
  const store = kind === 'change log'
    ? new LowdbStore({ dataDir: b.dir })
    : legacyReader(b.dir);
  global.gc?.();
  const t0 = performance.now();
  const host = await RunningMesh.open({ config: defaultMeshConfig, clock: new ManualClock(b.clock.now()), store, seed: 1, log, checkState: dataFileProblem });
  const took = performance.now() - t0;
  if (host.coordinator.records().regions.size < REGIONS) throw new Error('restart lost regions');
  return { ms: took, logRecords };
}

/** The old file read as the service reads a format-1 file today. */
function legacyReader(dir: string): LowdbStore {
  return new LowdbStore({ dataDir: dir, legacyRecords: (state) => recordsOfState(state as CoreState) });
}

async function main(): Promise<void> {
  heading(`Persistence: change log vs whole document, ${num(REGIONS)} regions`);
  const rows: string[][] = [];
  const result: Record<Kind, { failover: { bytes: number; writes: number }; action: number[]; mass: Awaited<ReturnType<typeof massFailureWrite>>; restart: { ms: number; logRecords: number } }> = {} as never;
  for (const kind of ['whole document', 'change log'] as const) {
    const failover = await singleFailover(await build(kind));
    const action = await actionLatency(kind);
    const mass = await massFailureWrite(await build(kind));
    const restartBuilt = await build(kind);
    const restarted = await restart(kind, restartBuilt);
    result[kind] = { failover, action, mass, restart: restarted };
  }
  const old = result['whole document'];
  const now = result['change log'];
  const a = (k: Kind) => summarize(result[k].action);
  rows.push(['bytes written, one single failover', `${num(old.failover.bytes)} (${old.failover.writes} writes)`, `${num(now.failover.bytes)} (${now.failover.writes} writes)`,
    `${num((100 * now.failover.bytes) / old.failover.bytes, 2)}% (target <= 1%)`, verdict(now.failover.bytes <= old.failover.bytes / 100)]);
  rows.push(['202 latency at 1,000 actions/s, p50 / p99', `${ms(a('whole document').p50)} / ${ms(a('whole document').p99)}`,
    `${ms(a('change log').p50)} / ${ms(a('change log').p99)}`, 'p99 <= 10 ms', verdict(a('change log').p99 <= 10)]);
  rows.push(['loop time in persistence per tick, 30% mass failure (longest block)', `${ms(old.mass.perTickMs)} (${ms(old.mass.blockMs)})`,
    `${ms(now.mass.perTickMs)} (${ms(now.mass.blockMs)})`, '<= 10 ms per tick', verdict(now.mass.perTickMs <= 10)]);
  rows.push([`restart to ready (${num(now.restart.logRecords)} log records)`, ms(old.restart.ms), ms(now.restart.ms), '<= 2,000 ms', verdict(now.restart.ms <= 2000)]);
  console.log(table(['measure', 'whole document (before)', 'change log (now)', 'ratio / target', 'verdict'], rows));
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error);
  process.exit(1);
});

/**
 * The etcd store side by side with the embedded lowdb store, in one run: a real three-member etcd
 * cluster on loopback (tests/e2e/etcd-cluster.ts; Debian's `etcd`, fsync on every member) and a
 * lowdb data directory on this machine's disk, each under the service's host (`RunningMesh`) over a
 * 1,000-region test mesh (500 simulated servers of capacity 10, 50 critical regions).
 *
 * 1. Write latency, from the command to its durability (`host.runDurably`): a one-region change
 *    (one region record plus the `meta` record), repeated; and the write that follows a 30% mass
 *    failure (the records of 66% of the regions and 30% of the servers, as bench/persistence does),
 *    which on etcd exceeds one transaction's 128 operations and goes through the large-batch path.
 * 2. Recovery: 30% of the servers crash at once while the host runs under the system clock and the
 *    real ticker (100 ms) with production timings; recovery per failover from `metrics()` (completed
 *    minus the failed primary's last heartbeat). Target: every region that kept a replica recovered
 *    within 5 s, with either store. `--trials` seeds, the two stores alternating.
 *
 * Run alone: node --expose-gc --import tsx bench/etcd-store.bench.ts [--reps 5] [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import { defaultMeshConfig } from '../mesh/base/config.ts';
import { ManualClock, type Clock } from '../mesh/base/ports.ts';
import { Coordinator } from '../mesh/core/coordinator.ts';
import { createLogger } from '../src/logger.ts';
import { RunningMesh } from '../src/mesh-host.ts';
import { createEtcdClient } from '../src/store/etcd-client.ts';
import { EtcdStore } from '../src/store/etcd-store.ts';
import { LowdbStore } from '../src/store/lowdb-store.ts';
import type { Store } from '../src/store/store.ts';
import { monotonicClock, processTimeSources } from '../src/system-clock.ts';
import { startTicker } from '../src/ticker.ts';
import { etcdBinary, startEtcdCluster } from '../tests/e2e/etcd-cluster.ts';
import { heading, ms, num, numberFlag, quick, table, verdict } from './lib/report.ts';
import { median, summarize } from './lib/stats.ts';

const q = quick();
const REPS = numberFlag('reps', q ? 2 : 5);
const ONE_RECORD_WRITES = q ? 20 : 100;
const RECOVERY_TRIALS = numberFlag('trials', q ? 1 : 3);
const SPEC = { regions: 1000, criticalRegions: 50, playersPerRegion: 10, serverCapacity: 10, zones: 3 } as const;
const log = createLogger({ level: 'error', sink: { write: () => true } });
const dirs: string[] = [];
process.once('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

type Kind = 'lowdb' | 'etcd';
let etcdClient: Etcd3 | undefined;
let prefixes = 0;

/** A fresh, empty store of the kind; `transactions` counts etcd transactions of the last write. */
function freshStore(kind: Kind, onTransactions: (n: number) => void): Store {
  if (kind === 'lowdb') {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-bench-etcd-lowdb-'));
    dirs.push(dir);
    return new LowdbStore({ dataDir: dir });
  }
  prefixes += 1;
  return new EtcdStore({ client: etcdClient as Etcd3, prefix: `/bench-${prefixes}`, onWritten: (_ms, n) => onTransactions(n) });
}

interface Latencies { oneRecord: number[]; mass: number[]; massRecords: number; massTransactions: number }

async function writeLatency(kind: Kind): Promise<Latencies> {
  let transactions = 0;
  const store = freshStore(kind, (n) => { transactions = n; });
  const host = await RunningMesh.open({ config: defaultMeshConfig, clock: new ManualClock(0), store, seed: 1, log });
  const created = await host.setupTest(SPEC);
  if (!created.ok) throw new Error(created.detail);
  await host.advance(3_000);
  const c = host.coordinator;
  const regions = [...c.records().regions.keys()];
  const servers = [...c.records().servers.keys()];
  const oneRecord: number[] = [];
  for (let i = 0; i < ONE_RECORD_WRITES; i++) {
    const t0 = performance.now();
    await host.runDurably((core) => core.updateRegion(regions[i % regions.length]!, { players: 20 + i }));
    oneRecord.push(performance.now() - t0);
  }
  const mass: number[] = [];
  let massRecords = 0;
  for (let rep = 0; rep < REPS; rep++) {
    host.run((core) => {
      for (const id of regions.slice(0, Math.round(regions.length * 0.66))) core.updateRegion(id, { players: 100 + rep });
      const { topology } = Coordinator.partsForTests(core);
      for (const id of servers.slice(0, Math.round(servers.length * 0.3))) topology.changedServers.add(id);
      return null;
    });
    const take = c.takeChanges.bind(c);
    c.takeChanges = (nowMs) => { const batch = take(nowMs); massRecords = batch.records.length; return batch; };
    const t0 = performance.now();
    await host.durable(host.flush());
    mass.push(performance.now() - t0);
    c.takeChanges = take;
  }
  const massTransactions = transactions;
  await host.close();
  return { oneRecord, mass, massRecords, massTransactions };
}

interface Recovery { crashed: number; completed: number; inProgress: number; failed: number; p50: number; max: number; unavailable: number }

/** 30% of the servers crash under the real clock and ticker; waits (bounded) for the failovers to end. */
async function recovery(kind: Kind, seed: number): Promise<Recovery> {
  const store = freshStore(kind, () => {});
  const clock: Clock = monotonicClock(processTimeSources);
  const host = await RunningMesh.open({ config: defaultMeshConfig, clock, store, seed, log, wallMs: processTimeSources.wallMs });
  const created = await host.setupTest(SPEC);
  if (!created.ok) throw new Error(created.detail);
  const ticker = startTicker(() => host.tick(), defaultMeshConfig.tickIntervalMs, (error) => { throw error; });
  try {
    await delay(q ? 4_000 : 8_000);
    const injected = host.injectFailure({ target: { fraction: 0.3 }, mode: 'crash' });
    if (!injected.ok) throw new Error(injected.detail);
    const deadline = performance.now() + 30_000;
    await delay(3_000);
    while (host.coordinator.metrics().failovers.in_progress > 0 && performance.now() < deadline) await delay(100);
    const m = host.coordinator.metrics();
    return {
      crashed: injected.value.serverIds.length, completed: m.failovers.completed, inProgress: m.failovers.in_progress,
      failed: m.failovers.failed, p50: m.recoveryMs.p50 ?? NaN, max: m.recoveryMs.max ?? NaN,
      unavailable: host.coordinator.status(host.now()).regions.unavailable,
    };
  } finally {
    ticker.stop();
    await host.close();
  }
}

async function main(): Promise<void> {
  if (etcdBinary() === undefined) {
    console.log('\n(etcd store bench skipped: etcd is not installed; apt-get install etcd-server)\n');
    return;
  }
  const cluster = await startEtcdCluster();
  etcdClient = await createEtcdClient({ endpoints: cluster.endpoints });
  try {
    const lat: Record<Kind, Latencies> = { lowdb: await writeLatency('lowdb'), etcd: await writeLatency('etcd') };
    const rec: Record<Kind, Recovery[]> = { lowdb: [], etcd: [] };
    for (let trial = 0; trial < RECOVERY_TRIALS; trial++) {
      for (const kind of ['lowdb', 'etcd'] as const) rec[kind].push(await recovery(kind, 7 + trial));
    }
    heading(`etcd store vs lowdb store: ${num(SPEC.regions)}-region mesh (3-member etcd on loopback; ${ONE_RECORD_WRITES} one-region writes, ${REPS} mass-failure writes)`);
    const one = (k: Kind) => summarize(lat[k].oneRecord);
    console.log(table(['measure', 'lowdb', 'etcd', 'etcd / lowdb'], [
      ['one-region write, p50 / p99', `${ms(one('lowdb').p50)} / ${ms(one('lowdb').p99)}`, `${ms(one('etcd').p50)} / ${ms(one('etcd').p99)}`,
        num(one('etcd').p50 / one('lowdb').p50, 1)],
      [`30% mass-failure write (${num(lat.etcd.massRecords)} records; etcd: ${lat.etcd.massTransactions} transactions), median`,
        ms(median(lat.lowdb.mass)), ms(median(lat.etcd.mass)), num(median(lat.etcd.mass) / median(lat.lowdb.mass), 1)],
    ]));
    heading(`30% of a 1,000-region mesh crashes (system clock, real ticker, production timings; ${RECOVERY_TRIALS} seeds per store)`);
    console.log(table(['store', 'seed', 'servers crashed', 'failovers completed / failed / in progress', 'regions unavailable (no replica left)',
      'recovery p50', 'recovery max', 'target', 'verdict'], rec.lowdb.flatMap((_, trial) => (['lowdb', 'etcd'] as const).map((k) => {
      const r = rec[k][trial]!;
      return [k, String(7 + trial), num(r.crashed), `${num(r.completed)} / ${num(r.failed)} / ${num(r.inProgress)}`, num(r.unavailable),
        ms(r.p50), ms(r.max), 'max <= 5,000 ms, none in progress', verdict(r.max <= 5000 && r.inProgress === 0)];
    }))));
  } finally {
    etcdClient.close();
    await cluster.stop();
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error);
  process.exit(1);
});

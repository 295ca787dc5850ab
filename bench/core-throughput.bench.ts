/**
 * Heartbeats per second through the pure core (`coordinator.heartbeat`, no HTTP, no simulator) with
 * 10,000 servers and 10,000 regions, and the cost of a healthy tick at that size.
 *
 * The mesh is built directly (bench/lib/direct-mesh.ts): 10,000 self-registered servers of
 * capacity 5 in 3 zones, 10,000 regions with a primary and two backups each (3 replicas per
 * server). Every server heartbeats once per second at its own phase, claiming its regions with a
 * fresh applied_seq and reporting its replication peers as just heard; the coordinator ticks every
 * 100 ms. Inputs are built before each round, outside the timed sections. Timed with
 * process.hrtime.bigint(): each block of heartbeats between two ticks (the heartbeat calls,
 * including the reply each returns), and each tick separately.
 *
 * One run = 10 simulated seconds = 100,000 heartbeats and 100 ticks; the table gives the median of
 * 7 runs (after one unmeasured warm-up run in the same process), with a full GC before each run.
 *
 * Lease renewal: every reply that names a server primary renews its lease, so renewing the leases
 * of all servers at R per second costs R heartbeats per server per second; the table gives the
 * share of one core that takes at the measured heartbeat rate for R = 1, 2, 5 and 10 (a session
 * that renews by push costs at least the bookkeeping alone, `LeaseBook.grant`, timed separately
 * over 100 rounds of one grant per server).
 *
 * Run alone: node --expose-gc --import tsx bench/core-throughput.bench.ts [--runs 7] [--servers 10000] [--quick]
 */
import type { HeartbeatInput } from '../mesh/core/heartbeat.ts';
import type { ServerId } from '../mesh/base/types.ts';
import { buildDirectMesh, heartbeatInputs, markAllDurable, type DirectMesh } from './lib/direct-mesh.ts';
import { collectGarbage, elapsedMs, heading, ms, num, numberFlag, quick, table } from './lib/report.ts';
import { median, summarize } from './lib/stats.ts';
import { LeaseBook } from '../mesh/failover/leases.ts';
import { defaultMeshConfig } from '../mesh/base/config.ts';

/** Nanoseconds per `LeaseBook.grant`, one grant per server per round, median over `runs` runs. */
function grantCostNs(ids: readonly ServerId[], runs: number): number {
  const book = new LeaseBook(defaultMeshConfig.leaseDriftMarginMs, defaultMeshConfig.primaryLeaseMs);
  const perGrant: number[] = [];
  for (let r = 0; r < runs + 1; r++) {
    const t0 = process.hrtime.bigint();
    for (let round = 0; round < 100; round++) for (const id of ids) book.grant(id, r * 100 + round, 2000);
    if (r > 0) perGrant.push(Number(process.hrtime.bigint() - t0) / (100 * ids.length));
  }
  return median(perGrant);
}

/** Runs `rounds` heartbeat intervals from `fromMs`, timing heartbeats and ticks separately. */
function timedRounds(mesh: DirectMesh, fromMs: number, rounds: number) {
  const { coordinator, ids } = mesh;
  const { heartbeatIntervalMs: interval, tickIntervalMs } = coordinator.config;
  const ticksPerRound = interval / tickIntervalMs;
  let heartbeatMs = 0;
  let heartbeats = 0;
  const tickMs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const start = fromMs + round * interval;
    const inputs: HeartbeatInput[] = heartbeatInputs(mesh, start);
    let next = 0;
    for (let k = 0; k < ticksPerRound; k++) {
      const blockEnd = Math.round(((k + 1) * ids.length) / ticksPerRound);
      const blockStart = next;
      const t0 = process.hrtime.bigint();
      for (; next < blockEnd; next++) {
        const result = coordinator.heartbeat(ids[next] as ServerId, inputs[next] as HeartbeatInput, start + (next * interval) / ids.length);
        if (!result.ok) throw new Error(result.detail);
      }
      heartbeatMs += elapsedMs(t0);
      heartbeats += blockEnd - blockStart;
      const t1 = process.hrtime.bigint();
      coordinator.tick(start + (k + 1) * tickIntervalMs);
      tickMs.push(elapsedMs(t1));
      markAllDurable(coordinator);
    }
  }
  return { heartbeats, heartbeatMs, tickMs, endMs: fromMs + rounds * interval };
}

function main(): void {
  const q = quick();
  const servers = numberFlag('servers', q ? 2000 : 10_000);
  const runs = numberFlag('runs', q ? 2 : 7);
  const rounds = q ? 3 : 10;
  const capacity = 5;
  const regions = Math.floor((servers * capacity * 0.6) / 3);
  const built = process.hrtime.bigint();
  const mesh = buildDirectMesh({ servers, regions, capacity, zones: 3, seed: 1 });
  const buildMs = elapsedMs(built);
  let now = timedRounds(mesh, 0, rounds).endMs; // warm-up run, not reported
  const results: ReturnType<typeof timedRounds>[] = [];
  for (let r = 0; r < runs; r++) {
    collectGarbage();
    const result = timedRounds(mesh, now, rounds);
    now = result.endMs;
    results.push(result);
  }
  const status = mesh.coordinator.status(now);
  if (status.servers.alive !== servers || status.regions.active !== regions) {
    throw new Error(`the mesh is not healthy after the runs: ${JSON.stringify(status)}`);
  }
  const rates = results.map((r) => (r.heartbeats / r.heartbeatMs) * 1000);
  const perHeartbeatUs = results.map((r) => (r.heartbeatMs * 1000) / r.heartbeats);
  const ticks = summarize(results.flatMap((r) => r.tickMs));

  heading(`Core throughput: coordinator.heartbeat with ${num(servers)} servers and ${num(regions)} regions (no HTTP)`);
  console.log(`${runs} runs of ${rounds} heartbeat rounds (${num(servers * rounds)} heartbeats and ${rounds * 10} ticks each) ` +
    `after one warm-up run; mesh built in ${ms(buildMs)}; all servers alive and all regions active at the end.\n`);
  console.log(table(['quantity', 'median', 'min', 'max', 'per run'], [
    ['heartbeats per second (heartbeat calls only)', num(median(rates)), num(Math.min(...rates)), num(Math.max(...rates)),
      rates.map((r) => num(r)).join(', ')],
    ['time per heartbeat', `${num(median(perHeartbeatUs), 2)} µs`, `${num(Math.min(...perHeartbeatUs), 2)} µs`,
      `${num(Math.max(...perHeartbeatUs), 2)} µs`, ''],
    [`share of one core used by ${num(servers)} heartbeats/s (one per server per second)`, `${num((servers / median(rates)) * 100, 1)}%`, '', '', ''],
  ]));
  console.log('');
  const rate = median(rates);
  const grantNs = grantCostNs(mesh.ids, runs);
  console.log(table([`renewing the leases of ${num(servers)} servers`, 'heartbeats/s', 'share of one core (whole heartbeat)',
    'share of one core (grant bookkeeping only)'], [1, 2, 5, 10].map((hz) => [`${hz} per second`, num(hz * servers),
    `${num((hz * servers / rate) * 100, 1)}%`, `${num((hz * servers * grantNs) / 1e7, 3)}%`])));
  console.log(`\nLeaseBook.grant: ${num(grantNs, 1)} ns per grant (median of ${runs} runs of 100 rounds).\n`);
  console.log(table([`healthy tick with ${num(servers)} servers`, 'n', 'p50', 'p99', 'max'], [
    ['coordinator.tick', num(ticks.count), ms(ticks.p50), ms(ticks.p99), ms(ticks.max)],
  ]));
}

main();

/**
 * Player actions across a SIGKILL of a real Godot primary (issue 18), over `--trials` trials
 * (default 20; 3 with --quick) per transport: the addon on its WebSocket session, and on HTTP
 * heartbeats only (`--session off`), alternating trial by trial (`--transport session|http` runs
 * one of them). Each trial starts a fresh coordinator (lowdb store in a temp dir)
 * and three headless Godot demo servers on the mesh_client addon, creates one region, lets two
 * players send an action every 20 ms to the endpoint the protocol names (tests/e2e/player-driver.ts),
 * SIGKILLs the primary, lets the actions flow on, then stops them and waits until every sent action
 * is confirmed. It reports, per trial and as medians:
 *  - kill -> first action applied by the new primary (the new primary's action log, wall clock);
 *  - actions buffered, replayed and expired (the coordinator's counters);
 *  - actions applied twice or never in the servers' action logs (target 0 each), and 409 answers
 *    naming the primary a player had reported unreachable (target 0).
 *
 *   npm run bench -- godot-failover [--trials 20] [--transport session|http] [--quick]
 *
 * Needs `godot3-server` on PATH. Loopback only; every process is stopped by its pid.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactlyOnce, readLogs } from '../tests/e2e/action-log.ts';
import { freeUdpPorts, godotPath, GODOT, spawnGodot, type Child } from '../tests/e2e/godot-fleet.ts';
import { PlayerDriver } from '../tests/e2e/player-driver.ts';
import { call, sleep, startService, stopService, waitFor } from '../tests/e2e/service-process.ts';
import { median, percentile } from './lib/stats.ts';
import { ms, num, numberFlag, quick, stringFlag, table } from './lib/report.ts';

const REGION = 'bench-region';
const PLAYERS = ['player-a', 'player-b'];
const FLOW_BEFORE_MS = 1500;
const FLOW_AFTER_MS = 2000;

type Transport = 'session' | 'http';

interface Trial {
  killToFirstAppliedMs: number;
  buffered: number;
  replayed: number;
  expired: number;
  duplicates: number;
  lost: number;
  sent: number;
  reports: number;
  refusedToReported: number;
}

async function trial(index: number, transport: Transport): Promise<Trial> {
  const workDir = await mkdtemp(join(tmpdir(), `mesh-godot-bench-${index}-`));
  const service = await startService(['--port', '0', '--host', '127.0.0.1', '--data-dir', join(workDir, 'data')]);
  const godots = new Map<string, { child: Child; log: string }>();
  const children: Child[] = [];
  let driver: PlayerDriver | undefined;
  try {
    const ports = await freeUdpPorts(3);
    for (const [i, port] of ports.entries()) {
      const log = join(workDir, `gd-${i + 1}.actions`);
      const child = spawnGodot({ name: `gd-${i + 1}`, coordinator: service.url, zone: `z${i + 1}`, udpPort: port, workDir, extra: ['--action-log', log, '--session', transport === 'session' ? 'on' : 'off'] });
      children.push(child);
      godots.set((await child.waitForLine(/^registered (\S+)$/, 30_000))[1]!, { child, log });
    }
    if (transport === 'session') for (const { child } of godots.values()) await child.waitForLine(/^transport session$/, 30_000);
    const created = await call(service.url, 'POST', '/mesh/regions', { body: { region_id: REGION } });
    const primaryId = (created.body as { primary: { server_id: string } }).primary.server_id;
    await godots.get(primaryId)!.child.waitForLine(new RegExp(`^leading ${REGION} 1$`), 30_000);
    driver = new PlayerDriver({ baseUrl: () => service.url, regionId: REGION, players: PLAYERS });
    await driver.start();
    await sleep(FLOW_BEFORE_MS);
    const killedAt = Date.now();
    godots.get(primaryId)!.child.proc.kill('SIGKILL');
    const next = await waitFor('the new primary', async () => {
      const route = (await call(service.url, 'GET', `/mesh/regions/${REGION}/route`)).body as { epoch: number; primary: { server_id: string } | null };
      return route.epoch > 1 && route.primary !== null ? route.primary.server_id : undefined;
    }, { timeoutMs: 20_000, intervalMs: 50 });
    await sleep(FLOW_AFTER_MS);
    driver.pause();
    const d = driver;
    await waitFor('every action confirmed', async () => (d.settled() ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    const applied = readLogs([...godots.values()].map((g) => g.log), REGION);
    const firstByNew = Math.min(...applied.filter((a) => a.server === next).map((a) => a.atMs));
    const checks = d.players.map((p) => exactlyOnce(applied, p.id, p.nextSeq - 1));
    const problems = checks.flatMap((c) => c.problems);
    const { actions } = (await call(service.url, 'GET', '/mesh/failover_metrics')).body as { actions: Record<string, number> };
    const sent = d.players.reduce((sum, p) => sum + p.nextSeq - 1, 0);
    for (const problem of problems) process.stderr.write(`trial ${index + 1}: ${problem}\n`);
    return {
      killToFirstAppliedMs: firstByNew - killedAt, buffered: actions['buffered']!, replayed: actions['replayed']!,
      expired: actions['expired']!, duplicates: checks.reduce((n, c) => n + c.duplicates, 0),
      lost: checks.reduce((n, c) => n + c.missing, 0), sent,
      reports: d.stats.reports, refusedToReported: d.stats.refusedToReportedPrimary,
    };
  } finally {
    driver?.stop();
    await Promise.all(children.map((c) => c.stop('SIGKILL', 2000)));
    await stopService(service, 'SIGTERM');
    await rm(workDir, { recursive: true, force: true });
  }
}

function report(transport: Transport, results: readonly Trial[]): void {
  const rows = results.map((r, i) => [String(i + 1), ms(r.killToFirstAppliedMs), num(r.sent), num(r.reports), num(r.buffered),
    num(r.replayed), num(r.expired), num(r.duplicates), num(r.lost), num(r.refusedToReported)]);
  const column = (pick: (r: Trial) => number) => results.map(pick);
  const total = (pick: (r: Trial) => number) => column(pick).reduce((a, b) => a + b, 0);
  rows.push(['median', ms(median(column((r) => r.killToFirstAppliedMs))), num(median(column((r) => r.sent))),
    num(median(column((r) => r.reports))), num(median(column((r) => r.buffered))), num(median(column((r) => r.replayed))),
    `total ${total((r) => r.expired)}`, `total ${total((r) => r.duplicates)}`, `total ${total((r) => r.lost)}`,
    `total ${total((r) => r.refusedToReported)}`]);
  process.stdout.write(`### SIGKILL of a Godot primary while two players act every 20 ms: ${transport} (${results.length} trials)\n\n`);
  process.stdout.write(`${table(['trial', 'kill -> first applied by new primary', 'actions sent', 'player reports', 'buffered',
    'replayed', 'expired', 'duplicates', 'lost', '409 to reported primary'], rows)}\n\n`);
  if (total((r) => r.expired + r.duplicates + r.lost + r.refusedToReported) > 0) process.exitCode = 1;
}

function summary(runs: ReadonlyMap<Transport, readonly Trial[]>): void {
  const rows = [...runs].map(([transport, results]) => {
    const sorted = results.map((r) => r.killToFirstAppliedMs).sort((a, b) => a - b);
    const sum = (pick: (r: Trial) => number) => num(results.reduce((n, r) => n + pick(r), 0));
    return [transport, ms(median(sorted)), ms(percentile(sorted, 99)), `${ms(sorted[0] ?? NaN)}-${ms(sorted.at(-1) ?? NaN)}`,
      sum((r) => r.buffered), sum((r) => r.replayed), sum((r) => r.expired), sum((r) => r.duplicates), sum((r) => r.lost)];
  });
  process.stdout.write(`### Side by side\n\n${table(['transport', 'kill -> first applied, median', 'p99', 'min-max',
    'buffered (all trials)', 'replayed', 'expired', 'duplicates', 'lost'], rows)}\n\n`);
}

async function main(): Promise<void> {
  if (godotPath === null) throw new Error(`${GODOT} is not on PATH (apt-get install -y ${GODOT})`);
  const trials = numberFlag('trials', quick() ? 3 : 20);
  const only = stringFlag('transport');
  const transports: Transport[] = only === 'session' || only === 'http' ? [only] : ['session', 'http'];
  const runs = new Map<Transport, Trial[]>(transports.map((t) => [t, []]));
  // Alternating trial by trial: the machine's load drifts alike for both.
  for (let i = 0; i < trials; i++) for (const t of transports) runs.get(t)!.push(await trial(i, t));
  for (const [transport, results] of runs) report(transport, results);
  summary(runs);
}

await main();

/**
 * Player actions across a SIGKILL of a real Godot primary (issue 18), over `--trials` trials
 * (default 20; 3 with --quick). Each trial starts a fresh coordinator (lowdb store in a temp dir)
 * and three headless Godot demo servers on the mesh_client addon, creates one region, lets two
 * players send an action every 20 ms to the endpoint the protocol names (tests/e2e/player-driver.ts),
 * SIGKILLs the primary, lets the actions flow on, then stops them and waits until every sent action
 * is confirmed. It reports, per trial and as medians:
 *  - kill -> first action applied by the new primary (the new primary's action log, wall clock);
 *  - actions buffered, replayed and expired (the coordinator's counters);
 *  - actions applied twice or never in the servers' action logs (target 0 each), and 409 answers
 *    naming the primary a player had reported unreachable (target 0).
 *
 *   npm run bench -- godot-failover [--trials 20] [--quick]
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
import { median } from './lib/stats.ts';
import { ms, num, numberFlag, quick, table } from './lib/report.ts';

const REGION = 'bench-region';
const PLAYERS = ['player-a', 'player-b'];
const FLOW_BEFORE_MS = 1500;
const FLOW_AFTER_MS = 2000;

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

async function trial(index: number): Promise<Trial> {
  const workDir = await mkdtemp(join(tmpdir(), `mesh-godot-bench-${index}-`));
  const service = await startService(['--port', '0', '--host', '127.0.0.1', '--data-dir', join(workDir, 'data')]);
  const godots = new Map<string, { child: Child; log: string }>();
  const children: Child[] = [];
  let driver: PlayerDriver | undefined;
  try {
    const ports = await freeUdpPorts(3);
    for (const [i, port] of ports.entries()) {
      const log = join(workDir, `gd-${i + 1}.actions`);
      const child = spawnGodot({ name: `gd-${i + 1}`, coordinator: service.url, zone: `z${i + 1}`, udpPort: port, workDir, extra: ['--action-log', log] });
      children.push(child);
      godots.set((await child.waitForLine(/^registered (\S+)$/, 30_000))[1]!, { child, log });
    }
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

async function main(): Promise<void> {
  if (godotPath === null) throw new Error(`${GODOT} is not on PATH (apt-get install -y ${GODOT})`);
  const trials = numberFlag('trials', quick() ? 3 : 20);
  const results: Trial[] = [];
  for (let i = 0; i < trials; i++) results.push(await trial(i));
  const rows = results.map((r, i) => [String(i + 1), ms(r.killToFirstAppliedMs), num(r.sent), num(r.reports), num(r.buffered),
    num(r.replayed), num(r.expired), num(r.duplicates), num(r.lost), num(r.refusedToReported)]);
  const column = (pick: (r: Trial) => number) => results.map(pick);
  const total = (pick: (r: Trial) => number) => column(pick).reduce((a, b) => a + b, 0);
  rows.push(['median', ms(median(column((r) => r.killToFirstAppliedMs))), num(median(column((r) => r.sent))),
    num(median(column((r) => r.reports))), num(median(column((r) => r.buffered))), num(median(column((r) => r.replayed))),
    `total ${total((r) => r.expired)}`, `total ${total((r) => r.duplicates)}`, `total ${total((r) => r.lost)}`,
    `total ${total((r) => r.refusedToReported)}`]);
  const sorted = column((r) => r.killToFirstAppliedMs).sort((a, b) => a - b);
  process.stdout.write(`### SIGKILL of a Godot primary while two players act every 20 ms (${trials} trials)\n\n`);
  process.stdout.write(`${table(['trial', 'kill -> first applied by new primary', 'actions sent', 'player reports', 'buffered',
    'replayed', 'expired', 'duplicates', 'lost', '409 to reported primary'], rows)}\n\n`);
  process.stdout.write(`kill -> first applied: min ${ms(sorted[0] ?? NaN)}, max ${ms(sorted.at(-1) ?? NaN)}.\n`);
  if (total((r) => r.expired + r.duplicates + r.lost + r.refusedToReported) > 0) process.exitCode = 1;
}

await main();

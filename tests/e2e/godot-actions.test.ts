/**
 * No player action lost or applied twice, with real Godot servers: the real coordinator process
 * (lowdb store on disk), four headless Godot 3 processes running `clients/godot/demo_server.gd` on
 * the mesh_client addon, one region, and two players sending a numbered action every 20 ms to
 * whichever endpoint the protocol names (tests/e2e/player-driver.ts). Each demo server logs every
 * action it applies; after each scenario the players stop, every action they sent must be
 * confirmed, and the logs must show each applied exactly once, in per-player order, none expired:
 *  (c) the coordinator restarts while actions flow: no failover;
 *  (a) SIGKILL of the primary: players report it and the coordinator buffers their actions (never
 *      a 409 naming the reported primary); the new primary replays them;
 *  (b) a graceful drain of the primary (its stop file): no failure alert;
 *  (d) the primary's process restarts with the same identity: it is told it is not primary.
 *  (e) SIGSTOP of the primary past its lease, then SIGCONT: it stops applying actions once its lease
 *      ran out (`lease_lost`), a backup is promoted only after that, the old primary is demoted when
 *      it hears from the coordinator, and no action is applied by two primaries.
 *
 * Skip rule: without `godot3-server` on PATH the suite is skipped, except under `CI=true`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactlyOnceProblems, readLogs } from './action-log.ts';
import { Child, GODOT, freeUdpPorts, godotPath, skip, spawnGodot, withTimeout, type GodotOptions } from './godot-fleet.ts';
import { PlayerDriver } from './player-driver.ts';
import { call, expectJson, killAll, sleep, startService, stopService, waitFor, type ServiceProcess } from './service-process.ts';

const REGION = 'godot-actions';
const PLAYERS = ['player-a', 'player-b'];
/** Generous bounds: a shared 2-core machine, next to other suites. */
const START_MS = 30_000;
const FAILOVER_MS = 15_000;
const SETTLE_MS = 30_000;
/** How long actions flow across each fault. */
const FLOW_MS = 2500;

describe('real Godot servers apply every player action exactly once across faults', { skip, timeout: 240_000 }, () => {
  let workDir = '';
  let service: ServiceProcess | undefined;
  let driver: PlayerDriver | undefined;
  const godots = new Map<string, { child: Child; options: GodotOptions; log: string; stop: string }>(); // by server id
  const all: Child[] = [];
  const context = () => all.map((c) => c.describe()).join('\n');
  const base = () => service!.url;
  const logs = () => [...godots.values()].map((g) => g.log);

  before(async () => {
    if (godotPath === null) throw new Error(`${GODOT} is not on PATH but CI=true: .ci/run must install it`);
    workDir = await mkdtemp(join(tmpdir(), 'mesh-godot-actions-'));
    service = await startService(['--port', '0', '--host', '127.0.0.1', '--data-dir', join(workDir, 'data')], { timeoutMs: START_MS });
    const ports = await freeUdpPorts(4);
    const started = ports.map((port, i) => {
      const name = `gd-${i + 1}`;
      const log = join(workDir, `${name}.actions`);
      const stop = join(workDir, `${name}.stop`);
      const options: GodotOptions = {
        name, coordinator: base(), zone: `z${i + 1}`, udpPort: port, workDir,
        extra: ['--stop-file', stop, '--identity', join(workDir, `${name}.identity`), '--action-log', log],
      };
      const child = spawnGodot(options);
      all.push(child);
      return { child, options, log, stop };
    });
    for (const g of started) godots.set((await g.child.waitForLine(/^registered (\S+)$/, START_MS))[1]!, g);
    const created = expectJson('createRegion', await call(base(), 'POST', '/mesh/regions', { body: { region_id: REGION } }), 201);
    await godots.get(created.primary.server_id)!.child.waitForLine(new RegExp(`^leading ${REGION} 1$`), START_MS);
    driver = new PlayerDriver({ baseUrl: base, regionId: REGION, players: PLAYERS });
    await driver.start();
  });

  after(async () => {
    driver?.stop();
    await Promise.all(all.map((c) => c.stop('SIGKILL', 2000)));
    await killAll();
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
  });

  async function route(): Promise<{ epoch: number; primary: { server_id: string } | null }> {
    return expectJson('getRegionRoute', await call(base(), 'GET', `/mesh/regions/${REGION}/route`), 200);
  }

  /** Waits for a serving primary at an epoch above `epoch`. */
  async function newPrimary(epoch: number): Promise<{ epoch: number; primary: { server_id: string } }> {
    return waitFor(`a serving primary after epoch ${epoch}`, async () => {
      const r = await route();
      return r.epoch > epoch && r.primary !== null ? r as { epoch: number; primary: { server_id: string } } : undefined;
    }, { timeoutMs: FAILOVER_MS, intervalMs: 100 });
  }

  /** Stops new actions, waits until every sent one is confirmed, and checks the logs; then resumes. */
  async function settleAndCheck(what: string): Promise<void> {
    const d = driver!;
    d.pause();
    try {
      await waitFor(`${what}: every action confirmed by a primary`, async () => (d.settled() ? true : undefined),
        { timeoutMs: SETTLE_MS, intervalMs: 100 });
    } catch (error) {
      throw new Error(`${String(error)}\n${JSON.stringify(d.players.map((p) => [p.id, p.nextSeq - 1, p.ackedThrough, p.queue.length]))}\n${context()}`);
    }
    const applied = readLogs(logs(), REGION);
    const problems = d.players.flatMap((p) => exactlyOnceProblems(applied, p.id, p.nextSeq - 1));
    assert.deepEqual(problems, [], `${what}\n${context()}`);
    const metrics = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    assert.equal(metrics.actions.expired, 0, `${what}: no buffered action expired`);
    assert.equal(d.stats.refusedToReportedPrimary, 0, `${what}: no 409 named the primary a player reported unreachable`);
    d.resume();
  }

  test('(c) the coordinator restarts while actions flow: no failover, none lost', async () => {
    await sleep(FLOW_MS);
    const before = await route();
    const port = service!.port;
    await stopService(service!, 'SIGTERM');
    service = await startService(['--port', String(port), '--host', '127.0.0.1', '--data-dir', join(workDir, 'data')], { timeoutMs: START_MS });
    await sleep(FLOW_MS);
    await settleAndCheck('coordinator restart');
    const metrics = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    assert.equal(metrics.failovers.total, 0, 'no failover');
    assert.deepEqual(await route(), before);
  });

  test('(a) SIGKILL of the primary: reported, buffered, replayed by the new primary exactly once', async (t) => {
    const { epoch, primary } = await route();
    const victim = godots.get(primary!.server_id)!;
    await sleep(500);
    victim.child.proc.kill('SIGKILL');
    const next = await newPrimary(epoch);
    await sleep(FLOW_MS);
    await settleAndCheck('SIGKILL of the primary');
    const metrics = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    assert.ok(driver!.stats.reports > 0, 'players reported the dead primary');
    assert.ok(metrics.actions.buffered > 0 && metrics.actions.replayed === metrics.actions.buffered,
      `buffered ${metrics.actions.buffered}, replayed ${metrics.actions.replayed}`);
    const replays = readLogs([godots.get(next.primary.server_id)!.log], REGION).filter((a) => a.source === 'replay');
    assert.ok(replays.length > 0, 'the new primary applied actions from the buffer');
    t.diagnostic(`players: ${JSON.stringify(driver!.stats)}; coordinator: ${JSON.stringify(metrics.actions)}`);
  });

  test('(b) a graceful drain of the primary while actions flow: none lost, no failure alert', async () => {
    const { epoch, primary } = await route();
    const leaver = godots.get(primary!.server_id)!;
    await writeFile(leaver.stop, 'drain\n');
    await leaver.child.waitForLine(/^left$/, FAILOVER_MS);
    await withTimeout(leaver.child.exited, FAILOVER_MS);
    assert.equal(leaver.child.exitCode, 0, leaver.child.describe());
    await newPrimary(epoch);
    await sleep(FLOW_MS);
    await settleAndCheck('graceful drain');
    const { alerts } = expectJson('listAlerts', await call(base(), 'GET', '/mesh/alerts'), 200);
    const aboutLeaver = alerts.filter((a: { subject?: { server_id?: string } }) => a.subject?.server_id === primary!.server_id);
    assert.deepEqual(aboutLeaver, [], 'a drain raises no failure alert');
  });

  test('(d) a restarted primary process with the same identity is told it is not primary', async () => {
    const { epoch, primary } = await route();
    const id = primary!.server_id;
    const old = godots.get(id)!;
    old.child.proc.kill('SIGKILL');
    await withTimeout(old.child.exited, 5000);
    const restarted = spawnGodot(old.options);
    all.push(restarted);
    godots.set(id, { ...old, child: restarted });
    const next = await newPrimary(epoch);
    assert.notEqual(next.primary.server_id, id, 'another server leads');
    await sleep(FLOW_MS);
    await settleAndCheck('restart with the same identity');
    const claimed = restarted.lines.filter((l) => l.startsWith(`leading ${REGION}`) || l.startsWith(`role ${REGION} primary`));
    assert.deepEqual(claimed, [], restarted.describe());
    assert.ok(!restarted.lines.some((l) => l.startsWith('registered')), 'it kept its identity (no new registration)');
    const server = expectJson('getServer', await call(base(), 'GET', `/mesh/servers/${id}`), 200);
    assert.notEqual(server.status, 'failed', 'it is back as spare capacity');
  });

  test('(e) SIGSTOP of the primary past its lease, SIGCONT: it applies nothing after its lease, then is demoted', async () => {
    const { epoch, primary } = await route();
    const id = primary!.server_id;
    const victim = godots.get(id)!;
    await sleep(500);
    victim.child.proc.kill('SIGSTOP');
    const stoppedAt = Date.now();
    let next: Awaited<ReturnType<typeof newPrimary>>;
    try {
      next = await newPrimary(epoch);
      await sleep(FLOW_MS);
    } finally {
      victim.child.proc.kill('SIGCONT');
    }
    const resumedAt = Date.now();
    assert.notEqual(next.primary.server_id, id);
    await waitFor('the old primary reports its lease lost and is demoted', async () =>
      victim.child.lines.includes('lease_lost') &&
      victim.child.lines.some((l) => l === `demoted ${REGION} ${next.epoch}` || l === `dropped ${REGION}` || l.startsWith(`role ${REGION} backup`))
        ? true : undefined, { timeoutMs: FAILOVER_MS, intervalMs: 100 });
    await sleep(FLOW_MS);
    await settleAndCheck('SIGSTOP of the primary past its lease');
    const applied = readLogs(logs(), REGION);
    const byVictim = applied.filter((a) => a.server === id && a.atMs >= stoppedAt - 50);
    assert.deepEqual(byVictim.filter((a) => a.atMs >= resumedAt), [], 'nothing applied by the old primary after it resumed');
    const firstByNew = Math.min(...applied.filter((a) => a.server === next.primary.server_id && a.epoch === next.epoch).map((a) => a.atMs));
    const lastByOld = Math.max(-Infinity, ...applied.filter((a) => a.server === id && a.epoch === epoch).map((a) => a.atMs));
    assert.ok(lastByOld < firstByNew, `the old primary's last action (${lastByOld}) came before the new one's first (${firstByNew})`);
  });
});

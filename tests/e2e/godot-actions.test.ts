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
 * Every server holds a WebSocket session (each prints `transport session`) and holds it again after
 * the coordinator restarts; godot-http-fallback.test.ts covers the HTTP heartbeats without one.
 *
 * Skip rule: without `godot3-server` on PATH the suite is skipped, except under `CI=true`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readLogs } from './action-log.ts';
import { skip, spawnGodot, withTimeout } from './godot-fleet.ts';
import { FAILOVER_MS, GodotScenario, START_MS } from './godot-scenario.ts';
import { call, expectJson, sleep, startService, stopService, waitFor } from './service-process.ts';

const REGION = 'godot-actions';
/** How long actions flow across each fault. */
const FLOW_MS = 2500;

describe('real Godot servers apply every player action exactly once across faults', { skip, timeout: 240_000 }, () => {
  const fleet = new GodotScenario();
  const godots = fleet.godots;
  const base = () => fleet.base;

  before(async () => {
    await fleet.start({ region: REGION, servers: 4 });
    for (const g of godots.values()) await g.child.waitForLine(/^transport session$/, START_MS);
  });

  after(() => fleet.stop());

  const route = () => fleet.route();
  const newPrimary = (epoch: number) => fleet.newPrimary(epoch);
  const settleAndCheck = (what: string) => fleet.settleAndCheck(what);
  const sessionsOpened = (lines: readonly string[]) => lines.filter((l) => l === 'transport session').length;

  test('(c) the coordinator restarts while actions flow: no failover, none lost', async () => {
    await sleep(FLOW_MS);
    const before = await route();
    const port = fleet.service!.port;
    await stopService(fleet.service!, 'SIGTERM');
    fleet.service = await startService(['--port', String(port), '--host', '127.0.0.1', '--data-dir', join(fleet.workDir, 'data')], { timeoutMs: START_MS });
    await sleep(FLOW_MS);
    await settleAndCheck('coordinator restart');
    const metrics = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    assert.equal(metrics.failovers.total, 0, 'no failover');
    assert.deepEqual(await route(), before);
    await waitFor('every server holds a session again after the restart', async () =>
      [...godots.values()].every((g) => sessionsOpened(g.child.lines) >= 2) ? true : undefined, { timeoutMs: FAILOVER_MS, intervalMs: 100 })
      .catch((error: unknown) => { throw new Error(`${String(error)}\n${fleet.context()}`); });
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
    assert.ok(fleet.driver!.stats.reports > 0, 'players reported the dead primary');
    assert.ok(metrics.actions.buffered > 0 && metrics.actions.replayed === metrics.actions.buffered,
      `buffered ${metrics.actions.buffered}, replayed ${metrics.actions.replayed}`);
    const replays = readLogs([godots.get(next.primary.server_id)!.log], REGION).filter((a) => a.source === 'replay');
    assert.ok(replays.length > 0, 'the new primary applied actions from the buffer');
    t.diagnostic(`players: ${JSON.stringify(fleet.driver!.stats)}; coordinator: ${JSON.stringify(metrics.actions)}`);
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
    fleet.all.push(restarted);
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
        ? true : undefined, { timeoutMs: FAILOVER_MS, intervalMs: 100 })
      .catch((error: unknown) => { throw new Error(`${String(error)}\n${victim.child.describe()}`); });
    await sleep(FLOW_MS);
    await settleAndCheck('SIGSTOP of the primary past its lease');
    const applied = readLogs(fleet.logs(), REGION);
    const byVictim = applied.filter((a) => a.server === id && a.atMs >= stoppedAt - 50);
    assert.deepEqual(byVictim.filter((a) => a.atMs >= resumedAt), [], 'nothing applied by the old primary after it resumed');
    const firstByNew = Math.min(...applied.filter((a) => a.server === next.primary.server_id && a.epoch === next.epoch).map((a) => a.atMs));
    const lastByOld = Math.max(-Infinity, ...applied.filter((a) => a.server === id && a.epoch === epoch).map((a) => a.atMs));
    assert.ok(lastByOld < firstByNew, `the old primary's last action (${lastByOld}) came before the new one's first (${firstByNew})`);
  });
});

/**
 * The real process, end to end: `node --import tsx src/main.ts` on the lowdb store in a fresh data
 * directory, real game servers played by heartbeat loops over fetch (tests/e2e/game-server.ts).
 *
 * 1. SIGKILL in the middle of a failover with buffered actions, restart on the same data
 *    directory: topology, epochs and every action answered 202 are still there, the promoted
 *    backup completes the failover and collects them, and nobody is failed over because of the
 *    restart.
 * 2. SIGTERM exits 0 with the latest state in the data file.
 * 3. A second process on the same data directory is refused with a clear message.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { durableState } from './data-dir.ts';
import { join } from 'node:path';
import { defaultMeshConfig } from '../../mesh/base/config.ts';
import { GameServer, World } from './game-server.ts';
import { e2eScratch } from './scratch.ts';
import {
  call, expectJson, sleep, spawnService, startService, stopService, waitFor, type ServiceProcess,
} from './service-process.ts';

const { freshDir, worlds } = e2eScratch('mesh-e2e-');

const zones = ['zone-a', 'zone-b', 'zone-c'];

/** Registers one server per zone over HTTP and starts its heartbeat loop at once, as the protocol asks. */
async function registerServers(base: () => string, world: World): Promise<GameServer[]> {
  const servers: GameServer[] = [];
  for (const [i, zone] of zones.entries()) {
    const res = await call(base(), 'POST', '/mesh/servers', {
      body: { address: `127.0.0.1:${7101 + i}`, zone, capacity: 8, name: `godot-${zone}` },
    });
    const out = expectJson('registerServer', res, 201);
    assert.equal(res.headers.get('location'), `/mesh/servers/${out.server_id}`);
    const server = new GameServer({ id: out.server_id, token: out.token, baseUrl: base, world });
    server.start();
    servers.push(server);
  }
  return servers;
}

async function createRegion(base: string, body: Record<string, unknown>) {
  return expectJson('createRegion', await call(base, 'POST', '/mesh/regions', { body }), 201);
}

/** Until every server has had `answers` heartbeats answered since now. */
async function heartbeatsAnswered(servers: readonly GameServer[], answers: number): Promise<void> {
  const since = Date.now();
  const counts = new Map(servers.map((s) => [s.id, s.statuses.get(200) ?? 0]));
  await waitFor(`${answers} answered heartbeats per server`, async () =>
    servers.every((s) => (s.statuses.get(200) ?? 0) - (counts.get(s.id) ?? 0) >= answers && (s.lastAnsweredAt ?? 0) >= since) || undefined,
  { timeoutMs: 20_000 });
}

/** The parts of a region that must survive a restart. */
function regionShape(r: any) {
  return {
    region_id: r.region_id, epoch: r.epoch, critical: r.critical, players: r.players,
    primary: r.primary?.server_id ?? null, backups: r.backups.map((b: any) => b.server_id).sort(),
  };
}

/** The parts of a server that must survive a restart. */
function serverShape(s: any) {
  return { server_id: s.server_id, name: s.name, address: s.address, zone: s.zone, capacity: s.capacity, registered_at: s.registered_at };
}

describe('end to end: the real process', { concurrency: false }, () => {
  test('SIGKILL in the middle of a failover with buffered actions, then restart on the same data directory', { timeout: 120_000 }, async () => {
    const dir = await freshDir();
    // The test holds the promoted backup's acknowledgement back on purpose, across a SIGKILL and a
    // restart; a generous acknowledgement timeout keeps a slow shared machine from aborting that
    // promotion meanwhile. Failure detection keeps its production timings.
    const args = ['--data-dir', dir, '--promotion-ack-timeout-ms', '20000'];
    let service: ServiceProcess = await startService(['--port', '0', ...args]);
    const base = () => service.url;
    const world = new World();
    worlds.push(world);
    const servers = await registerServers(base, world);
    await createRegion(base(), { region_id: 'castle-north', critical: true, players: 120 });
    await createRegion(base(), { region_id: 'forest', players: 40 });
    await createRegion(base(), { region_id: 'harbor', players: 60 });
    await heartbeatsAnswered(servers, 3);
    assert.ok(servers.every((s) => s.regions.size === 3),
      `with 3 servers and 2 backups, every server holds every region: ${JSON.stringify(servers.map((s) => [s.id, [...s.regions]]))}`);

    // --- the primary of castle-north dies; its peers report it silent ---------------------------
    const target = 'castle-north';
    const before = expectJson('getRegionReplication', await call(base(), 'GET', `/mesh/replication/${target}`), 200);
    assert.equal(before.state, 'active');
    const dead = servers.find((s) => s.id === before.primary.server_id);
    assert.ok(dead);
    const live = servers.filter((s) => s !== dead);
    // Whichever backup is promoted holds back its acknowledgement: the failover stays in progress.
    for (const s of live) s.holdOnPromotion = target;
    dead.stop();

    const promoted = await waitFor('a backup promoted (announced) in castle-north', async () => live.find((s) => s.held), { timeoutMs: 15_000, intervalMs: 20 });
    const failing = expectJson('getRegionReplication', await call(base(), 'GET', `/mesh/replication/${target}`), 200);
    assert.equal(failing.state, 'failing_over');
    assert.equal(failing.primary.server_id, promoted.id);
    assert.equal(failing.primary.acknowledged, false);
    assert.equal(failing.epoch, before.epoch + 1);
    const route = expectJson('getRegionRoute', await call(base(), 'GET', `/mesh/regions/${target}/route`), 200);
    assert.equal(route.primary, null, 'no serving primary while the promotion is not acknowledged');

    // --- players keep playing: their actions are buffered, durably -----------------------------
    const accepted: { player_id: string; seq: number; payload: unknown }[] = [];
    for (let seq = 1; seq <= 3; seq++) {
      for (const player of ['player-1', 'player-2', 'player-3']) {
        const action = { player_id: player, seq, payload: { kind: 'move', x: seq, y: -seq, by: player } };
        const out = expectJson('submitAction', await call(base(), 'POST', `/mesh/regions/${target}/actions`, { body: action }), 202);
        assert.equal(out.status, 'buffered');
        accepted.push(action);
      }
    }
    const repeat = expectJson('submitAction', await call(base(), 'POST', `/mesh/regions/${target}/actions`, { body: accepted[0] }), 202);
    assert.equal(repeat.status, 'duplicate');

    const serversBefore = expectJson('listServers', await call(base(), 'GET', '/mesh/servers'), 200).servers;
    const regionsBefore = expectJson('listRegions', await call(base(), 'GET', '/mesh/regions'), 200).regions;
    const metricsBefore = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    assert.ok(metricsBefore.failovers.in_progress >= 1);
    assert.equal(regionsBefore.find((r: any) => r.region_id === target).actions_pending, accepted.length);

    // --- SIGKILL, then restart on the same port and data directory ------------------------------
    const killedAfterPromotionMs = Date.now() - (promoted.promotedAt ?? 0);
    const killed = await stopService(service, 'SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    const port = service.port;
    const onDisk = { state: await durableState(dir) as any };
    const savedTarget = onDisk.state.regions.find((r: any) => r.id === target);
    console.log(`# restart: SIGKILL ${killedAfterPromotionMs} ms after the promotion; on disk: ${target} primary ` +
      `${savedTarget?.primary} epoch ${savedTarget?.epoch}, ack deadline ${savedTarget?.deadlineMs - onDisk.state.savedAtMs} ms after the last write`);
    service = await startService(['--port', String(port), ...args]);
    const restartedAt = Date.now();
    assert.equal(service.port, port);

    const serversAfter = expectJson('listServers', await call(base(), 'GET', '/mesh/servers'), 200).servers;
    assert.deepEqual(serversAfter.map(serverShape), serversBefore.map(serverShape), 'every registered server is still there');
    const statusOf = (id: string) => serversAfter.find((s: any) => s.server_id === id)?.status;
    assert.equal(statusOf(dead.id), 'failed');
    for (const s of live) assert.notEqual(statusOf(s.id), 'failed');

    const regionsAfter = expectJson('listRegions', await call(base(), 'GET', '/mesh/regions'), 200).regions;
    assert.deepEqual(regionsAfter.map(regionShape), regionsBefore.map(regionShape), 'regions, roles and epochs survive the restart');
    const targetAfter = regionsAfter.find((r: any) => r.region_id === target);
    assert.equal(targetAfter.state, 'failing_over', 'the failover is still in progress after the restart');
    assert.equal(targetAfter.actions_pending, accepted.length, 'every action answered 202 is still buffered');
    const metricsAfter = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    assert.deepEqual(metricsAfter.failovers, metricsBefore.failovers);
    assert.equal(metricsAfter.actions.pending, accepted.length);

    // --- the promoted backup acknowledges, collects and acknowledges the actions ----------------
    promoted.release();
    const completed = await waitFor('the promoted backup acknowledged', async () => {
      const view = expectJson('getRegionReplication', await call(base(), 'GET', `/mesh/replication/${target}`), 200);
      return view.primary?.acknowledged === true ? view : undefined;
    }, { timeoutMs: 10_000 });
    assert.equal(completed.primary.server_id, promoted.id);
    assert.equal(completed.epoch, before.epoch + 1, 'no second promotion: the restart did not abort the failover');
    assert.notEqual(completed.state, 'failing_over');
    assert.equal(completed.last_failover?.outcome, 'completed');

    const asPromoted = { 'x-server-id': promoted.id, authorization: `Bearer ${promoted.token}` };
    const collected = expectJson('collectActions', await call(base(), 'POST', `/mesh/regions/${target}/actions/collect`, { headers: asPromoted, body: {} }), 200);
    assert.equal(collected.epoch, before.epoch + 1);
    const got = collected.actions.map((a: any) => ({ player_id: a.player_id, seq: a.seq, payload: a.payload }));
    const byPlayer = (list: typeof accepted) => Object.fromEntries(['player-1', 'player-2', 'player-3'].map((p) => [p, list.filter((a) => a.player_id === p)]));
    assert.equal(got.length, accepted.length, 'exactly the accepted actions, no loss and no duplicate');
    assert.deepEqual(byPlayer(got), byPlayer(accepted), 'every accepted action, in seq order per player');
    const acked = expectJson('acknowledgeActions', await call(base(), 'POST', `/mesh/regions/${target}/actions/ack`, {
      headers: asPromoted, body: { acks: accepted.map(({ player_id, seq }) => ({ player_id, seq })) },
    }), 200);
    assert.deepEqual(acked, { acknowledged: accepted.length, unknown: 0, pending: 0 });

    // --- nobody is failed over because of the restart ------------------------------------------
    const quietUntil = restartedAt + defaultMeshConfig.failureTimeoutMs + 1500;
    await sleep(Math.max(0, quietUntil - Date.now()));
    const failed = expectJson('listServers', await call(base(), 'GET', '/mesh/servers?status=failed'), 200).servers;
    assert.deepEqual(failed.map((s: any) => s.server_id), [dead.id], 'only the server that really died is failed');
    const metricsLater = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    assert.equal(metricsLater.failovers.total, metricsBefore.failovers.total, 'no failover because of the restart');
    assert.equal(metricsLater.false_failovers, 0);
    assert.equal(metricsLater.actions.replayed, accepted.length);
    const status = expectJson('getMeshStatus', await call(base(), 'GET', '/mesh/status'), 200);
    assert.equal(status.servers.failed, 1);
    for (const s of live) {
      assert.ok((s.lastAnsweredAt ?? 0) > restartedAt + defaultMeshConfig.failureTimeoutMs, `${s.id} heartbeated through the restart`);
      assert.deepEqual(s.contractErrors, []);
      assert.deepEqual([...s.statuses.keys()], [200], `${s.id}: every heartbeat answered 200`);
    }
    world.stopAll();
    const stopped = await stopService(service, 'SIGTERM');
    assert.equal(stopped.code, 0, service.output());
  });

  test('SIGTERM exits 0 and the data file holds the latest state', { timeout: 60_000 }, async () => {
    const dir = await freshDir();
    const service = await startService(['--port', '0', '--data-dir', dir]);
    const base = () => service.url;
    const world = new World();
    worlds.push(world);
    const servers = await registerServers(base, world);
    await createRegion(base(), { region_id: 'mines', critical: true, players: 10 });
    await createRegion(base(), { players: 20 });
    await heartbeatsAnswered(servers, 2);
    expectJson('updateRegion', await call(base(), 'PATCH', '/mesh/regions/mines', { body: { players: 77 } }), 200);
    world.stopAll();
    await Promise.all(servers.map((s) => s.settled()));
    const regions = expectJson('listRegions', await call(base(), 'GET', '/mesh/regions'), 200).regions;
    const listed = expectJson('listServers', await call(base(), 'GET', '/mesh/servers'), 200).servers;

    const exit = await stopService(service, 'SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, service.output());
    assert.match(service.output(), /stopped; state flushed/);
    assert.equal(existsSync(join(dir, 'mesh.lock')), false, 'the lock is released');
    assert.equal(existsSync(join(dir, 'mesh.json.tmp')), false, 'no temp file left behind');

    // A clean stop folds the change log into the snapshot: one file holds the whole state.
    const file = JSON.parse(readFileSync(join(dir, 'mesh.json'), 'utf8'));
    assert.equal(file.formatVersion, 2);
    assert.equal(statSync(join(dir, `mesh.${file.log}.log`)).size, 0, 'the log after the snapshot is empty');
    const saved = await durableState(dir) as any;
    // Statuses are left out: a server the loops no longer heartbeat may turn suspect meanwhile.
    assert.deepEqual(saved.servers.map((s: any) => ({ id: s.id, zone: s.zone, address: s.address, capacity: s.capacity })),
      listed.map((s: any) => ({ id: s.server_id, zone: s.zone, address: s.address, capacity: s.capacity })));
    assert.ok(saved.servers.every((s: any) => s.status !== 'failed'));
    assert.deepEqual(
      saved.regions.map((r: any) => ({ region_id: r.id, epoch: r.epoch, state: r.phase, players: r.players, critical: r.critical,
        primary: r.primary, backups: [...r.backups].sort() })).sort((a: any, b: any) => (a.region_id < b.region_id ? -1 : 1)),
      regions.map((r: any) => ({ region_id: r.region_id, epoch: r.epoch, state: r.state, players: r.players, critical: r.critical,
        primary: r.primary?.server_id ?? null, backups: r.backups.map((b: any) => b.server_id).sort() })),
    );
    assert.equal(saved.regions.find((r: any) => r.id === 'mines').players, 77, 'the last change is in the file');
    assert.ok(saved.servers.every((s: any) => typeof s.credentialHash === 'string' && !('token' in s)), 'only token hashes are stored');
    assert.equal(statSync(join(dir, 'mesh.json')).mode & 0o077, 0, 'the data file is private to its owner');
  });

  // Regression: the restored detection windows and deadlines used to start before the contract was
  // compiled and the listener bound (0.7-2.5 s here), eating into a promoted backup's window.
  // src/main.ts now loads the contract first and restores the mesh just before it listens.
  test('after a restart, a promoted backup gets its whole remaining acknowledgement window', {
    timeout: 60_000,
  }, async () => {
    const dir = await freshDir();
    let service: ServiceProcess = await startService(['--port', '0', '--data-dir', dir]);
    const base = () => service.url;
    const world = new World();
    worlds.push(world);
    const servers = await registerServers(base, world);
    await createRegion(base(), { region_id: 'keep' });
    await heartbeatsAnswered(servers, 3);
    const before = expectJson('getRegionReplication', await call(base(), 'GET', '/mesh/replication/keep'), 200);
    const dead = servers.find((s) => s.id === before.primary.server_id) as GameServer;
    const live = servers.filter((s) => s !== dead);
    for (const s of live) s.holdOnPromotion = 'keep';
    dead.stop();
    const promoted = await waitFor('a promoted backup', async () => live.find((s) => s.held), { timeoutMs: 15_000, intervalMs: 20 });
    await stopService(service, 'SIGKILL');
    const saved = await durableState(dir) as any;
    const remainingMs = saved.regions.find((r: any) => r.id === 'keep').deadlineMs - saved.savedAtMs;
    service = await startService(['--port', String(service.port), '--data-dir', dir]);
    const readyAt = Date.now();
    // Acknowledge 300 ms before the window ends, counted from when the service could be reached.
    await sleep(Math.max(0, readyAt + remainingMs - 300 - Date.now()));
    promoted.release();
    // If the promotion was aborted meanwhile, the next candidate is promoted: let it acknowledge too.
    for (const s of live) s.release();
    const view = await waitFor('the acknowledgement', async () => {
      const v = expectJson('getRegionReplication', await call(base(), 'GET', '/mesh/replication/keep'), 200);
      return v.primary?.acknowledged === true ? v : undefined;
    }, { timeoutMs: 15_000 });
    world.stopAll();
    assert.equal(view.epoch, before.epoch + 1, `the promotion was aborted (${remainingMs} ms were left at the SIGKILL): epoch ${view.epoch}`);
    assert.equal(view.primary.server_id, promoted.id);
    await stopService(service, 'SIGTERM');
  });

  test('a second process on the same data directory is refused with a clear message', { timeout: 60_000 }, async () => {
    const dir = await freshDir();
    const first = await startService(['--port', '0', '--data-dir', dir]);
    // An empty mesh never changes by itself, so any change to the data directory would be the
    // second process's doing.
    // The lock (a directory) is renewed by its holder: its mtime moves, and is left out.
    const listing = () => readdirSync(dir).sort().map((name) => {
      const st = statSync(join(dir, name), { bigint: true });
      return name === 'mesh.lock' ? `${name} ${st.ino}` : `${name} ${st.ino} ${st.size} ${st.mtimeNs}`;
    });
    const before = listing();
    assert.deepEqual(before.map((l) => l.split(' ')[0]), ['mesh.lock', 'mesh.lock.owner']);
    const second = spawnService(['--port', '0', '--data-dir', dir]);
    const timer = setTimeout(() => second.child.kill('SIGKILL'), 30_000);
    const exit = await second.exited;
    clearTimeout(timer);
    assert.equal(exit.signal, null, `the second process must exit by itself:\n${second.output()}`);
    assert.notEqual(exit.code, 0);
    assert.match(second.output(), new RegExp(`data directory ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by process ${first.pid}`));
    assert.doesNotMatch(second.output(), /mesh coordinator ready/);
    // The first one is untouched and still serving.
    expectJson('getHealth', await call(first.url, 'GET', '/healthz'), 200);
    assert.deepEqual(listing(), before, 'the second process touched nothing in the data directory');
    assert.match(readFileSync(join(dir, 'mesh.lock.owner'), 'utf8'), new RegExp(`^process ${first.pid} on `));
    expectJson('registerServer', await call(first.url, 'POST', '/mesh/servers', { body: { address: '127.0.0.1:7201', zone: 'zone-a' } }), 201);
    assert.deepEqual(await stopService(first, 'SIGTERM'), { code: 0, signal: null });
  });
});

/**
 * The real process on the etcd store: `src/main.ts --store etcd` against a real three-member etcd
 * cluster on loopback, with game servers played by heartbeat loops (tests/e2e/game-server.ts).
 *
 * A failover is left in progress with buffered actions; one etcd member down changes nothing; the
 * loss of etcd's quorum stops it deciding (`/readyz` 503, no 202, no longer the leader within the
 * TTL) until quorum is back, when it leads again with a critical `coordinator-leader-changed` alert; then a SIGKILL and a
 * restart on the same cluster keep the topology, the epochs, every action answered 202 and the
 * event numbering, and the failover completes with the same promoted server.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { defaultMeshConfig } from '../../mesh/base/config.ts';
import { connect } from '../api/sse-client.ts';
import { needsEtcd, useEtcdCluster } from './etcd-cluster.ts';
import { GameServer, World } from './game-server.ts';
import { e2eScratch } from './scratch.ts';
import { call, expectJson, sleep, startService, stopService, waitFor, type ServiceProcess } from './service-process.ts';

const { worlds } = e2eScratch('mesh-e2e-etcd-');
const target = 'castle';
const PREFIX = '/e2e-mesh';

/** The parts of a region that must survive a restart. */
function regionShape(r: any) {
  return {
    region_id: r.region_id, epoch: r.epoch, critical: r.critical, players: r.players,
    primary: r.primary?.server_id ?? null, backups: r.backups.map((b: any) => b.server_id).sort(),
  };
}

/** The durable event position, read from the `meta` record in etcd. */
async function durableEventSeq(client: Etcd3): Promise<number> {
  const meta = JSON.parse((await client.get(`${PREFIX}/records/meta`).string()) ?? '{}');
  return meta.positions.eventSeq as number;
}

const readiness = async (base: string) => (await call(base, 'GET', '/readyz')).status;

/**
 * With `--store etcd` the process is a replica: it listens as a follower, then leads once it holds
 * the leader key (after a SIGKILL, once the killed process's etcd lease has expired).
 */
async function untilLeading(base: string): Promise<void> {
  await waitFor('the service leads', async () => {
    const response = await call(base, 'GET', '/mesh/status');
    return response.status === 200 && (response.body as any)?.coordinator?.role === 'leader' ? true : undefined;
  }, { timeoutMs: 20_000, intervalMs: 50 });
}

describe('end to end: the service on the etcd store', needsEtcd(), () => {
  const etcdCluster = useEtcdCluster();

  test('a failover, one member down, quorum lost and back, SIGKILL and restart: the state is kept', { timeout: 180_000 }, async () => {
    const etcd = etcdCluster.cluster();
    const client = etcdCluster.client();
    const args = ['--store', 'etcd', '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', PREFIX,
      '--promotion-ack-timeout-ms', '60000', '--etcd-request-timeout-ms', '1000'];
    let service: ServiceProcess = await startService(['--port', '0', ...args]);
    await untilLeading(service.url);
    const base = () => service.url;
    const world = new World();
    worlds.push(world);
    const servers: GameServer[] = [];
    for (const [i, zone] of ['zone-a', 'zone-b', 'zone-c'].entries()) {
      const out = expectJson('registerServer', await call(base(), 'POST', '/mesh/servers', {
        body: { address: `127.0.0.1:${7401 + i}`, zone, capacity: 8 },
      }), 201);
      const server = new GameServer({ id: out.server_id, token: out.token, baseUrl: base, world });
      server.start();
      servers.push(server);
    }
    expectJson('createRegion', await call(base(), 'POST', '/mesh/regions', { body: { region_id: target, critical: true, players: 90 } }), 201);
    expectJson('createRegion', await call(base(), 'POST', '/mesh/regions', { body: { region_id: 'meadow', players: 10 } }), 201);
    await waitFor('both regions active', async () => {
      const regions = expectJson('listRegions', await call(base(), 'GET', '/mesh/regions'), 200).regions;
      return regions.every((r: any) => r.state === 'active') ? true : undefined;
    }, { timeoutMs: 20_000 });
    const stream = await connect(service.port);

    // --- a failover in progress: the promoted backup holds back its acknowledgement ---------------
    const before = expectJson('getRegionReplication', await call(base(), 'GET', `/mesh/replication/${target}`), 200);
    const dead = servers.find((s) => s.id === before.primary.server_id);
    assert.ok(dead);
    const live = servers.filter((s) => s !== dead);
    for (const s of live) s.holdOnPromotion = target;
    dead.stop();
    const promoted = await waitFor('a backup promoted', async () => live.find((s) => s.held), { timeoutMs: 20_000, intervalMs: 20 });
    const accepted: { player_id: string; seq: number; payload: unknown }[] = [];
    const submit = async (seq: number, player = 'p1') => {
      const action = { player_id: player, seq, payload: { move: seq } };
      const res = await call(base(), 'POST', `/mesh/regions/${target}/actions`, { body: action, timeoutMs: 60_000 });
      if (res.status === 202) accepted.push(action);
      return res;
    };
    for (let seq = 1; seq <= 3; seq++) expectJson('submitAction', await submit(seq), 202);

    // --- one etcd member of three down (not etcd's leader: guide §2.8): nothing changes -----------
    const lost = ((await etcd.raftLeader()) + 1) % 3;
    await etcd.kill(lost);
    expectJson('submitAction', await submit(4), 202);
    assert.equal(await readiness(base()), 200);
    await etcd.start(lost);

    // --- quorum lost: nothing is decided; quorum back: leading and serving again -----------------
    // The failed write raises `persistence-failing` only if it fails before the term ends: without
    // quorum the leader lease cannot be renewed either, so the process always stops leading within
    // the TTL, and the alert of the new term is the one that must be there afterwards.
    await etcd.kill(0);
    await etcd.kill(1);
    const lostAt = Date.now();
    const refused = await submit(5);
    assert.equal(refused.status, 503, `no 202 without a durable write: ${JSON.stringify(refused.body)}`);
    assert.equal(await readiness(base()), 503);
    await waitFor('the service stops leading without quorum', async () => {
      const response = await call(base(), 'GET', '/mesh/status');
      return (response.body as any)?.coordinator?.role !== 'leader' ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    assert.ok(Date.now() - lostAt < 4_000, `the service kept leading for ${Date.now() - lostAt} ms without quorum`);
    assert.equal((await call(base(), 'POST', `/mesh/regions/${target}/actions`, { body: { player_id: 'p1', seq: 5, payload: {} } })).status, 503);
    await etcd.start(1);
    await etcd.start(0);
    await untilLeading(base());
    const alert = expectJson('listAlerts', await call(base(), 'GET', '/mesh/alerts?state=all'), 200).alerts
      .find((a: any) => a.dedup_key === 'coordinator-leader-changed');
    assert.ok(alert, 'no alert about the time nobody could lead');
    assert.equal(alert.severity, 'critical');
    await waitFor('ready again once quorum is back', async () => ((await readiness(base())) === 200 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    expectJson('submitAction', await submit(5), 202);
    expectJson('submitAction', await submit(1, 'p2'), 202);
    const openAfter = expectJson('listAlerts', await call(base(), 'GET', '/mesh/alerts?state=open'), 200).alerts;
    assert.ok(!openAfter.some((a: any) => a.dedup_key === 'persistence-failing'), 'the alert is resolved');

    // --- SIGKILL and restart on the same cluster ---------------------------------------------------
    const regionsBefore = expectJson('listRegions', await call(base(), 'GET', '/mesh/regions'), 200).regions;
    const metricsBefore = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    const seenIds = stream.events().map((f) => f.id as string);
    stream.destroy();
    const port = service.port;
    await stopService(service, 'SIGKILL');
    const durableEvents = await durableEventSeq(client);
    service = await startService(['--port', String(port), ...args]);
    await untilLeading(service.url);
    const restartedAt = Date.now();
    const resumed = await connect(service.port);

    const regionsAfter = expectJson('listRegions', await call(base(), 'GET', '/mesh/regions'), 200).regions;
    assert.deepEqual(regionsAfter.map(regionShape), regionsBefore.map(regionShape), 'regions, roles and epochs survive');
    const targetAfter = regionsAfter.find((r: any) => r.region_id === target);
    assert.equal(targetAfter.state, 'failing_over');
    assert.equal(targetAfter.epoch, before.epoch + 1);
    assert.equal(targetAfter.actions_pending, accepted.length, 'every action answered 202 is still buffered');
    const metricsAfter = expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200);
    assert.deepEqual(metricsAfter.failovers, metricsBefore.failovers);

    promoted.release();
    await waitFor('the promotion acknowledged after the restart', async () => {
      const view = expectJson('getRegionReplication', await call(base(), 'GET', `/mesh/replication/${target}`), 200);
      return view.primary?.acknowledged === true ? view : undefined;
    }, { timeoutMs: 15_000 });
    const asPromoted = { 'x-server-id': promoted.id, authorization: `Bearer ${promoted.token}` };
    const collected = expectJson('collectActions', await call(base(), 'POST', `/mesh/regions/${target}/actions/collect`, { headers: asPromoted, body: {} }), 200);
    const got = collected.actions.map((a: any) => ({ player_id: a.player_id, seq: a.seq, payload: a.payload }));
    const order = (list: typeof accepted) => [...list].sort((a, b) => a.player_id.localeCompare(b.player_id) || a.seq - b.seq);
    assert.deepEqual(order(got), order(accepted), 'exactly the accepted actions');

    // Event ids: none reused, and the numbering goes on from the durable position.
    await waitFor('events after the restart', async () => (resumed.events().length > 0 ? true : undefined), { timeoutMs: 15_000 });
    const newIds = resumed.events().map((f) => f.id as string);
    assert.deepEqual(newIds.filter((id) => seenIds.includes(id)), []);
    for (const id of newIds) assert.ok(Number(id.split('.').at(-1)) > durableEvents, `${id} numbers on after ${durableEvents}`);
    resumed.destroy();

    // Nobody is failed over because of the restart.
    await sleep(Math.max(0, restartedAt + defaultMeshConfig.failureTimeoutMs + 1500 - Date.now()));
    const failed = expectJson('listServers', await call(base(), 'GET', '/mesh/servers?status=failed'), 200).servers;
    assert.deepEqual(failed.map((s: any) => s.server_id), [dead.id]);
    assert.equal(expectJson('getFailoverMetrics', await call(base(), 'GET', '/mesh/failover_metrics'), 200).false_failovers, 0);
    world.stopAll();
    const stopped = await stopService(service, 'SIGTERM');
    assert.equal(stopped.code, 0, service.output());
  });
});

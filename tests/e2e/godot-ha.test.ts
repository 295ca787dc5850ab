/**
 * Real Godot servers on three coordinator replicas (issue 20): three headless `godot3-server` demo
 * servers on the mesh_client addon are given every replica's URL, a follower's first, on a real
 * three-member etcd cluster. They register through that follower's 307 (the body kept) and hold
 * their sessions and heartbeats at the leader. Then the leader and the follower listed first are
 * SIGKILLed together, so that the servers must leave the dead leader, skip the dead first entry
 * and find the last replica, which takes over: their heartbeats are answered there, their sessions
 * re-open there, and past a whole detection window under it no game server was failed over.
 *
 * Skip rule: without `godot3-server` or `etcd` the test is skipped, except under `CI=true`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultMeshConfig } from '../../mesh/base/config.ts';
import { needsEtcd, startEtcdCluster, type EtcdCluster } from './etcd-cluster.ts';
import { freeUdpPorts, skip, spawnGodot, type Child } from './godot-fleet.ts';
import { ReplicaGroup } from './replicas.ts';
import { call, expectJson, killAll, sleep, waitFor } from './service-process.ts';

const REGION = 'godot-ha';
const ZONES = ['z1', 'z2', 'z3'];

/** What the coordinator at `url` holds of the Godot servers: sessions open and each server's view. */
async function seen(url: string): Promise<{ sessions: number; servers: { server_id: string; status: string; last_heartbeat_at: number | null }[] }> {
  const metrics = String((await call(url, 'GET', '/metrics')).body);
  const sessions = Number(/^mesh_sessions_open (\d+)$/m.exec(metrics)?.[1] ?? -1);
  return { sessions, servers: expectJson('listServers', await call(url, 'GET', '/mesh/servers'), 200).servers };
}

test('Godot servers given every replica follow the leader, and a leader change fails none over',
  { skip: skip || needsEtcd().skip, timeout: 90_000 }, async (t) => {
    const startedAt = Date.now();
    let cluster: EtcdCluster | undefined;
    const godots: Child[] = [];
    const workDir = await mkdtemp(join(tmpdir(), 'mesh-godot-ha-'));
    try {
      cluster = await startEtcdCluster();
      const group = new ReplicaGroup(['--store', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', '/godot-ha', '--leader-ttl', '2']);
      await group.startTogether(3);
      const leader = await group.leader();
      const [first, last] = group.replicas.filter((r) => r !== leader);
      assert.ok(first && last);
      const urls = [first, leader, last].map((r) => r.service.url);
      const ports = await freeUdpPorts(ZONES.length);
      for (const [i, zone] of ZONES.entries()) {
        godots.push(spawnGodot({ name: `gd-${i + 1}`, coordinator: urls.join(','), zone, udpPort: ports[i]!, workDir }));
      }
      const context = () => godots.map((g) => g.describe()).join('\n');
      const ids = await Promise.all(godots.map(async (g) => (await g.waitForLine(/^registered (\S+)$/, 30_000))[1]!));

      // Registered through the follower, they heartbeat and hold their sessions at the leader.
      const created = expectJson('createRegion', await call(leader.service.url, 'POST', '/mesh/regions', { body: { region_id: REGION } }), 201);
      await waitFor(`the region is whole and every server holds a session at the leader\n${context()}`, async () => {
        const view = await call(leader.service.url, 'GET', `/mesh/replication/${REGION}`);
        return view.status === 200 && view.body.state === 'active' && (await seen(leader.service.url)).sessions === ids.length ? true : undefined;
      }, { timeoutMs: 20_000, intervalMs: 100 });
      const registered = (await seen(leader.service.url)).servers.map((s) => s.server_id).sort();
      assert.deepEqual(registered, [...ids].sort(), `each server registered once\n${context()}`);

      const killedAt = Date.now();
      await Promise.all([group.kill(leader), group.kill(first)]);
      const next = await group.leader(15_000);
      assert.equal(next, last, 'the only replica left leads');
      const tookOverAt = Date.now();
      const back = await waitFor(`every server heartbeats and holds a session at the new leader\n${context()}`, async () => {
        const view = await seen(next.service.url);
        const answered = view.servers.every((s) => (s.last_heartbeat_at ?? 0) >= killedAt);
        return view.sessions === ids.length && answered ? Date.now() : undefined;
      }, { timeoutMs: 15_000, intervalMs: 100 });

      // Past a whole detection window under the new leader: nobody was failed over.
      await sleep(Math.max(0, tookOverAt + defaultMeshConfig.failureTimeoutMs + 1000 - Date.now()));
      const metrics = expectJson('getFailoverMetrics', await call(next.service.url, 'GET', '/mesh/failover_metrics'), 200);
      const after = await seen(next.service.url);
      const state = `${JSON.stringify(after)}\n${context()}`;
      assert.equal(metrics.failovers.total, 0, `the leader change failed a server over: ${JSON.stringify(metrics.recent)}\n${state}`);
      assert.equal(metrics.false_failovers, 0);
      assert.deepEqual(after.servers.filter((s) => s.status === 'failed').map((s) => s.server_id), [], `a server failed\n${state}`);
      const route = expectJson('getRegionRoute', await call(next.service.url, 'GET', `/mesh/regions/${REGION}/route`), 200);
      assert.deepEqual([route.epoch, route.primary?.server_id], [1, created.primary.server_id], 'the region kept its primary and epoch');
      for (const g of godots) {
        assert.ok(!g.lines.some((l) => /^(demoted|dropped) /.test(l)), `${g.name} was demoted or dropped\n${g.describe()}`);
        assert.ok(g.lines.filter((l) => l === 'transport session').length >= 2, `${g.name} did not re-open its session\n${g.describe()}`);
      }
      t.diagnostic(`took over ${tookOverAt - killedAt} ms after the SIGKILL; every server back ${back - killedAt} ms after it; ` +
        `test ${Date.now() - startedAt} ms`);
    } finally {
      await Promise.all(godots.map((g) => g.stop('SIGKILL', 2000)));
      await killAll();
      await cluster?.stop();
      await rm(workDir, { recursive: true, force: true });
    }
  });

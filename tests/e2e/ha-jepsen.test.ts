/**
 * Jepsen-style run of the replicas (issue 20): a real three-member etcd cluster, three coordinator
 * processes with `--store etcd`, fifteen game servers heartbeating through the TypeScript client's
 * list of replica URLs (following the leader), players sending streams of actions that must be
 * buffered and collected, and mass failures of game servers (killed, or failed by
 * `POST /mesh/simulate_failure`), while the leader is SIGKILLed (then restarted as a follower on
 * its port) or SIGSTOPped past its lease (then SIGCONTed), over and over: at least 30 changes of
 * leader. Everything is recorded in a history (tests/e2e/ha-history.ts), with etcd's own history of
 * the keys, and checked by tests/e2e/ha-history-checker.ts: no acknowledged action lost, never two
 * primaries in one epoch, epochs never back, no healthy server failed over, a paused old leader
 * writes and answers nothing once it wakes, no event id reused.
 *
 * Bounded: the faults stop at a deadline even short of 30 changes (the test then fails), and every
 * wait is bounded.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { needsEtcd, startEtcdCluster, type EtcdCluster } from './etcd-cluster.ts';
import { checkHistory, leaderChanges } from './ha-history-checker.ts';
import { emptyHistory, type HistoryLog } from './ha-history.ts';
import { etcdHistory, etcdRevision, followEvents, watchLeaders } from './ha-observers.ts';
import type { GameServer } from './game-server.ts';
import { Fleet, Players, followingFetch } from './ha-workload.ts';
import { ReplicaGroup, type Replica } from './replicas.ts';
import { killAll, sleep, waitFor } from './service-process.ts';

const PREFIX = '/jepsen';
const TTL_SECONDS = 2;
const LEADER_CHANGES = 30;
const ZONES = ['zone-a', 'zone-b', 'zone-c'];
const REGIONS = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
/** The faults stop by then (from the start of the test), whatever the count reached. */
const FAULTS_DEADLINE_MS = 200_000;

let cluster: EtcdCluster | undefined;
let fleet: Fleet | undefined;
/** Stops the test's own loops (players, observers), whatever happened to the test. */
const stops: (() => Promise<void>)[] = [];

after(async () => {
  await Promise.all(stops.map((stop) => stop()));
  fleet?.stop();
  await killAll();
  await cluster?.stop();
});

/** An admin request through the leader-following client; the answer's status and JSON body. */
async function admin(urls: readonly string[], method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await followingFetch(urls)(new Request(new URL(path, urls[0]), {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000),
  }));
  return { status: res.status, body: await res.json() };
}

/** The leader and its term, once every running replica names it and it is ready. */
async function leading(group: ReplicaGroup): Promise<{ leader: Replica; term: string }> {
  const leader = await group.leader(20_000);
  const term = (await group.role(leader))?.term;
  assert.ok(term, 'the leader names no term');
  return { leader, term };
}

/** SIGKILL of the leader; it comes back as a follower on its port in the background. */
async function killLeader(group: ReplicaGroup, history: HistoryLog): Promise<{ restarted: Promise<void> }> {
  const { leader, term } = await leading(group);
  history.faults.push({ kind: 'kill-leader', at: Date.now(), url: leader.service.url, term });
  const port = leader.service.port;
  await group.kill(leader);
  await leading(group);
  return { restarted: group.restart(leader, port) };
}

/** SIGSTOP of the leader past its lease, SIGCONT once another leads; it must follow. */
async function pauseLeader(group: ReplicaGroup, history: HistoryLog, endpoints: readonly string[]): Promise<void> {
  const { leader, term } = await leading(group);
  const pausedAt = Date.now();
  history.faults.push({ kind: 'pause-leader', at: pausedAt, url: leader.service.url, term });
  group.pause(leader);
  await leading(group);
  await sleep(Math.max(0, pausedAt + TTL_SECONDS * 1000 + 500 - Date.now()));
  const revision = await etcdRevision(endpoints);
  const at = Date.now();
  group.resume(leader);
  await waitFor('the woken leader follows', async () => ((await group.role(leader))?.role === 'follower' ? true : undefined), { timeoutMs: 15_000 });
  history.faults.push({ kind: 'resume-leader', at, url: leader.service.url, term, revision, followedAt: Date.now() });
}

/** The mass failures, by the number of leader changes they come after. */
async function massFailure(change: number, urls: readonly string[], history: HistoryLog): Promise<void> {
  assert.ok(fleet);
  const servers = fleet.servers;
  if (change === 5 || change === 22) {
    // Three (then two) servers die at once, two (then one) of them primaries.
    for (const server of victims(change === 5 ? 3 : 2, change === 5 ? 2 : 1)) fleet.kill(server);
  }
  if (change === 14) {
    // A whole zone is failed by the coordinator for 3 s (its servers keep running, then return).
    const zone = servers.filter((_, i) => ZONES[i % ZONES.length] === 'zone-c');
    for (const server of zone) history.faults.push({ kind: 'inject-server', at: Date.now(), server: server.id });
    await admin(urls, 'POST', '/mesh/simulate_failure', { zone: 'zone-c', mode: 'crash', duration_ms: 3000 }).catch(() => undefined);
  }
}

/**
 * `count` live servers, `primaries` of them leading a region now, such that every region keeps a
 * live replica (a region that lost all three could not recover, and the run checks recovery).
 */
function victims(count: number, primaries: number): GameServer[] {
  assert.ok(fleet);
  const live = fleet.servers.filter((s) => s.stoppedAt === null);
  const leads = (s: GameServer) => [...s.regions.values()].some((r) => r.role === 'primary');
  const chosen: GameServer[] = [];
  const keepsAReplica = (candidate: GameServer) => [...candidate.regions.keys()].every((region) =>
    fleet!.servers.filter((s) => s.stoppedAt === null && s.regions.has(region) && !chosen.includes(s) && s !== candidate).length > 0);
  for (const wanted of [true, false]) {
    for (const server of live) {
      const room = wanted ? chosen.length < primaries : chosen.length < count;
      if (room && leads(server) === wanted && !chosen.includes(server) && keepsAReplica(server)) chosen.push(server);
    }
  }
  assert.equal(chosen.length, count, 'not enough servers to fail at once');
  return chosen;
}

/** Until every region has a live primary and every action answered 202 was collected. */
async function settled(urls: readonly string[], history: HistoryLog): Promise<void> {
  assert.ok(fleet);
  const live = new Set(fleet.servers.filter((s) => s.stoppedAt === null).map((s) => s.id));
  await waitFor('every region served by a live primary and every acknowledged action collected', async () => {
    for (const region of REGIONS) {
      const view = await admin(urls, 'GET', `/mesh/replication/${region}`);
      if (view.status !== 200 || view.body.state !== 'active' || !live.has(view.body.primary?.server_id)) return undefined;
    }
    const collected = new Set(history.collects.flatMap((c) => c.actions.map((a) => `${c.region}/${a.player}#${a.seq}`)));
    return history.actions.every((a) => a.status !== 202 || collected.has(`${a.region}/${a.player}#${a.seq}`)) || undefined;
  }, { timeoutMs: 45_000, intervalMs: 500 });
}

/** The final state: what each region's primary still finds buffered, the failovers, the servers. */
async function finalState(urls: readonly string[], history: HistoryLog): Promise<void> {
  assert.ok(fleet);
  const buffered: HistoryLog['final']['buffered'][number][] = [];
  for (const region of REGIONS) {
    const view = await admin(urls, 'GET', `/mesh/replication/${region}`);
    const primary = fleet.servers.find((s) => s.id === view.body.primary?.server_id);
    const actions = primary ? await fleet.peek(primary, region) : undefined;
    for (const a of actions ?? []) buffered.push({ region, ...a });
  }
  const metrics = await admin(urls, 'GET', '/mesh/failover_metrics?recent_limit=1000');
  const servers = await admin(urls, 'GET', '/mesh/servers');
  history.final = {
    buffered,
    failovers: (metrics.body.recent as { region_id: string; failed_server_id: string | null }[]).map((f) => ({ region: f.region_id, failedServer: f.failed_server_id })),
    servers: (servers.body.servers as { server_id: string; status: string }[]).map((s) => ({ id: s.server_id, status: s.status })),
  };
}

describe('Jepsen-style run of three coordinator replicas on etcd', { ...needsEtcd(), concurrency: false }, () => {
  test('30 leader changes (SIGKILL, and SIGSTOP past the lease) under heartbeats, player actions and mass failures keep every guarantee',
    { timeout: 330_000 }, async () => {
      const started = Date.now();
      const history = emptyHistory(PREFIX);
      cluster = await startEtcdCluster();
      const endpoints = cluster.endpoints;
      const group = new ReplicaGroup([
        '--store', 'etcd', '--etcd-endpoints', endpoints.join(','), '--etcd-prefix', PREFIX, '--leader-ttl', String(TTL_SECONDS),
        // Planned hand-offs would move healthy primaries; buffered actions must not expire during the run.
        '--max-rebalance-moves', '0', '--action-buffer-max-age-ms', '600000',
      ]);
      await group.start(3);
      const urls = group.replicas.map((r) => r.service.url);
      const leaders = watchLeaders(group, history);
      stops.push(leaders.stop);
      await leading(group);
      fleet = new Fleet(urls, history, 320_000);
      for (let i = 0; i < 15; i++) await fleet.add(ZONES[i % ZONES.length]!, i);
      for (const [i, region] of REGIONS.entries()) {
        const created = await admin(urls, 'POST', '/mesh/regions', { region_id: region, critical: i < 2 });
        assert.equal(created.status, 201, JSON.stringify(created.body));
      }
      await settled(urls, history);
      const setUpAt = Date.now();
      const events = followEvents(urls, history);
      const players = REGIONS.slice(0, 4).map((region) => new Players(urls, region, history));
      stops.push(events.stop, ...players.map((p) => () => p.stop()));
      for (const [i, p] of players.entries()) p.start([`p${i}a`, `p${i}b`], 150, 300_000);

      let restarting: Promise<void> = Promise.resolve();
      for (let change = 1; change <= LEADER_CHANGES && Date.now() - started < FAULTS_DEADLINE_MS; change++) {
        // Kills and pauses alternate, so that a killed replica restarts during the pause that follows.
        if (change % 2 === 0) {
          await pauseLeader(group, history, endpoints);
        } else {
          await restarting;
          restarting = (await killLeader(group, history)).restarted;
        }
        await massFailure(change, urls, history);
        await sleep(300);
      }
      const churnedAt = Date.now();
      await restarting;
      await Promise.all(players.map((p) => p.stop()));
      // Checked after the history, so that a run that does not settle still shows what went wrong.
      const unsettled = await settled(urls, history).then(() => undefined, (error: unknown) => error);
      await finalState(urls, history).catch((error: unknown) => console.log(`ha-jepsen: no final state: ${String(error)}`));
      await events.stop();
      await leaders.stop();
      fleet.stop();
      history.etcd = await etcdHistory(endpoints, PREFIX);

      const violations = checkHistory(history);
      if (violations.length > 0) {
        const file = join(tmpdir(), `ha-jepsen-history-${process.pid}.json`);
        writeFileSync(file, JSON.stringify(history));
        console.log(`ha-jepsen: the history is in ${file}`);
      }
      const summary = {
        seconds: { setUp: Math.round((setUpAt - started) / 1000), faults: Math.round((churnedAt - setUpAt) / 1000), total: Math.round((Date.now() - started) / 1000) },
        leaderChanges: leaderChanges(history),
        acknowledged: history.actions.filter((a) => a.status === 202).length, heartbeats: history.heartbeats.length,
        collects: history.collects.length, events: history.events.length, etcdChanges: history.etcd.length,
        failovers: history.final.failovers.length, faults: history.faults.length,
      };
      console.log(`ha-jepsen: ${JSON.stringify(summary)}`);
      assert.deepEqual(violations.slice(0, 30), [], `${violations.length} violations; ${JSON.stringify(summary)}`);
      assert.equal(unsettled, undefined, 'the mesh settled after the faults');
      assert.ok(summary.leaderChanges >= LEADER_CHANGES, `only ${summary.leaderChanges} leader changes within the time allowed`);
      // The run exercised what it checks: actions flowed, servers failed over, etcd was written by many terms.
      assert.ok(summary.acknowledged >= 200, `only ${summary.acknowledged} actions acknowledged`);
      assert.ok(summary.failovers >= 3, `only ${summary.failovers} failovers`);
      for (const server of fleet.servers) assert.deepEqual(server.contractErrors, [], `${server.id} got answers outside openapi.yaml`);
    });
});

/**
 * A real etcd cluster for tests: Debian's `etcd` binary, members on loopback ports in a temporary
 * directory, started and stopped by pid. Members can be killed, paused and restarted one by one, so
 * that tests can take a member or the quorum away and give it back.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../src/store/etcd-client.ts';

/** The etcd binary, or undefined when it is not installed (CI installs Debian's `etcd-server`). */
export function etcdBinary(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

/**
 * Options for `test(...)` of a file that needs etcd: skipped on a developer machine without it,
 * never in CI, where its absence must fail the run.
 */
export function needsEtcd(): { skip?: string } {
  if (etcdBinary() !== undefined || process.env.CI === 'true') return {};
  return { skip: 'etcd is not installed (apt-get install etcd-server)' };
}

/** A free TCP port on 127.0.0.1 (released before use: good enough on a test machine). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

/** One member of the cluster. */
export interface EtcdMember {
  readonly name: string;
  /** `http://127.0.0.1:<client port>` (`https://` with TLS). */
  readonly clientUrl: string;
  /** Where `/health` answers over plain HTTP: the client URL, or with TLS a separate metrics URL. */
  readonly healthUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** The running process, or undefined while the member is stopped. */
  process: ChildProcess | undefined;
  /** Everything the member wrote, for diagnostics. */
  log: string;
}

/** Timing of the members' Raft; short values make leader elections fast in tests. */
export interface EtcdTiming {
  readonly heartbeatMs: number;
  readonly electionMs: number;
}

/** A running cluster and the handles to disturb it. */
export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Client URLs of every member, the value of `--etcd-endpoints`. */
  readonly endpoints: readonly string[];
  /** SIGKILLs one member; its data directory stays, so `start` brings it back. */
  kill(index: number): Promise<void>;
  /** Restarts a killed member with its data and waits until it answers. */
  start(index: number): Promise<void>;
  /** The index of the member that leads etcd's Raft now (plain-HTTP clusters). */
  raftLeader(): Promise<number>;
  /** SIGSTOP / SIGCONT of one member. */
  pause(index: number): void;
  resume(index: number): void;
  /** Kills every member and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_TIMING: EtcdTiming = { heartbeatMs: 50, electionMs: 500 };

/** PEM files of a TLS cluster: the members' certificate (valid for 127.0.0.1) and the CA of clients. */
export interface EtcdTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** Starts `size` members (3 unless told) and resolves once every one reports healthy. */
export async function startEtcdCluster(options: { size?: number; timing?: EtcdTiming; tls?: EtcdTls } = {}): Promise<EtcdCluster> {
  const binary = etcdBinary();
  assert.ok(binary, 'etcd is not installed (apt-get install etcd-server)');
  const size = options.size ?? 3;
  const timing = options.timing ?? DEFAULT_TIMING;
  const root = await mkdtemp(join(tmpdir(), 'mesh-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    const name = `m${i}`;
    const clientUrl = `${options.tls ? 'https' : 'http'}://127.0.0.1:${await freePort()}`;
    members.push({
      name, dataDir: join(root, name), process: undefined, log: '', clientUrl,
      healthUrl: options.tls ? `http://127.0.0.1:${await freePort()}` : clientUrl, peerUrl: `http://127.0.0.1:${await freePort()}`,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');

  const launch = (member: EtcdMember): void => {
    const child = spawn(binary, [
      '--name', member.name, '--data-dir', member.dataDir,
      '--listen-client-urls', member.clientUrl, '--advertise-client-urls', member.clientUrl,
      '--listen-peer-urls', member.peerUrl, '--initial-advertise-peer-urls', member.peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new',
      '--initial-cluster-token', 'mesh-test',
      '--heartbeat-interval', String(timing.heartbeatMs), '--election-timeout', String(timing.electionMs),
      '--logger', 'zap', '--log-level', 'warn',
      ...(options.tls ? [
        '--cert-file', options.tls.certFile, '--key-file', options.tls.keyFile, '--trusted-ca-file', options.tls.caFile,
        '--client-cert-auth', '--listen-metrics-urls', member.healthUrl,
      ] : []),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => { member.log = (member.log + chunk.toString('utf8')).slice(-20_000); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', () => { if (member.process === child) member.process = undefined; });
    member.process = child;
  };

  const healthy = async (member: EtcdMember, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      assert.ok(member.process, `etcd member ${member.name} exited:\n${member.log}`);
      try {
        const response = await fetch(`${member.healthUrl}/health`, { signal: AbortSignal.timeout(1_000) });
        last = await response.text();
        if (response.ok && JSON.parse(last).health === 'true') return;
      } catch (error) {
        last = String(error);
      }
      await delay(50);
    }
    assert.fail(`etcd member ${member.name} not healthy within ${timeoutMs} ms (${last}):\n${member.log}`);
  };

  const signal = (index: number, name: NodeJS.Signals): void => {
    const child = members[index]?.process;
    assert.ok(child?.pid, `etcd member ${index} is not running`);
    process.kill(child.pid, name);
  };

  const kill = async (index: number): Promise<void> => {
    const child = members[index]?.process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };

  let stopped = false;
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    kill,
    start: async (index) => {
      const member = members[index];
      assert.ok(member && !member.process, `etcd member ${index} is already running`);
      launch(member);
      await healthy(member, 15_000);
    },
    raftLeader: async () => {
      for (const [index, member] of members.entries()) {
        if (!member.process) continue;
        const res = await fetch(`${member.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2000) });
        const status = await res.json() as { header: { member_id: string }; leader: string };
        if (status.header.member_id === status.leader) return index;
      }
      assert.fail('no etcd member leads');
    },
    pause: (index) => signal(index, 'SIGSTOP'),
    resume: (index) => signal(index, 'SIGCONT'),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const member of members) if (member.process?.pid) process.kill(member.process.pid, 'SIGCONT');
      for (let i = 0; i < members.length; i++) await kill(i);
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    for (const member of members) launch(member);
    await Promise.all(members.map((m) => healthy(m, 20_000)));
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/**
 * A cluster and a client of the service's kind for the enclosing `describe`: started in its
 * `before`, stopped in its `after`. The getters fail loudly if used outside the tests.
 */
export function useEtcdCluster(): { cluster: () => EtcdCluster; client: () => Etcd3 } {
  let cluster: EtcdCluster | undefined;
  let client: Etcd3 | undefined;
  before(async () => {
    cluster = await startEtcdCluster();
    client = await createEtcdClient({ endpoints: cluster.endpoints });
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });
  return {
    cluster: () => { assert.ok(cluster, 'the etcd cluster is not running'); return cluster; },
    client: () => { assert.ok(client, 'the etcd cluster is not running'); return client; },
  };
}

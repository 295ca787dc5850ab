/**
 * Coordinator replicas for end-to-end tests: service processes started as tests/e2e/service-process.ts
 * starts them, with `--store etcd` on one cluster and prefix, each on its own loopback port. Reads
 * each one's role from `GET /mesh/status` (the `coordinator` object), so that a test can find the
 * leader, kill or pause it, and watch who takes over.
 */
import assert from 'node:assert/strict';
import { call, startService, stopService, waitFor, type ServiceProcess } from './service-process.ts';

/** One replica process (replaced in place when restarted). */
export interface Replica {
  readonly name: string;
  service: ServiceProcess;
  /** Whether the process runs (not killed); a paused one still counts as running. */
  running: boolean;
  paused: boolean;
}

/** What `GET /mesh/status` says of the coordinator. */
export interface RoleView {
  readonly role: 'leader' | 'follower' | 'standalone';
  readonly self_url: string | null;
  readonly leader_url: string | null;
  readonly term: string | null;
}

/** A group of replicas on one etcd prefix. */
export class ReplicaGroup {
  readonly replicas: Replica[] = [];
  /** The leader's URL as last read from any replica (see {@link track}). */
  leaderUrl: string | undefined;
  private tracker: NodeJS.Timeout | undefined;

  constructor(private readonly args: readonly string[]) {}

  /** Starts `count` replicas one after the other (the first to campaign leads). */
  async start(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const service = await startService(['--port', '0', ...this.args]);
      this.replicas.push({ name: `c${i}`, service, running: true, paused: false });
    }
  }

  /** Starts `count` replicas at once, for tests where it does not matter which one leads first. */
  async startTogether(count: number): Promise<void> {
    const services = await Promise.all(Array.from({ length: count }, () => startService(['--port', '0', ...this.args])));
    for (const [i, service] of services.entries()) this.replicas.push({ name: `c${i}`, service, running: true, paused: false });
  }

  /** The role a replica reports now, or undefined when it does not answer. */
  async role(replica: Replica, timeoutMs = 1000): Promise<RoleView | undefined> {
    if (!replica.running || replica.paused) return undefined;
    try {
      const res = await call(replica.service.url, 'GET', '/mesh/status', { timeoutMs });
      return res.status === 200 ? (res.body.coordinator as RoleView) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Waits until exactly one running replica leads and is ready, and every other names it. */
  async leader(timeoutMs = 20_000): Promise<Replica> {
    return waitFor('one ready leader that every replica names', async () => {
      const live = this.replicas.filter((r) => r.running && !r.paused);
      const views = await Promise.all(live.map((r) => this.role(r)));
      const leaders = live.filter((_, i) => views[i]?.role === 'leader');
      if (leaders.length !== 1) return undefined;
      const leader = leaders[0]!;
      if (!views.every((v) => v?.leader_url === leader.service.url)) return undefined;
      const ready = await call(leader.service.url, 'GET', '/readyz', { timeoutMs: 1000 });
      return ready.status === 200 ? leader : undefined;
    }, { timeoutMs, intervalMs: 50 });
  }

  /**
   * Reads who leads every 200 ms, as a client that follows redirects would learn it: fetch drops
   * `Authorization` on a redirect to another origin, so game servers send to the leader directly.
   */
  track(): void {
    this.tracker = setInterval(() => void this.readLeader(), 200);
    this.tracker.unref();
  }

  /** Stops {@link track}. */
  untrack(): void {
    clearInterval(this.tracker);
  }

  private async readLeader(): Promise<void> {
    const live = this.replicas.filter((r) => r.running && !r.paused);
    const views = await Promise.all(live.map((r) => this.role(r, 500)));
    const leading = live.find((_, i) => views[i]?.role === 'leader');
    this.leaderUrl = leading?.service.url ?? views.find((v) => v?.leader_url)?.leader_url ?? undefined;
  }

  /** Where a client sends now: the leader as last read, else any running replica. */
  target(): string {
    return this.leaderUrl ?? this.anyUrl();
  }

  /** The URL of a running, unpaused replica other than `not` (a client's next try). */
  anyUrl(not?: Replica): string {
    const live = this.replicas.filter((r) => r.running && !r.paused && r !== not);
    assert.ok(live.length > 0, 'no replica runs');
    return live[Math.floor(Math.random() * live.length)]!.service.url;
  }

  /** SIGKILLs a replica and waits for its exit. */
  async kill(replica: Replica): Promise<void> {
    replica.running = false;
    if (replica.paused) replica.service.child.kill('SIGCONT');
    await stopService(replica.service, 'SIGKILL');
  }

  pause(replica: Replica): void {
    replica.paused = true;
    replica.service.child.kill('SIGSTOP');
  }

  resume(replica: Replica): void {
    replica.paused = false;
    replica.service.child.kill('SIGCONT');
  }

  /** Starts a killed replica again: a new process, on `port` if given (its old URL), else a new port. */
  async restart(replica: Replica, port = 0): Promise<void> {
    assert.ok(!replica.running);
    replica.service = await startService(['--port', String(port), ...this.args]);
    replica.running = true;
  }

  /** Every output line of a replica that is JSON with `msg` equal to `message`. */
  logged(replica: Replica, message: string): Record<string, unknown>[] {
    return replica.service.output().split('\n').filter((line) => line.startsWith('{')).flatMap((line) => {
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        return record.msg === message ? [record] : [];
      } catch {
        return [];
      }
    });
  }
}

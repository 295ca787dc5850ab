/**
 * The fleet the Godot action suites share: the real coordinator process (lowdb store on disk),
 * headless Godot 3 demo servers on the mesh_client addon in separate zones (stop file, identity
 * and action log each), one region, and two players sending a numbered action every 20 ms to
 * whichever endpoint the protocol names (player-driver.ts). `settleAndCheck` stops new actions,
 * waits until every sent one is confirmed, and checks the servers' logs: each applied exactly once,
 * in per-player order, none expired, none refused with a 409 naming a primary a player reported.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactlyOnceProblems, readLogs } from './action-log.ts';
import { Child, GODOT, freeUdpPorts, godotPath, spawnGodot, type GodotOptions } from './godot-fleet.ts';
import { PlayerDriver } from './player-driver.ts';
import { call, expectJson, killAll, startService, waitFor, type ServiceProcess } from './service-process.ts';

/** Generous bounds: a shared 2-core machine, next to other suites. */
export const START_MS = 30_000;
export const FAILOVER_MS = 15_000;
const SETTLE_MS = 30_000;
const PLAYERS = ['player-a', 'player-b'];

/** One demo server of the fleet. */
export interface FleetServer { child: Child; options: GodotOptions; log: string; stop: string }

/** Options of {@link GodotScenario.start}. */
export interface ScenarioOptions {
  readonly region: string;
  readonly servers: number;
  /** The coordinator URL the Godot servers are given (default: the service's own). */
  readonly coordinatorFor?: (serviceUrl: string) => string;
  /** Arguments every demo server gets besides its own files. */
  readonly extra?: readonly string[];
}

/** A running fleet; every process is stopped by `stop()`. */
export class GodotScenario {
  workDir = '';
  service: ServiceProcess | undefined;
  driver: PlayerDriver | undefined;
  /** By server id. */
  readonly godots = new Map<string, FleetServer>();
  readonly all: Child[] = [];
  private region = '';

  get base(): string {
    return this.service!.url;
  }

  context(): string {
    return this.all.map((c) => c.describe()).join('\n');
  }

  logs(): string[] {
    return [...this.godots.values()].map((g) => g.log);
  }

  async start(options: ScenarioOptions): Promise<void> {
    if (godotPath === null) throw new Error(`${GODOT} is not on PATH but CI=true: .ci/run must install it`);
    this.region = options.region;
    this.workDir = await mkdtemp(join(tmpdir(), 'mesh-godot-actions-'));
    this.service = await startService(['--port', '0', '--host', '127.0.0.1', '--data-dir', join(this.workDir, 'data')], { timeoutMs: START_MS });
    const coordinator = (options.coordinatorFor ?? ((url) => url))(this.base);
    const ports = await freeUdpPorts(options.servers);
    const started = ports.map((port, i) => {
      const name = `gd-${i + 1}`;
      const log = join(this.workDir, `${name}.actions`);
      const stop = join(this.workDir, `${name}.stop`);
      const godot: GodotOptions = {
        name, coordinator, zone: `z${i + 1}`, udpPort: port, workDir: this.workDir,
        extra: ['--stop-file', stop, '--identity', join(this.workDir, `${name}.identity`), '--action-log', log, ...(options.extra ?? [])],
      };
      const child = spawnGodot(godot);
      this.all.push(child);
      return { child, options: godot, log, stop };
    });
    for (const g of started) this.godots.set((await g.child.waitForLine(/^registered (\S+)$/, START_MS))[1]!, g);
    const created = expectJson('createRegion', await call(this.base, 'POST', '/mesh/regions', { body: { region_id: this.region } }), 201);
    await this.godots.get(created.primary.server_id)!.child.waitForLine(new RegExp(`^leading ${this.region} 1$`), START_MS);
    this.driver = new PlayerDriver({ baseUrl: () => this.base, regionId: this.region, players: PLAYERS });
    await this.driver.start();
  }

  async stop(): Promise<void> {
    this.driver?.stop();
    await Promise.all(this.all.map((c) => c.stop('SIGKILL', 2000)));
    await killAll();
    if (this.workDir !== '') await rm(this.workDir, { recursive: true, force: true });
  }

  async route(): Promise<{ epoch: number; primary: { server_id: string } | null }> {
    return expectJson('getRegionRoute', await call(this.base, 'GET', `/mesh/regions/${this.region}/route`), 200);
  }

  /** Waits for a serving primary at an epoch above `epoch`. */
  async newPrimary(epoch: number): Promise<{ epoch: number; primary: { server_id: string } }> {
    return waitFor(`a serving primary after epoch ${epoch}`, async () => {
      const r = await this.route();
      return r.epoch > epoch && r.primary !== null ? r as { epoch: number; primary: { server_id: string } } : undefined;
    }, { timeoutMs: FAILOVER_MS, intervalMs: 100 });
  }

  /** Stops new actions, waits until every sent one is confirmed, and checks the logs; then resumes. */
  async settleAndCheck(what: string): Promise<void> {
    const d = this.driver!;
    d.pause();
    try {
      await waitFor(`${what}: every action confirmed by a primary`, async () => (d.settled() ? true : undefined),
        { timeoutMs: SETTLE_MS, intervalMs: 100 });
    } catch (error) {
      throw new Error(`${String(error)}\n${JSON.stringify(d.players.map((p) => [p.id, p.nextSeq - 1, p.ackedThrough, p.queue.length]))}\n${this.context()}`);
    }
    const applied = readLogs(this.logs(), this.region);
    const problems = d.players.flatMap((p) => exactlyOnceProblems(applied, p.id, p.nextSeq - 1));
    assert.deepEqual(problems, [], `${what}\n${this.context()}`);
    const metrics = expectJson('getFailoverMetrics', await call(this.base, 'GET', '/mesh/failover_metrics'), 200);
    assert.equal(metrics.actions.expired, 0, `${what}: no buffered action expired`);
    assert.equal(d.stats.refusedToReportedPrimary, 0, `${what}: no 409 named the primary a player reported unreachable`);
    d.resume();
  }
}

/**
 * Detection latency, recovery time and false failovers under the standard network model.
 *
 * A simulated test mesh (`setupTestMesh`: 200 regions on 100 simulated servers of capacity 10 in 3
 * zones, heartbeats every 1000 ms, delivery 2 ms + exp(mean 10 ms) capped at 250 ms, 1% loss) runs
 * for 10 simulated hours, i.e. 1,000 server-hours. Every 20 s + exp(mean 20 s) one random server
 * that is up and `alive` is crashed; it restarts (new incarnation, empty) 10-30 s later, so the
 * fleet keeps its size and the restarted server becomes spare capacity again.
 *
 * Measured, all in virtual time:
 * - per failover (one per region whose primary crashed), from `coordinator.metrics()`: detection =
 *   detected_at - last heartbeat of the failed primary, recovery = completed_at - that heartbeat;
 * - per crashed server, from the events: detection after the injected crash (detected_at - crash
 *   time, which is what a player would feel) and after its last heartbeat, and the first tick at
 *   which its phi reached the suspicion threshold, after its last heartbeat (the guide's figure);
 * - false failovers: `metrics().falseFailovers`, and from ground truth the failure detections and
 *   failovers naming a server that the bench had not crashed (or had crashed and already seen
 *   detected).
 * Wall-clock time is the time to simulate, for information only.
 *
 * Run alone: node --expose-gc --import tsx bench/detection.bench.ts [--hours 10] [--servers 100] [--seed 7] [--quick]
 */
import { Coordinator } from '../mesh/core/coordinator.ts';
import { testMeshConfig } from '../mesh/base/config.ts';
import type { MeshEvent } from '../mesh/effects/events.ts';
import { SeededRandom } from '../mesh/runtime/random.ts';
import { immediateDurability, MeshRuntime } from '../mesh/runtime/runtime.ts';
import { defaultSimCapacity, setupTestMesh, targetUtilisation } from '../mesh/simulation/setup.ts';
import { standardNetwork } from '../mesh/simulation/network.ts';
import type { ServerId } from '../mesh/base/types.ts';
import { elapsedMs, heading, ms, num, numberFlag, quick, table, verdict } from './lib/report.ts';
import { summarize, type Summary } from './lib/stats.ts';
import { FaultLayer } from '../mesh/faults/fault-layer.ts';

const hourMs = 3_600_000;

/** Parameters of one run. */
interface Params {
  readonly seed: number;
  readonly servers: number;
  readonly hours: number;
  readonly minGapMs: number;
  readonly meanExtraGapMs: number;
  readonly minDownMs: number;
  readonly maxDownMs: number;
}

/** Ground truth kept by the bench while the mesh runs. */
class GroundTruth {
  /** Crashed servers whose failure has not been detected yet, with the crash time. */
  readonly awaitingDetection = new Map<ServerId, number>();
  /** Servers currently down (crashed, not restarted), with their restart time. */
  readonly down = new Map<ServerId, number>();
  readonly detectAfterCrashMs: number[] = [];
  readonly detectAfterLastHeartbeatMs: number[] = [];
  /** A crashed server's first suspicion after its crash, from its last heartbeat (the guide's figure). */
  readonly suspectAfterLastHeartbeatMs: number[] = [];
  /** Regions the server hosted when it was crashed (0 means it had no replication peer). */
  readonly hostedAtCrash = new Map<ServerId, number>();
  /** Detection after the last heartbeat, by the detector's reason and by whether the server hosted anything. */
  readonly byKind = new Map<string, number[]>();
  readonly unexplainedDetections: string[] = [];
  readonly unexplainedFailovers: string[] = [];
  readonly failedOver = new Set<ServerId>();
  healthySuspicions = 0;
  crashes = 0;
  crashesUndetected = 0;
  downServerMs = 0;

  /** Crashed servers whose phi has reached the suspicion threshold. */
  private readonly suspected = new Set<ServerId>();

  /** After every tick: a crashed server whose phi reached the threshold is suspected from then on. */
  afterTick(coordinator: Coordinator, nowMs: number): void {
    for (const id of this.awaitingDetection.keys()) {
      const detector = coordinator.records().servers.get(id)?.detector;
      if (detector === undefined || this.suspected.has(id) || detector.phi(nowMs) < coordinator.config.phiSuspectThreshold) continue;
      this.suspected.add(id);
      this.suspectAfterLastHeartbeatMs.push(nowMs - detector.lastHeartbeatAtMs);
    }
  }

  onEvent(event: MeshEvent): void {
    if (event.type === 'server_failure_detected') {
      this.suspected.delete(event.serverId);
      const crashedAt = this.awaitingDetection.get(event.serverId);
      if (crashedAt === undefined) {
        this.unexplainedDetections.push(`${event.serverId} at ${event.atMs} ms (${event.reason})`);
        return;
      }
      this.awaitingDetection.delete(event.serverId);
      this.failedOver.add(event.serverId);
      this.detectAfterCrashMs.push(event.atMs - crashedAt);
      this.detectAfterLastHeartbeatMs.push(event.atMs - event.lastHeartbeatAtMs);
      const hosted = this.hostedAtCrash.get(event.serverId) ?? 0;
      const kind = `${event.reason}, ${hosted === 0 ? 'hosting no region (no peer to confirm)' : 'hosting regions'}`;
      this.byKind.set(kind, [...(this.byKind.get(kind) ?? []), event.atMs - event.lastHeartbeatAtMs]);
    } else if (event.type === 'failover_initiated' && event.failedServerId !== null &&
      !this.failedOver.has(event.failedServerId)) {
      this.unexplainedFailovers.push(`${event.regionId}: ${event.failedServerId} at ${event.atMs} ms`);
    } else if (event.type === 'server_status_changed' && event.to === 'suspect' &&
      !this.awaitingDetection.has(event.serverId) && !this.down.has(event.serverId)) {
      this.healthySuspicions += 1;
    }
  }
}

function run(p: Params) {
  const random = new SeededRandom(p.seed);
  const coordinator = new Coordinator(testMeshConfig, 0);
  const truth = new GroundTruth();
  const tick = coordinator.tick.bind(coordinator);
  coordinator.tick = (nowMs) => {
    tick(nowMs);
    truth.afterTick(coordinator, nowMs);
  };
  const runtime = new MeshRuntime(new FaultLayer(coordinator, random.fork()), 0, immediateDurability((e) => truth.onEvent(e)));
  // Enough regions to fill the fleet at the simulator's target utilisation.
  const regions = Math.floor((p.servers * defaultSimCapacity * targetUtilisation) / (1 + testMeshConfig.backupsPerRegion));
  const mesh = setupTestMesh(coordinator, random.fork(), { regions, zones: 3, playersPerRegion: 10 }, 0);
  if (!mesh.ok) throw new Error(mesh.detail);
  runtime.fleet = mesh.value.fleet;
  const fleet = mesh.value.fleet;
  const serverCount = fleet.servers.size;
  const chaos = random.fork();
  const endMs = p.hours * hourMs;
  const started = process.hrtime.bigint();
  let nextCrashMs = p.minGapMs + chaos.exponential(p.meanExtraGapMs);
  while (nextCrashMs < endMs) {
    runtime.advanceTo(nextCrashMs);
    for (const [id, restartAt] of truth.down) if (restartAt <= nextCrashMs) truth.down.delete(id);
    const candidates = [...fleet.servers.values()].filter((s) => s.up && !truth.down.has(s.id) &&
      coordinator.server(s.id)?.status === 'alive');
    const victim = candidates[Math.floor(chaos.next() * candidates.length)];
    if (victim !== undefined) {
      const downMs = p.minDownMs + chaos.next() * (p.maxDownMs - p.minDownMs);
      const injected = runtime.injectFailure({ target: { serverId: victim.id }, mode: 'crash', durationMs: Math.round(downMs) }, nextCrashMs);
      if (!injected.ok) throw new Error(injected.detail);
      const view = coordinator.server(victim.id);
      truth.hostedAtCrash.set(victim.id, view === undefined ? 0 : view.primaries + view.backups);
      truth.awaitingDetection.set(victim.id, nextCrashMs);
      truth.down.set(victim.id, nextCrashMs + Math.round(downMs));
      truth.downServerMs += Math.min(Math.round(downMs), endMs - nextCrashMs);
      truth.crashes += 1;
    }
    nextCrashMs += p.minGapMs + chaos.exponential(p.meanExtraGapMs);
  }
  runtime.advanceTo(endMs);
  const wallMs = elapsedMs(started);
  truth.crashesUndetected = [...truth.awaitingDetection.values()].filter((at) => at < endMs - 10_000).length;
  return { truth, metrics: coordinator.metrics(), status: coordinator.status(endMs), serverCount, regions, wallMs, endMs };
}

function main(): void {
  const q = quick();
  const p: Params = {
    seed: numberFlag('seed', 7),
    servers: numberFlag('servers', 100),
    hours: numberFlag('hours', q ? 0.5 : 10),
    minGapMs: 20_000,
    meanExtraGapMs: 20_000,
    minDownMs: 10_000,
    maxDownMs: 30_000,
  };
  const r = run(p);
  const { truth, metrics: m } = r;
  const serverHours = (r.serverCount * r.endMs) / hourMs;
  const upServerHours = serverHours - truth.downServerMs / hourMs;
  const crash = summarize(truth.detectAfterCrashMs);
  const lastHb = summarize(truth.detectAfterLastHeartbeatMs);
  const falseTruth = truth.unexplainedDetections.length + truth.unexplainedFailovers.length;

  heading('Detection and recovery under the standard network model');
  console.log(`Mesh: ${r.serverCount} simulated servers (capacity ${defaultSimCapacity}, 3 zones), ${r.regions} regions x ` +
    `(1 primary + ${testMeshConfig.backupsPerRegion} backups); network: ${standardNetwork.baseDelayMs} ms + ` +
    `exp(mean ${standardNetwork.meanExtraDelayMs} ms) capped ${standardNetwork.maxDelayMs} ms, ` +
    `${standardNetwork.lossProbability * 100}% loss each way; heartbeat ${testMeshConfig.heartbeatIntervalMs} ms, ` +
    `tick ${testMeshConfig.tickIntervalMs} ms; seed ${p.seed}.`);
  console.log(`Faults: one crash every ${p.minGapMs / 1000} s + exp(mean ${p.meanExtraGapMs / 1000} s) on a random ` +
    `alive server; restart after ${p.minDownMs / 1000}-${p.maxDownMs / 1000} s.\n`);
  console.log(table(['quantity', 'value', 'target', 'verdict'], [
    ['simulated time', `${num(r.endMs / hourMs, 2)} h`, '', ''],
    ['simulated server-hours (fleet x time)', num(serverHours, 0), '>= 1,000', verdict(serverHours >= 1000)],
    ['  of which servers up', num(upServerHours, 0), '', ''],
    ['crashes injected (single server)', num(truth.crashes), '', ''],
    ['crashes detected', num(truth.detectAfterCrashMs.length), `all (${truth.crashesUndetected} missed)`,
      verdict(truth.crashesUndetected === 0)],
    ['failovers (regions whose primary crashed)', num(m.failovers.total), '', ''],
    ['  completed / failed / in progress', `${m.failovers.completed} / ${m.failovers.failed} / ${m.failovers.in_progress}`, '', ''],
    ['detection p50 (per failover, from last heartbeat)', ms(m.detectionMs.p50), '', ''],
    ['detection p99 (per failover, from last heartbeat)', ms(m.detectionMs.p99), '<= 3,000 ms', verdict(m.detectionMs.p99 <= 3000)],
    ['detection max (per failover, from last heartbeat)', ms(m.detectionMs.max), '<= 5,000 ms (seed)', verdict(m.detectionMs.max <= 5000)],
    ['recovery p50 (per failover, from last heartbeat)', ms(m.recoveryMs.p50), '', ''],
    ['recovery p99 (per failover, from last heartbeat)', ms(m.recoveryMs.p99), '<= 4,000 ms', verdict(m.recoveryMs.p99 <= 4000)],
    ['recovery max (per failover, from last heartbeat)', ms(m.recoveryMs.max), '', ''],
    ['false failovers (metrics().falseFailovers)', num(m.falseFailovers), '0', verdict(m.falseFailovers === 0)],
    ['false failovers (ground truth: detections/failovers of servers not crashed)', num(falseTruth), '0', verdict(falseTruth === 0)],
    ['healthy servers marked suspect (never failed over)', num(truth.healthySuspicions), '', ''],
    ['wall-clock time of the simulation', ms(r.wallMs), '', ''],
  ]));
  console.log('\nPer crashed server (from the events; detection measured from the injected crash and from the last heartbeat):\n');
  const row = (name: string, s: Summary) => [name, num(s.count), ms(s.p50), ms(s.p99), ms(s.max)];
  console.log(table(['detection of a crashed server', 'n', 'p50', 'p99', 'max'], [
    row('after the crash', crash),
    row('after its last heartbeat', lastHb),
    row('suspected (phi at the threshold), after its last heartbeat', summarize(truth.suspectAfterLastHeartbeatMs)),
    ...[...truth.byKind].sort().map(([kind, values]) => row(`  after its last heartbeat: ${kind}`, summarize(values))),
  ]));
  if (m.detectionMs.count < m.failovers.total || m.recoveryMs.count < m.failovers.completed) {
    console.log(`\nNote: metrics() computes its distributions over the most recent ${num(m.detectionMs.count)} detection and ` +
      `${num(m.recoveryMs.count)} recovery samples only (of ${num(m.failovers.total)} failovers).`);
  }
  if (falseTruth > 0) {
    console.log('\nUnexplained detections:', truth.unexplainedDetections.slice(0, 10).join('; '));
    console.log('Unexplained failovers:', truth.unexplainedFailovers.slice(0, 10).join('; '));
  }
  console.log(`\nFinal state: ${JSON.stringify(r.status.servers)}, regions ${JSON.stringify(r.status.regions)}, ` +
    `replication coverage ${num(r.metrics.replicationCoverage, 3)}.`);
}

main();

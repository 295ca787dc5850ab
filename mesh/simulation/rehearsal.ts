/**
 * The startup rehearsal: before the service takes traffic it fails 30% of a small, throwaway
 * simulated mesh and lets it recover, in virtual time, on a coordinator of its own.
 *
 * Why: V8 compiles a function lazily, on its first call, and collects the type feedback its
 * optimising compiler needs while it runs. A coordinator's failure path (declaration, eviction,
 * promotion, failover records, phase changes, mass alerts) runs for the first time when servers
 * first fail, so the first mass failure of a process ran it from cold: in the mass-failure bench
 * (30% of 10,000 servers in one tick) that first tick took 1.5-2.5 times as long as the second.
 * After a rehearsal on 60 regions (tens of calls per function, nothing optimised yet), it took a
 * median 0.71-0.88 times as long as without, faster in 16 of 20 alternating pairs of processes
 * (`BENCHMARKS.md`, runs V-X): better, not always, and still slower than the second, since V8's
 * optimising compiler starts on the failure path only during the real thing.
 *
 * The rehearsal only prepares the engine: its coordinator is discarded, and nothing it does
 * reaches the service's own mesh, events or store.
 *
 * V8 flushes the bytecode (and with it the feedback) of functions that have not run for a few
 * major collections, which in a long-running service would undo the rehearsal before the first
 * real failure; `npm start` therefore runs node with `--no-flush-bytecode` (see
 * FAULT_TOLERANCE_DEPLOYMENT.md).
 */
import type { MeshConfig } from '../base/config.ts';
import { Coordinator } from '../core/coordinator.ts';
import { SeededRandom } from '../runtime/random.ts';
import { MeshRuntime } from '../runtime/runtime.ts';
import { setupTestMesh } from './setup.ts';

/** What the rehearsal did, for the startup log (and tests). */
export interface RehearsalReport {
  readonly regions: number;
  readonly servers: number;
  readonly serversFailed: number;
  readonly failoversCompleted: number;
  /** Regions that had their primary and all their backups back when the rehearsal ended. */
  readonly regionsActive: number;
  /** Regions whose every replica crashed: nothing can bring them back, in a rehearsal or a real mesh. */
  readonly regionsUnavailable: number;
  /** Failovers not completed when the rehearsal ended (0 unless `maxRecoveryMs` ran out). */
  readonly failoversInProgress: number;
  /** Virtual time the rehearsal covered. */
  readonly simulatedMs: number;
}

/** Size of the rehearsal mesh: enough calls to give every failure-path function its feedback. */
export const rehearsalRegions = 60;

/** The rehearsal is deterministic: same config, same run. */
const rehearsalSeed = 0x5eed;

/** Share of the rehearsal's servers that crash at once (as in the mass-failure bench). */
const failFraction = 0.3;

/**
 * Fails 30% of a 60-region simulated mesh built with `config` and runs it until every crashed
 * server is declared, every failover has completed and every region that kept a replica has its
 * backups again, or until `maxRecoveryMs` of virtual time after the crash (the one late tick that
 * declares the failures always runs). Throws only if `config` cannot hold such a mesh.
 */
export function rehearseMassFailure(config: MeshConfig, maxRecoveryMs = 60_000): RehearsalReport {
  const random = new SeededRandom(rehearsalSeed);
  const coordinator = new Coordinator(config, random.fork(), 0);
  const runtime = new MeshRuntime(coordinator, 0);
  const mesh = setupTestMesh(coordinator, random.fork(), {
    regions: rehearsalRegions, serverCapacity: 5, zones: 3, criticalRegions: 3, playersPerRegion: 10,
  }, 0, { playersPerRegion: 2 });
  if (!mesh.ok) throw new Error(`rehearsal mesh: ${mesh.detail}`);
  runtime.fleet = mesh.value.fleet;
  // Ten heartbeats: every detector has learnt from real ones, as in the mass-failure bench.
  const failAtMs = 10 * config.heartbeatIntervalMs;
  runtime.advanceTo(failAtMs);
  const injected = runtime.injectFailure({ target: { fraction: failFraction }, mode: 'crash' }, failAtMs);
  if (!injected.ok) throw new Error(`rehearsal failure: ${injected.detail}`);
  const { counts } = coordinator.ctx;
  const tickMs = config.tickIntervalMs;
  // The worst case, as the mass-failure bench stages it: the next tick comes as late as it can
  // without the coordinator taking the gap for its own stall (TILT), so that one tick declares the
  // failures, raises the mass alert and promotes in every region that lost its primary. (One
  // spread over regular ticks did no better in a probe, `BENCHMARKS.md`, runs V-X.)
  let nowMs = Math.max(failAtMs, failAtMs + config.tiltThresholdMs - tickMs);
  runtime.advanceTo(nowMs, false);
  const { servers, regions } = coordinator.ctx.topology;
  const crashed = injected.value.serverIds;
  // A failover in progress keeps its region failing over, so the phase counts cover it: no
  // metrics view is built at every tick.
  const recovered = () => crashed.every((id) => servers.get(id)?.status === 'failed') &&
    counts.phases.active === regions.size - counts.phases.unavailable;
  while (nowMs < failAtMs + maxRecoveryMs && !recovered()) {
    nowMs += tickMs;
    runtime.advanceTo(nowMs);
  }
  const metrics = coordinator.metrics();
  return {
    regions: regions.size, servers: mesh.value.servers.length,
    serversFailed: counts.statuses.failed, failoversCompleted: metrics.failovers.completed,
    regionsActive: counts.phases.active, regionsUnavailable: counts.phases.unavailable,
    failoversInProgress: metrics.failovers.in_progress, simulatedMs: nowMs,
  };
}

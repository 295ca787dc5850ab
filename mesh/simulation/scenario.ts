/**
 * A seeded simulation run for property tests and benchmarks: one seed gives the coordinator's
 * `Random`, the fleet's network and players, and a separate workload stream for the test's own
 * choices (which server to crash, when), so that a run is reproduced exactly from its spec.
 *
 * The run advances one tick at a time so that checkers can look at the state after every step, and
 * it can observe the core's inputs and outputs (heartbeats and their replies, submitted, collected,
 * acknowledged and expired actions) by wrapping the coordinator's methods on this instance only.
 * Observation never changes what the core decides.
 */
import type { HeartbeatInput, HeartbeatReply } from '../core/heartbeat.ts';
import type { BufferedAction } from '../actions/action-buffer.ts';
import { Coordinator } from '../core/coordinator.ts';
import { testMeshConfig, validateMeshConfig, type MeshConfig } from '../base/config.ts';
import type { MeshEvent } from '../effects/events.ts';
import type { FaultSpec, InjectedFault } from '../faults/faults.ts';
import type { RegionId, Result, ServerId } from '../base/types.ts';
import type { FleetOptions, SimulatedFleet } from './fleet.ts';
import { SeededRandom } from '../runtime/random.ts';
import { MeshRuntime, immediateDurability } from '../runtime/runtime.ts';
import { setupTestMesh, type TestMeshSpec } from './setup.ts';
import { FaultLayer } from '../faults/fault-layer.ts';

/** Everything that defines a run; printed with every failing property. */
export interface ScenarioSpec extends TestMeshSpec {
  readonly seed: number;
  /** Overrides of `testMeshConfig` (for example a small action buffer to exercise its bound). */
  readonly config?: Partial<MeshConfig>;
  /** Simulated players who act while their region fails over. */
  readonly fleet?: FleetOptions;
}

/** What the core was told and what it answered, as seen from outside. */
export interface CoreObserver {
  heartbeat?(serverId: ServerId, input: HeartbeatInput, reply: HeartbeatReply, nowMs: number): void;
  accepted?(regionId: RegionId, playerId: string, seq: number, nowMs: number): void;
  collected?(regionId: RegionId, serverId: ServerId, actions: readonly BufferedAction[], nowMs: number): void;
  acknowledged?(regionId: RegionId, serverId: ServerId, acks: readonly { playerId: string; seq: number }[], nowMs: number): void;
  expired?(refs: readonly { regionId: RegionId; playerId: string; seq: number }[], nowMs: number): void;
}

/**
 * Wraps the coordinator's command methods on this instance so that `observer` sees every input and
 * answer. The core's own code is untouched; the wrappers only forward.
 */
export function observeCore(coordinator: Coordinator, observer: CoreObserver): void {
  const heartbeat = coordinator.heartbeat.bind(coordinator);
  coordinator.heartbeat = (id, input, nowMs) => {
    const result = heartbeat(id, input, nowMs);
    if (result.ok) observer.heartbeat?.(id, input, result.value, nowMs);
    return result;
  };
  const submit = coordinator.submitAction.bind(coordinator);
  coordinator.submitAction = (id, action, nowMs) => {
    const result = submit(id, action, nowMs);
    if (result.ok && result.value.status === 'buffered') observer.accepted?.(id, action.playerId, action.seq, nowMs);
    return result;
  };
  const collect = coordinator.collectActions.bind(coordinator);
  coordinator.collectActions = (id, serverId, nowMs, limit) => {
    const result = collect(id, serverId, nowMs, limit);
    if (result.ok) observer.collected?.(id, serverId, result.value.actions, nowMs);
    return result;
  };
  const acknowledge = coordinator.acknowledgeActions.bind(coordinator);
  coordinator.acknowledgeActions = (id, serverId, acks, nowMs) => {
    const result = acknowledge(id, serverId, acks, nowMs);
    if (result.ok) observer.acknowledged?.(id, serverId, acks, nowMs);
    return result;
  };
  const buffer = Coordinator.partsForTests(coordinator).buffer;
  const expire = buffer.expire.bind(buffer);
  buffer.expire = (nowMs) => {
    const refs = expire(nowMs);
    if (refs.length > 0) observer.expired?.(refs, nowMs);
    return refs;
  };
}

/** A coordinator with its simulated fleet, moved through virtual time tick by tick. */
export class SimRun {
  readonly coordinator: Coordinator;
  readonly runtime: MeshRuntime;
  readonly fleet: SimulatedFleet;
  readonly servers: readonly ServerId[];
  readonly regions: readonly RegionId[];
  /** The test's own random choices; independent of the core's and the fleet's streams. */
  readonly workload: SeededRandom;
  /** Every event the core emitted, in order. */
  readonly events: MeshEvent[] = [];
  readonly tickMs: number;
  private readonly afterTick: ((nowMs: number) => void)[] = [];
  private lastTickMs = 0;
  /** How far the simulated wall clock is from virtual (monotonic) time. */
  private wallOffsetMs = 0;

  constructor(readonly spec: ScenarioSpec, observer: CoreObserver = {}) {
    const config: MeshConfig = { ...testMeshConfig, ...spec.config };
    const errors = validateMeshConfig(config);
    if (errors.length > 0) throw new Error(`bad scenario config: ${errors.join('; ')}`);
    const root = new SeededRandom(spec.seed);
    this.coordinator = new Coordinator(config, 0);
    const faults = new FaultLayer(this.coordinator, root.fork());
    observeCore(this.coordinator, observer);
    this.runtime = new MeshRuntime(faults, 0, immediateDurability((event) => this.events.push(event)));
    const mesh = setupTestMesh(this.coordinator, root.fork(), spec, 0, spec.fleet ?? {});
    if (!mesh.ok) throw new Error(`scenario setup failed: ${mesh.detail}`);
    this.runtime.fleet = mesh.value.fleet;
    this.runtime.flush();
    this.fleet = mesh.value.fleet;
    this.servers = mesh.value.servers;
    this.regions = mesh.value.regions;
    this.workload = root.fork();
    this.tickMs = config.tickIntervalMs;
  }

  /** Time of the last tick run. */
  get nowMs(): number {
    return this.lastTickMs;
  }

  /** Calls `check` after every tick from now on. */
  onTick(check: (nowMs: number) => void): void {
    this.afterTick.push(check);
  }

  /** Runs every tick up to `targetMs`, checking after each one. */
  advanceTo(targetMs: number): void {
    while (this.runtime.nextTick <= targetMs) {
      const now = this.runtime.nextTick;
      this.runtime.observeWallClock(now, now + this.wallOffsetMs);
      this.runtime.advanceTo(now);
      this.lastTickMs = now;
      for (const check of this.afterTick) check(now);
    }
  }

  /**
   * Injects a fault at `atMs` (which may fall between ticks): ticks before it run first, then the
   * fleet's messages due by then, so the fault strikes at exactly that virtual instant.
   */
  inject(spec: FaultSpec, atMs: number): Result<InjectedFault> {
    this.advanceTo(atMs);
    this.fleet.runUntil(atMs);
    return this.runtime.injectFailure(spec, atMs);
  }

  /**
   * The coordinator's whole process pauses at `atMs` for `durationMs` (a long GC pause, a stopped
   * or suspended process): no tick runs and no heartbeat is read until it resumes, when the first
   * tick sees the gap (TILT) and the heartbeats that waited are read.
   */
  stallCoordinator(atMs: number, durationMs: number): void {
    this.advanceTo(atMs);
    const untilMs = atMs + durationMs;
    this.fleet.pauseCoordinatorUntil(untilMs);
    this.runtime.advanceTo(untilMs, false);
    this.lastTickMs = this.runtime.nextTick - this.tickMs;
    for (const check of this.afterTick) check(this.lastTickMs);
  }

  /**
   * The coordinator's wall clock steps by `stepMs` (either way) at `atMs`; the core's monotonic
   * time does not. The next tick compares the two clocks, as the service's ticker does.
   */
  stepWallClock(atMs: number, stepMs: number): void {
    this.advanceTo(atMs);
    this.wallOffsetMs += stepMs;
  }

  /** Servers that lead at least one region right now. */
  primaries(): ServerId[] {
    const leaders = new Set<ServerId>();
    for (const region of this.coordinator.records().regions.values()) if (region.primary !== null) leaders.add(region.primary);
    return [...leaders].sort();
  }

  /** A uniformly drawn element of a non-empty list (workload stream). */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.workload.int(0, items.length - 1)] as T;
  }

  /** Simulated server-hours covered so far (servers times virtual hours). */
  serverHours(): number {
    return (this.servers.length * this.nowMs) / 3_600_000;
  }
}

/**
 * A seeded simulation run for property tests and benchmarks: one seed gives the coordinator's
 * `Random`, the fleet's network and players, and a separate workload stream for the test's own
 * choices (which server to crash, when), so that a run is reproduced exactly from its spec.
 *
 * With `coordinatorFaults`, the run also models what is durable (the core's change records taken at
 * every `persist` effect and applied to a map, as the service's store writes them) so that the coordinator itself can crash and
 * restart from its last durable state, or from an older one (an operator's restore), while the
 * fleet runs on; every restart is a new boot, with event ids of its own.
 *
 * The run advances one tick at a time so that checkers can look at the state after every step, and
 * it can observe the core's inputs and outputs (heartbeats and their replies, submitted, collected,
 * acknowledged and expired actions) by wrapping the coordinator's methods on this instance only.
 * Observation never changes what the core decides.
 */
import type { HeartbeatInput, HeartbeatReply } from '../core/heartbeat.ts';
import type { BufferedAction } from '../actions/action-buffer.ts';
import { Coordinator } from '../core/coordinator.ts';
import type { CoreState } from '../core/state.ts';
import { recordsOfState, stateFromRecords, type ChangeBatch } from '../core/change-records.ts';
import { eventId } from '../effects/events.ts';
import { reject } from '../base/types.ts';
import { testMeshConfig, validateMeshConfig, type MeshConfig } from '../base/config.ts';
import type { MeshEvent } from '../effects/events.ts';
import type { FaultSpec, InjectedFault } from '../faults/faults.ts';
import type { RegionId, Result, ServerId } from '../base/types.ts';
import type { FleetOptions, SimulatedFleet } from './fleet.ts';
import { SeededRandom } from '../runtime/random.ts';
import { MeshRuntime, immediateDurability } from '../runtime/runtime.ts';
import { setupTestMesh, type TestMeshSpec } from './setup.ts';
import { FaultLayer } from '../faults/fault-layer.ts';
import { SimStore, type StoreFault, type StoreHost } from './sim-store.ts';

/** Everything that defines a run; printed with every failing property. */
export interface ScenarioSpec extends TestMeshSpec {
  readonly seed: number;
  /** Overrides of `testMeshConfig` (for example a small action buffer to exercise its bound). */
  readonly config?: Partial<MeshConfig>;
  /** Simulated players who act while their region fails over. */
  readonly fleet?: FleetOptions;
  /** Keep the durable states, so that the coordinator can crash and be restored (costs an export per write). */
  readonly coordinatorFaults?: boolean;
  /**
   * Model the store's writes (mesh/simulation/sim-store.ts: latency, and the faults given with
   * `addStoreFault`) instead of making every change durable at once.
   */
  readonly storeFaults?: boolean;
}

/** How many durable states are kept for restores (one per write; writes are at most one per tick). */
const durableHistory = 300;

/** What the core was told and what it answered, as seen from outside. */
export interface CoreObserver {
  heartbeat?(serverId: ServerId, input: HeartbeatInput, reply: HeartbeatReply, nowMs: number): void;
  /** `changeSeq`: the change that must be durable before the player is answered 202. */
  accepted?(regionId: RegionId, playerId: string, seq: number, nowMs: number, changeSeq: number): void;
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
    if (result.ok && result.value.status === 'buffered') observer.accepted?.(id, action.playerId, action.seq, nowMs, result.value.changeSeq);
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
  private core: Coordinator;
  private mesh: MeshRuntime;
  readonly fleet: SimulatedFleet;
  readonly servers: readonly ServerId[];
  readonly regions: readonly RegionId[];
  /** The test's own random choices; independent of the core's and the fleet's streams. */
  readonly workload: SeededRandom;
  /** Every event the core emitted, in order. */
  readonly events: MeshEvent[] = [];
  readonly tickMs: number;
  private readonly afterTick: ((nowMs: number) => void)[] = [];
  private readonly afterPersist: (() => void)[] = [];
  private readonly afterRestart: ((nowMs: number, restored: boolean) => void)[] = [];
  private lastTickMs = 0;
  /** How far the simulated wall clock is from virtual (monotonic) time. */
  private wallOffsetMs = 0;
  private readonly config: MeshConfig;
  private readonly coordinatorRandom: SeededRandom;
  /** Durable states, oldest first, with when they were written (kept with `coordinatorFaults`). */
  private readonly durable: { atMs: number; state: CoreState }[] = [];
  /** The durable records, as the service's store holds them: every write's change records applied. */
  private stored = new Map<string, unknown>();
  /** While the coordinator is down: when it restarts and from which durable state. */
  private down: { untilMs: number; from: CoreState; restored: boolean } | null = null;
  /** The coordinator's current boot (a new one at every restart); qualifies event ids. */
  private boot = 1;
  private readonly publishedIds = new Set<string>();
  /** Event ids published twice (must stay empty: ids are unique across restarts). */
  readonly reusedEventIds: string[] = [];
  /** Coordinator crashes and restores carried out so far. */
  readonly coordinatorFaultsDone = { crashes: 0, restores: 0 };
  /** The simulated store, with `storeFaults` (null: every change is durable at once). */
  readonly store: SimStore | null = null;
  private readonly beforeWrite: (() => void)[] = [];
  private readonly afterWriteFailed: (() => void)[] = [];
  /** When the coordinator was crashed or stalled (no deadline can be judged then). */
  readonly coordinatorOutages: { fromMs: number; untilMs: number }[] = [];
  /** Every fault injected on servers: who, from when, until when (Infinity: for good), plus the delay a slow link adds. */
  readonly faultLog: { serverIds: readonly ServerId[]; fromMs: number; untilMs: number; extraMs: number }[] = [];

  constructor(readonly spec: ScenarioSpec, private readonly observer: CoreObserver = {}) {
    const config: MeshConfig = { ...testMeshConfig, ...spec.config };
    const errors = validateMeshConfig(config);
    if (errors.length > 0) throw new Error(`bad scenario config: ${errors.join('; ')}`);
    this.config = config;
    const root = new SeededRandom(spec.seed);
    this.core = new Coordinator(config, 0);
    this.coordinatorRandom = root.fork();
    observeCore(this.core, observer);
    this.mesh = this.newRuntime(0);
    const mesh = setupTestMesh(this.core, root.fork(), spec, 0, spec.fleet ?? {});
    if (!mesh.ok) throw new Error(`scenario setup failed: ${mesh.detail}`);
    this.mesh.fleet = mesh.value.fleet;
    this.mesh.flush();
    this.fleet = mesh.value.fleet;
    this.servers = mesh.value.servers;
    this.regions = mesh.value.regions;
    this.workload = root.fork();
    this.tickMs = config.tickIntervalMs;
    // Forked last, so that the other streams stay what they were; the setup above was durable at once.
    if (spec.storeFaults === true) this.store = new SimStore(root.fork());
  }

  /** What the simulated store asks of the current boot's coordinator (the service's host does the same). */
  private readonly storeHost: StoreHost = {
    take: (nowMs) => {
      for (const hook of this.beforeWrite) hook();
      return this.core.takeChanges(nowMs);
    },
    written: (batch, nowMs, recovered) => {
      this.keepDurable(batch);
      this.core.markDurable(batch.seq, nowMs);
      if (recovered) this.core.storageRecovered(nowMs);
      for (const hook of this.afterPersist) hook();
    },
    failed: (nowMs, first) => {
      if (first) this.core.storageFailing('simulated write failure', nowMs);
      for (const hook of this.afterWriteFailed) hook();
    },
  };

  /** Storage faults in a window of virtual time (needs `storeFaults`); false without a simulated store. */
  addStoreFault(fault: StoreFault): boolean {
    this.store?.addFault(fault);
    return this.store !== null;
  }

  /** The durable records, as the simulated store holds them (kept with `coordinatorFaults` or `storeFaults`). */
  get storedRecords(): ReadonlyMap<string, unknown> {
    return this.stored;
  }

  /** Calls `hook` when a write takes the core's changes, and `failed` when a write fails (with `storeFaults`). */
  onWrite(hook: () => void, failed: () => void): void {
    this.beforeWrite.push(hook);
    this.afterWriteFailed.push(failed);
  }

  /** The coordinator of the current boot. */
  get coordinator(): Coordinator {
    return this.core;
  }

  /** The runtime of the current boot. */
  get runtime(): MeshRuntime {
    return this.mesh;
  }

  /** Time of the last tick run. */
  get nowMs(): number {
    return this.lastTickMs;
  }

  /** True while the coordinator is crashed. */
  get coordinatorDown(): boolean {
    return this.down !== null;
  }

  /** Calls `hook` after every durable write (the state as of the last flush is on disk). */
  onPersist(hook: () => void): void {
    this.afterPersist.push(hook);
  }

  /** Calls `hook` when the coordinator restarted (`restored`: from an older state than its last). */
  onRestart(hook: (nowMs: number, restored: boolean) => void): void {
    this.afterRestart.push(hook);
  }

  /**
   * The coordinator process dies at `atMs` (what it did since its last durable write is lost) and
   * restarts `downMs` later from its last durable state, or, with `restoreAgeMs` > 0, from the newest
   * durable state at least that old (an operator's restore of an older data file). The fleet runs
   * on meanwhile; its heartbeats go unanswered. False when the run keeps no durable states or the
   * coordinator is already down.
   */
  crashCoordinator(atMs: number, downMs: number, restoreAgeMs = 0): boolean {
    if (this.spec.coordinatorFaults !== true || this.down !== null) return false;
    this.advanceTo(atMs);
    this.fleet.runUntil(atMs);
    if (this.down !== null) return false;
    const restored = restoreAgeMs > 0;
    const candidates = restored ? this.durable.filter((d) => d.atMs <= atMs - restoreAgeMs) : this.durable;
    const from = (candidates.at(-1) ?? this.durable[0])?.state;
    if (from === undefined) return false;
    this.down = { untilMs: atMs + Math.max(1, downMs), from, restored };
    this.coordinatorOutages.push({ fromMs: atMs, untilMs: this.down.untilMs });
    this.fleet.sendHeartbeatsTo(() => reject('coordinator_down', 'the coordinator is not running'));
    // Its sockets close with it: sessions end, and reconnects are refused until it is back.
    this.fleet.sessions?.cut(atMs, undefined, Math.max(1, downMs));
    if (restored) this.coordinatorFaultsDone.restores++;
    else this.coordinatorFaultsDone.crashes++;
    return true;
  }

  private newRuntime(startMs: number): MeshRuntime {
    const faults = new FaultLayer(this.core, this.coordinatorRandom.fork());
    return new MeshRuntime(faults, startMs, (effects, coordinator) => {
      for (const effect of effects) {
        if (effect.type === 'emit') {
          this.events.push(effect.event);
          this.published(eventId(`b${this.boot}`, effect.event.seq));
          continue;
        }
        if (this.store !== null) {
          this.store.requested(effect.seq, this.lastTickMs, this.storeHost);
          continue;
        }
        if (this.spec.coordinatorFaults === true) this.keepDurable(coordinator.takeChanges(this.lastTickMs));
        coordinator.markDurable(effect.seq);
        for (const hook of this.afterPersist) hook();
      }
      // Servers with a session are pushed what changed (the fleet is not there yet at the first flush).
      (this.fleet as SimulatedFleet | undefined)?.sessions?.changed(this.lastTickMs);
    });
  }

  /** Applies a write's change records to the durable records and keeps the state they make. */
  private keepDurable(batch: ChangeBatch): void {
    for (const { key, value } of batch.records) {
      if (value === null) this.stored.delete(key);
      else this.stored.set(key, value);
    }
    if (this.spec.coordinatorFaults !== true) return;
    const state = stateFromRecords(this.stored) as CoreState;
    this.durable.push({ atMs: this.lastTickMs, state: JSON.parse(JSON.stringify(state)) as CoreState });
    if (this.durable.length > durableHistory) this.durable.splice(0, this.durable.length - durableHistory);
  }

  private published(id: string): void {
    if (!this.publishedIds.has(id)) this.publishedIds.add(id);
    else if (this.reusedEventIds.length < 20) this.reusedEventIds.push(id);
  }

  /** The coordinator comes back from its durable state: a new boot, a new process, the same fleet. */
  private restart(): void {
    const down = this.down;
    if (down === null) return;
    this.down = null;
    const nowMs = down.untilMs;
    this.boot++;
    this.core = new Coordinator(this.config, nowMs, JSON.parse(JSON.stringify(down.from)) as CoreState);
    observeCore(this.core, this.observer);
    const firstTick = Math.ceil(nowMs / this.config.tickIntervalMs) * this.config.tickIntervalMs;
    this.mesh = this.newRuntime(firstTick);
    this.fleet.reattach(this.core);
    this.mesh.fleet = this.fleet;
    this.store?.crashed(down.from.positions.changeSeq);
    if (this.spec.coordinatorFaults === true) {
      // The restarted process reads what it restarted from (a restore replaces the data files).
      this.stored = new Map(recordsOfState(down.from).map((r) => [r.key, r.value]));
      this.durable.push({ atMs: nowMs, state: down.from });
    }
    for (const hook of this.afterRestart) hook(nowMs, down.restored);
  }

  /** Calls `check` after every tick from now on. */
  onTick(check: (nowMs: number) => void): void {
    this.afterTick.push(check);
  }

  /** Runs every tick up to `targetMs`, checking after each one (while the coordinator is down, only the fleet runs). */
  advanceTo(targetMs: number): void {
    if (this.down !== null) {
      this.fleet.runUntil(Math.min(targetMs, this.down.untilMs));
      if (targetMs < this.down.untilMs) return;
      this.restart();
    }
    while (this.runtime.nextTick <= targetMs) {
      const now = this.runtime.nextTick;
      this.runtime.observeWallClock(now, now + this.wallOffsetMs);
      this.lastTickMs = now;
      if (this.store !== null) {
        // Messages up to now first: a write that completed by now is not seen earlier than it did.
        this.fleet.runUntil(now);
        this.store.advance(now, this.storeHost);
      }
      this.runtime.advanceTo(now);
      for (const check of this.afterTick) check(now);
    }
  }

  /**
   * Injects a fault at `atMs` (which may fall between ticks): ticks before it run first, then the
   * fleet's messages due by then, so the fault strikes at exactly that virtual instant.
   */
  inject(spec: FaultSpec, atMs: number): Result<InjectedFault> {
    this.advanceTo(atMs);
    if (this.down !== null) return reject('coordinator_down', 'the coordinator is down; nothing records the fault');
    this.fleet.runUntil(atMs);
    const injected = this.runtime.injectFailure(spec, atMs);
    if (injected.ok) {
      this.faultLog.push({ serverIds: injected.value.serverIds, fromMs: atMs, untilMs: injected.value.untilMs ?? Infinity,
        extraMs: spec.mode === 'slow' ? spec.delayMs ?? 0 : 0 });
    }
    return injected;
  }

  /**
   * The coordinator's whole process pauses at `atMs` for `durationMs` (a long GC pause, a stopped
   * or suspended process): no tick runs and no heartbeat is read until it resumes, when the first
   * tick sees the gap (TILT) and the heartbeats that waited are read.
   */
  stallCoordinator(atMs: number, durationMs: number): void {
    this.advanceTo(atMs);
    // A crashed coordinator has no process to pause; running its old runtime here would let the
    // dead process decide (expire actions, promote) before it restarts from its durable state.
    if (this.down !== null) return;
    const untilMs = atMs + durationMs;
    this.coordinatorOutages.push({ fromMs: atMs, untilMs });
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

/**
 * The running mesh: the coordinator, the runtime that moves it through time, the store that makes
 * its changes durable, and the subscribers to its events. Implements the HTTP layer's `MeshHost`.
 *
 * Durability follows ARCHITECTURE.md's rule 2: a `persist` effect starts a (group-committed) write
 * of the exported state; when it completes, the coordinator is told, which releases promotions held
 * back until their epoch was on disk. Every command goes through `run` or `runDurably`, so that its
 * effects are handed on before it returns: no caller has to remember to.
 */
import { randomBytes } from 'node:crypto';
import { NotDurableError, type Command, type MeshHost } from '../api/deps.ts';
import type { MeshConfig } from '../mesh/base/config.ts';
import { Coordinator } from '../mesh/core/coordinator.ts';
import type { MeshEvent } from '../mesh/effects/events.ts';
import type { HeartbeatInput, HeartbeatReply } from '../mesh/core/heartbeat.ts';
import type { FaultSpec, InjectedFault } from '../mesh/faults/faults.ts';
import type { Effect } from '../mesh/effects/outbox.ts';
import { ManualClock, type Clock } from '../mesh/base/ports.ts';
import { SeededRandom } from '../mesh/runtime/random.ts';
import { MeshRuntime } from '../mesh/runtime/runtime.ts';
import { resumeTestMesh, setupTestMesh, type TestMeshSpec } from '../mesh/simulation/setup.ts';
import type { CoreState } from '../mesh/core/state.ts';
import { stateFromRecords } from '../mesh/core/change-records.ts';
import { reject, ok, type RegionId, type Result, type ServerId } from '../mesh/base/types.ts';
import type { Logger } from './logger.ts';
import type { Store } from './store/store.ts';
import { FaultLayer } from '../mesh/faults/fault-layer.ts';

/** How a host is built. */
export interface HostOptions {
  readonly config: MeshConfig;
  readonly clock: Clock;
  readonly store: Store;
  readonly seed: number;
  readonly log: Logger;
  /**
   * The wall clock, watched every tick for steps against `clock` (which must then be monotonic);
   * absent under the manual clock, which has no wall clock to step.
   */
  readonly wallMs?: () => number;
  /**
   * Called with the error when a tick throws (a violated invariant): the process must stop, since
   * the core's state may be half-updated. Without it the error propagates to the caller.
   */
  readonly failStop?: (error: unknown) => void;
  /** Identifies this run (event ids are `<boot>.<seq>`); a random one when not given. */
  readonly bootId?: string;
  /** Checks a loaded state's shape: a sentence naming what is wrong, or undefined (data-file-schema.ts). */
  readonly checkState?: (state: unknown) => string | undefined;
  /** Back-off of retried writes while the store fails: first and longest wait, in ms. */
  readonly retry?: { readonly firstMs: number; readonly maxMs: number };
}

/** Raised when the stored records do not assemble into a state this build can trust. */
export class InvalidStateError extends Error {
  constructor(problem: string) {
    super(`the data directory does not hold a valid mesh state (${problem}); refusing to load it rather than guess`);
    this.name = 'InvalidStateError';
  }
}

/** The mesh behind the HTTP API. */
export class RunningMesh implements MeshHost {
  readonly coordinator: Coordinator;
  readonly clockKind: 'system' | 'manual';
  readonly bootId: string;
  private readonly runtime: MeshRuntime;
  private readonly listeners = new Set<(event: MeshEvent) => void>();
  private readonly changeListeners = new Set<() => void>();
  private readonly random: SeededRandom;
  private lastPersistSeq = 0;
  /** The error of the last write of the state, until a write succeeds again. */
  private writeFailure: unknown = undefined;
  private closing = false;
  /** When the ticker may retry a failed write next, and the wait after that one. */
  private retryAtMs = 0;
  private retryWaitMs: number;
  /** Until when a restarted coordinator is still giving every server its first detection window. */
  private readonly graceUntilMs: number;

  private constructor(private readonly options: HostOptions, state: CoreState | undefined) {
    const { config, clock, seed } = options;
    this.clockKind = clock instanceof ManualClock ? 'manual' : 'system';
    // 48 random bits: two runs sharing an id (and so possibly event ids) is a one-in-10^14 event.
    this.bootId = options.bootId ?? randomBytes(6).toString('hex');
    this.random = new SeededRandom(seed);
    const now = clock.now();
    this.retryWaitMs = options.retry?.firstMs ?? 100;
    this.graceUntilMs = state ? now + config.failureTimeoutMs : now;
    this.coordinator = new Coordinator(config, now, state);
    const faults = new FaultLayer(this.coordinator, this.random.fork());
    const tick = config.tickIntervalMs;
    this.runtime = new MeshRuntime(faults, Math.ceil(now / tick) * tick, (effects) => this.carryOut(effects));
    if (state && state.servers.some((s) => s.simulated && s.status !== 'left')) {
      this.runtime.fleet = resumeTestMesh(this.coordinator, this.random.fork(), now);
    }
  }

  /** Loads the persisted state (if any) and builds the host on it. */
  static async open(options: HostOptions): Promise<RunningMesh> {
    const loaded = await options.store.load();
    const state = loaded && stateFromRecords(loaded.records);
    const problem = state === undefined ? undefined : options.checkState?.(state);
    if (problem !== undefined) throw new InvalidStateError(problem);
    if (state && options.clock instanceof ManualClock && options.clock.now() < state.savedAtMs) {
      options.clock.advance(state.savedAtMs - options.clock.now());
    }
    return new RunningMesh(options, state);
  }

  now(): number {
    return this.options.clock.now();
  }

  /**
   * One ticker step under the system clock: every tick due by now (a stall is not replayed). A
   * wall-clock step since the last step puts the coordinator in TILT first (it is logged as an alert).
   */
  tick(): void {
    const now = this.now();
    const wallMs = this.options.wallMs;
    const stepMs = wallMs === undefined ? 0 : this.runtime.observeWallClock(now, wallMs());
    if (stepMs !== 0) this.options.log.warn('wall clock stepped', { stepMs });
    this.ticking(() => this.runtime.advanceTo(now, false));
    this.retryIfOwed();
  }

  /** Runs ticks; a tick that throws is handed to `failStop` (and still thrown to the caller). */
  private ticking(advance: () => void): void {
    try {
      advance();
    } catch (error) {
      this.options.failStop?.(error);
      throw error;
    }
  }

  /**
   * Retries a failed write from the ticker, with back-off, while anything is owed: a failure must not
   * wait for the next change to be retried (a promotion waiting for it would never be announced).
   */
  private retryIfOwed(): void {
    if (this.writeFailure === undefined || this.closing) return;
    const now = this.now();
    if (now < this.retryAtMs) return;
    this.retryAtMs = now + this.retryWaitMs;
    this.retryWaitMs = Math.min(this.retryWaitMs * 2, this.options.retry?.maxMs ?? 5000);
    this.persist(Math.max(this.lastPersistSeq, this.coordinator.changeSeq())).catch(() => { /* logged in persist; retried next time */ });
  }

  run<T>(command: Command<T>): T {
    const result = command(this.coordinator, this.now());
    this.flush();
    return result;
  }

  async runDurably<T>(command: Command<T>): Promise<T> {
    const result = this.run(command);
    if (isRefusal(result)) return result;
    await this.durablyNow(result);
    return result;
  }

  heartbeat(id: ServerId, input: HeartbeatInput): Result<HeartbeatReply, 'unknown_server' | 'server_left' | 'heartbeat_dropped'> {
    const result = this.runtime.faults.heartbeat(id, input, this.now());
    this.flush();
    return result;
  }

  /**
   * Hands the core's pending effects to persistence and subscribers; returns the change sequence
   * number that covers everything done so far. Commands call it themselves (see `run`).
   */
  flush(): number {
    this.runtime.flush();
    return this.coordinator.changeSeq();
  }

  async durable(seq: number): Promise<void> {
    if (seq <= this.options.store.durableSeq()) return;
    await this.persist(seq);
  }

  async setupTest(spec: TestMeshSpec):
    Promise<Result<{ regions: RegionId[]; servers: ServerId[] }, 'test_mesh_exists' | 'no_capacity' | 'duplicate_region'>> {
    if (this.runtime.fleet !== null) {
      return reject('test_mesh_exists', 'a test mesh already exists; POST /mesh/reset removes it');
    }
    const created = setupTestMesh(this.coordinator, this.random.fork(), spec, this.now());
    if (!created.ok) return created;
    this.runtime.fleet = created.value.fleet;
    this.flush();
    const value = { regions: created.value.regions, servers: created.value.servers };
    await this.durablyNow(value);
    return ok(value);
  }

  async resetTest(): Promise<{ servers: number; regions: number }> {
    const removed = this.coordinator.resetTestMesh(this.now());
    this.runtime.fleet?.clear();
    this.runtime.fleet = null;
    this.runtime.faults.clear();
    this.flush();
    await this.durablyNow(removed);
    return removed;
  }

  injectFailure(spec: FaultSpec): Result<InjectedFault> {
    return this.runtime.injectFailure(spec, this.now());
  }

  /** Recent injected faults, newest first. */
  faultLog(): InjectedFault[] {
    return this.runtime.faults.list();
  }

  async advance(ms: number): Promise<number> {
    const clock = this.options.clock;
    if (!(clock instanceof ManualClock)) throw new Error('advance() needs the manual clock');
    const target = clock.now() + ms;
    // Tick by tick, letting each tick's writes finish, so that held promotions are announced in
    // virtual time as they would be in real time.
    while (this.runtime.nextTick <= target) {
      const next = this.runtime.nextTick;
      clock.advance(next - clock.now());
      this.ticking(() => this.runtime.advanceTo(next));
      // While writes fail, the retry waits for its back-off, as under the system clock.
      if (this.writeFailure === undefined && this.lastPersistSeq > this.options.store.durableSeq()) {
        await this.persist(this.lastPersistSeq).catch(() => {});
      }
      this.retryIfOwed();
    }
    clock.advance(target - clock.now());
    return clock.now();
  }

  /** Waits until everything done so far is on disk; a failed write becomes NotDurableError. */
  private async durablyNow(value: unknown): Promise<void> {
    try {
      await this.durable(this.coordinator.changeSeq());
    } catch {
      throw new NotDurableError(value);
    }
  }

  subscribe(listener: (event: MeshEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  subscribeChanges(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.closing) return { ready: false, reason: 'the service is shutting down' };
    if (this.writeFailure !== undefined) {
      const why = this.writeFailure instanceof Error ? this.writeFailure.message : String(this.writeFailure);
      return { ready: false, reason: `the last write of the state failed: ${why}` };
    }
    const now = this.now();
    if (now < this.graceUntilMs) {
      return { ready: false, reason: `restarted: every server gets one detection window first (${Math.ceil(this.graceUntilMs - now)} ms left)` };
    }
    if (this.coordinator.tilted(now)) return { ready: false, reason: 'the coordinator stalled and distrusts its observations (TILT)' };
    return { ready: true };
  }

  /** Persists what is pending and closes the store (shutdown). */
  async close(): Promise<void> {
    this.closing = true;
    this.flush();
    await this.options.store.flush();
    await this.options.store.close();
  }

  private carryOut(effects: Effect[]): void {
    for (const effect of effects) {
      if (effect.type === 'persist') {
        this.lastPersistSeq = effect.seq;
        // Not dropped: persist logs the failure, raises the alert and leaves the retry to the ticker.
        this.persist(effect.seq).catch(() => {});
      } else {
        for (const listener of this.listeners) listener(effect.event);
      }
    }
    this.changed();
  }

  private async persist(seq: number): Promise<void> {
    try {
      await this.options.store.append(() => this.coordinator.takeChanges(this.now()), seq);
    } catch (error) {
      this.writeFailed(error, seq);
      throw error;
    }
    if (this.writeFailure !== undefined) this.writeRecovered();
    this.coordinator.markDurable(this.options.store.durableSeq(), this.now());
    this.flush();
    // What became durable may concern servers holding sessions: their pushes go out now.
    this.changed();
  }

  private writeFailed(error: unknown, seq: number): void {
    const first = this.writeFailure === undefined;
    this.writeFailure = error;
    this.options.log.error('persisting the mesh state failed; retrying with back-off', { error, seq, retryInMs: this.retryWaitMs });
    if (!first) return;
    this.retryAtMs = this.now() + this.retryWaitMs;
    this.coordinator.storageFailing(error instanceof Error ? error.message : String(error), this.now());
    this.flush();
  }

  private writeRecovered(): void {
    this.writeFailure = undefined;
    this.retryWaitMs = this.options.retry?.firstMs ?? 100;
    this.options.log.info('persisting the mesh state works again');
    this.coordinator.storageRecovered(this.now());
    this.flush();
  }
}

/** True for a command's `Result` that refused (nothing to wait for). */
function isRefusal(result: unknown): boolean {
  return typeof result === 'object' && result !== null && (result as { ok?: unknown }).ok === false;
}

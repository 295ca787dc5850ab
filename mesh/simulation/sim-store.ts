/**
 * The simulated store behind a simulated coordinator, with storage faults (issue 16 point 2): what
 * the service's host and store do with `persist` effects (src/mesh-host.ts, src/store/store.ts),
 * in virtual time. Group commit: at most one write in flight; it takes the core's change records
 * when it starts and makes them durable when it completes. A failed write keeps its records for the
 * next one, which starts with the next change or, while anything is owed, as a retry with back-off.
 *
 * Faults are windows of virtual time drawn from the run's seed: `slow` writes take `latencyMs`,
 * `fail` writes fail. A write is judged by the window it starts in. Outside them a write takes a
 * short seeded latency, so durability always lags the change a little, as on a real disk.
 */
import type { ChangeBatch, ChangeRecord } from '../core/change-records.ts';
import type { SeededRandom } from '../runtime/random.ts';

/** A window of storage faults. */
export interface StoreFault {
  readonly fromMs: number;
  readonly untilMs: number;
  readonly mode: 'slow' | 'fail';
  /** For `slow`: how long each write takes. */
  readonly latencyMs: number;
}

/** What the store asks of the simulated process around it. */
export interface StoreHost {
  /** The core's change records since the last take (`Coordinator.takeChanges`). */
  take(nowMs: number): ChangeBatch;
  /** A write completed: its records are durable, up to change `batch.seq` (`recovered`: the first after failures). */
  written(batch: ChangeBatch, nowMs: number, recovered: boolean): void;
  /** A write failed (its records are kept for the next one); `first`: the first since writes last succeeded. */
  failed(nowMs: number, first: boolean): void;
}

/** Back-off of retried writes, as the host's defaults (`HostOptions.retry`). */
const retryFirstMs = 100;
const retryMaxMs = 5000;
/** Latency of a healthy write: 1 ms plus an exponential with this mean, capped. */
const meanWriteMs = 4;
const maxWriteMs = 40;

/** Writes of one simulated store, with their faults. */
export class SimStore {
  private readonly faults: StoreFault[] = [];
  private inFlight: { batch: ChangeBatch; doneAtMs: number; fails: boolean } | null = null;
  /** Records of failed writes, written again with the next one. */
  private carried: ChangeRecord[] = [];
  /** The highest change seq a `persist` effect asked for. */
  private owedSeq = 0;
  /** The durable position: every change up to it is on the simulated disk. */
  durableSeq = 0;
  private retryAtMs = -Infinity;
  private retryWaitMs = retryFirstMs;
  /** True from a failed write until one succeeds (the host's `persistence-failing`). */
  failing = false;
  /** Writes completed and failed so far. */
  readonly counts = { written: 0, failed: 0, slow: 0 };

  constructor(private readonly random: SeededRandom) {}

  /** Adds a window of storage faults. */
  addFault(fault: StoreFault): void {
    this.faults.push(fault);
  }

  /** When the last storage fault ends (-Infinity: none). */
  get faultsEndMs(): number {
    return Math.max(-Infinity, ...this.faults.map((f) => f.untilMs));
  }

  /** A `persist` effect: changes up to `seq` must be written; a write starts now if none is in flight. */
  requested(seq: number, nowMs: number, host: StoreHost): void {
    this.owedSeq = Math.max(this.owedSeq, seq);
    if (this.inFlight === null) this.start(nowMs, host);
  }

  /** Completes the write due by `nowMs`, then starts the next one if anything is owed (after the back-off while failing). */
  advance(nowMs: number, host: StoreHost): void {
    const write = this.inFlight;
    if (write !== null && write.doneAtMs <= nowMs) {
      this.inFlight = null;
      if (write.fails) this.fail(write.batch, nowMs, host);
      else this.succeed(write.batch, nowMs, host);
    }
    if (this.inFlight === null && (this.owedSeq > this.durableSeq || this.carried.length > 0) && nowMs >= this.retryAtMs) {
      this.start(nowMs, host);
    }
  }

  /**
   * The process died: the write in flight and the records kept from failed writes die with it. The
   * restarted process starts from the durable position `seq`.
   */
  crashed(seq: number): void {
    this.inFlight = null;
    this.carried = [];
    this.owedSeq = seq;
    this.durableSeq = seq;
    this.failing = false;
    this.retryAtMs = -Infinity;
    this.retryWaitMs = retryFirstMs;
  }

  private start(nowMs: number, host: StoreHost): void {
    const taken = host.take(nowMs);
    const batch: ChangeBatch = { seq: taken.seq, records: [...this.carried, ...taken.records] };
    this.carried = [];
    const fault = this.faults.find((f) => f.fromMs <= nowMs && nowMs < f.untilMs);
    const latencyMs = fault?.mode === 'slow' ? fault.latencyMs : 1 + Math.min(maxWriteMs, Math.round(this.random.exponential(meanWriteMs)));
    if (fault?.mode === 'slow') this.counts.slow++;
    this.inFlight = { batch, doneAtMs: nowMs + latencyMs, fails: fault?.mode === 'fail' };
  }

  private succeed(batch: ChangeBatch, nowMs: number, host: StoreHost): void {
    this.counts.written++;
    this.durableSeq = Math.max(this.durableSeq, batch.seq);
    const recovered = this.failing;
    this.failing = false;
    this.retryWaitMs = retryFirstMs;
    this.retryAtMs = -Infinity;
    host.written(batch, nowMs, recovered);
  }

  private fail(batch: ChangeBatch, nowMs: number, host: StoreHost): void {
    this.counts.failed++;
    this.carried = [...batch.records];
    const first = !this.failing;
    this.failing = true;
    this.retryAtMs = nowMs + this.retryWaitMs;
    this.retryWaitMs = Math.min(this.retryWaitMs * 2, retryMaxMs);
    host.failed(nowMs, first);
  }
}

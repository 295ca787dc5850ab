/**
 * Checkers of durability under storage faults (issue 16 point 2), for runs with a simulated store
 * (mesh/simulation/sim-store.ts). Separate from the workload, like the other checkers:
 *
 * - **No 202 without durability.** A player's action is answered 202 once the store's durable
 *   position covers the change that buffered it (as `MeshHost.runDurably` answers), and at that
 *   moment the durable records must hold the action (pending in its player's record, or
 *   acknowledged there), or the write must have taken it acknowledged or reported expired (a
 *   player's record is forgotten some time after its last acknowledgement). A request whose
 *   coordinator crashed first is never answered.
 * - **No answered action lost.** After every restart of the coordinator from its durable state,
 *   and at the end, every action answered 202 is pending in the coordinator's buffer, acknowledged,
 *   or reported expired. An operator's restore of an older data file takes back what came after it
 *   (the guide says so): the restored state is the new baseline.
 * - **No healthy server blamed.** A promotion aborted for want of an acknowledgement
 *   (`failover_aborted`) must name a server that was crashed, cut off or slow within the
 *   acknowledgement window, or fall in a window where the coordinator itself was down or stalled:
 *   a promotion whose announcement waited for the disk must not count that wait against its server.
 */
import { Coordinator } from '../core/coordinator.ts';
import { stateFromRecords } from '../core/change-records.ts';
import type { ActionBufferJSON } from '../actions/action-buffer.ts';
import type { RegionId, ServerId } from '../base/types.ts';
import type { SimRun } from './scenario.ts';
import type { SafetyChecker } from './checkers.ts';

const actionKey = (regionId: RegionId, playerId: string, seq: number) => `${regionId}/${playerId}/${seq}`;

/** How long before and after a fault a server's acknowledgement may still be missing (delivery, a heartbeat, the tick). */
const faultSlackMs = 1500;

/** Durability checks of one run with a simulated store. */
export class DurabilityChecker {
  readonly violations: string[] = [];
  /** Actions answered 202 so far (shows the checker ran). */
  answeredCount = 0;
  /** Aborted promotions judged. */
  abortsJudged = 0;
  /** Promotions whose announcement waited on the disk longer than their acknowledgement deadline. */
  longWaits = 0;
  /** Since when each region's promotion has waited for its announcement. */
  private readonly heldSince = new Map<RegionId, number>();
  private waiting: { regionId: RegionId; playerId: string; seq: number; changeSeq: number }[] = [];
  /** Actions answered 202 whose acknowledgement or expiry is not durable yet. */
  private readonly answered = new Map<string, { regionId: RegionId; playerId: string; seq: number }>();
  private readonly expired = new Set<string>();
  private eventsSeen = 0;

  constructor(private readonly run: () => SimRun, private readonly safety: SafetyChecker) {}

  private fail(message: string): void {
    if (this.violations.length < 20) this.violations.push(message);
  }

  /** The core buffered an action; its 202 waits for change `changeSeq` to be durable. */
  accepted(regionId: RegionId, playerId: string, seq: number, changeSeq: number): void {
    this.waiting.push({ regionId, playerId, seq, changeSeq });
  }

  /** The core reported actions expired. */
  expiredActions(refs: readonly { regionId: RegionId; playerId: string; seq: number }[]): void {
    for (const r of refs) this.expired.add(actionKey(r.regionId, r.playerId, r.seq));
  }

  /**
   * A write completed: answered actions whose acknowledgement or expiry it made durable are settled
   * (a player's record, acknowledged actions included, is forgotten some time later); requests it
   * covers are answered 202, each checked against the durable records.
   */
  persisted(nowMs: number): void {
    const fates = this.safety.durableFates();
    for (const key of this.answered.keys()) if (fates.acknowledged.has(key) || fates.expired.has(key)) this.answered.delete(key);
    const durableSeq = this.run().store?.durableSeq ?? 0;
    const due = this.waiting.filter((w) => w.changeSeq <= durableSeq);
    if (due.length === 0) return;
    this.waiting = this.waiting.filter((w) => w.changeSeq > durableSeq);
    const buffer = stateFromRecords(this.run().storedRecords)?.buffer;
    for (const w of due) {
      const key = actionKey(w.regionId, w.playerId, w.seq);
      const fate = buffer === undefined ? 'absent' : fateIn(buffer, w.regionId, w.playerId, w.seq);
      // Acknowledged (or expired) by the time the write took the changes: its fate is what is
      // durable, even once the player's record, acknowledgements included, has been forgotten.
      const settled = fates.acknowledged.has(key) || fates.expired.has(key);
      if (fate === 'absent' && !settled && !this.expired.has(key)) {
        this.fail(`t=${nowMs}ms: action ${key} answered 202 (durable position ${durableSeq} >= ${w.changeSeq}) but the durable records do not hold it`);
      }
      if (!settled) this.answered.set(key, w);
      this.answeredCount++;
    }
  }

  /**
   * The coordinator restarted: requests not yet answered died with the process. From its last
   * durable state, every answered action must be there; from a restore, the restored buffer is the
   * new baseline.
   */
  restarted(nowMs: number, restored: boolean): void {
    this.waiting = [];
    const lost = this.unaccounted();
    if (restored) {
      for (const key of lost) this.answered.delete(key);
      return;
    }
    for (const key of lost.slice(0, 5)) this.fail(`t=${nowMs}ms: action ${key} was answered 202 but is gone after a restart from the durable state`);
  }

  /** After every step: judges the promotions aborted since the last one, and counts long waits on the disk. */
  afterStep(nowMs: number): void {
    const run = this.run();
    for (const region of run.coordinator.records().regions.values()) {
      const since = this.heldSince.get(region.id);
      const held = region.primary !== null && region.announcedEpoch !== region.epoch;
      if (held && since === undefined) this.heldSince.set(region.id, nowMs);
      if (held || since === undefined) continue;
      if (nowMs - since > run.coordinator.config.promotionAckTimeoutMs) this.longWaits++;
      this.heldSince.delete(region.id);
    }
    for (; this.eventsSeen < run.events.length; this.eventsSeen++) {
      const event = run.events[this.eventsSeen];
      if (event?.type !== 'failover_aborted') continue;
      this.abortsJudged++;
      const blame = this.healthyBlame(run, event.serverId, event.atMs);
      if (blame !== null) this.fail(`t=${event.atMs}ms: ${event.serverId} was blamed for not acknowledging its promotion in ${event.regionId} (epoch ${event.epoch}) ${blame}`);
    }
  }

  /** Problems at the end of the run: answered actions that are neither pending, acknowledged nor expired. */
  endProblems(): string[] {
    return this.unaccounted().slice(0, 5).map((key) => `action ${key} was answered 202 and is neither pending, acknowledged nor expired`);
  }

  private unaccounted(): string[] {
    const buffer = Coordinator.partsForTests(this.run().coordinator).buffer.toJSON();
    const fates = this.safety.durableFates();
    const lost: string[] = [];
    for (const [key, a] of this.answered) {
      if (fateIn(buffer, a.regionId, a.playerId, a.seq) !== 'absent' || this.expired.has(key)) continue;
      if (fates.acknowledged.has(key) || fates.expired.has(key)) continue;
      lost.push(key);
    }
    return lost;
  }

  /** Why the blame of `serverId` at `atMs` is unfounded, or null when a fault explains it. */
  private healthyBlame(run: SimRun, serverId: ServerId, atMs: number): string | null {
    const { promotionAckTimeoutMs } = run.coordinator.config;
    const from = atMs - promotionAckTimeoutMs - faultSlackMs;
    const overlaps = (a: number, b: number) => a <= atMs && b >= from;
    if (run.coordinatorOutages.some((o) => overlaps(o.fromMs, o.untilMs + faultSlackMs))) return null;
    const faulted = run.faultLog.some((f) => f.serverIds.includes(serverId) && overlaps(f.fromMs, f.untilMs + f.extraMs + faultSlackMs));
    if (faulted) return null;
    const sim = run.fleet.servers.get(serverId);
    if (sim === undefined || !sim.reachable) return null;
    return `although it was up, reachable and not slow from ${from} ms on and the coordinator ran throughout (store ${run.store?.failing === true ? 'failing' : 'writing'})`;
  }
}

/** Where the records put an action: pending, acknowledged, or absent. */
function fateIn(buffer: ActionBufferJSON, regionId: RegionId, playerId: string, seq: number): 'pending' | 'acknowledged' | 'absent' {
  const player = buffer.regions.find((r) => r.regionId === regionId)?.players.find((p) => p.playerId === playerId);
  if (player === undefined) return 'absent';
  if (player.actions.some((a) => a.seq === seq)) return 'pending';
  if ((player.ackedSeqs ?? []).includes(seq) || (player.ackedFloor ?? -Infinity) >= seq) return 'acknowledged';
  return 'absent';
}

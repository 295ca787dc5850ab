/**
 * What the core hands to the outside world: the events it emitted and the durability bookkeeping
 * behind rule 2 of ARCHITECTURE.md (an epoch is persisted before it is announced).
 *
 * Every state change that must survive a restart bumps `changeSeq`. `src/` persists the state and
 * reports back with `markDurable(seq)`; promotions wait in `pendingAnnouncements` until the change
 * that made them is durable, and only then do heartbeat replies and routes show the new epoch.
 */
import type { MeshEvent, NewMeshEvent } from './events.ts';
import type { RegionId } from '../base/types.ts';

/** A side effect for `src/`/`api/` to carry out. */
export type Effect =
  | { readonly type: 'persist'; readonly seq: number }
  | { readonly type: 'emit'; readonly event: MeshEvent };

/** Event stream and durability watermark of one coordinator. */
export class Outbox {
  private events: MeshEvent[] = [];
  private eventSeq = 0;
  private changeSeq = 0;
  private durableSeq = 0;
  private persistRequested = false;
  private readonly pending: { regionId: RegionId; epoch: number; seq: number }[] = [];

  constructor(start: { eventSeq: number; changeSeq: number } = { eventSeq: 0, changeSeq: 0 }) {
    this.eventSeq = start.eventSeq;
    this.changeSeq = start.changeSeq;
    this.durableSeq = start.changeSeq;
  }

  /**
   * Numbers an event, queues it and returns it. The event is the caller's literal itself, numbered
   * in place: callers pass a fresh literal and keep no reference to it. (Copying it with a spread
   * cost more than anything else about an event in a mass failure's tens of thousands.)
   */
  emit(event: NewMeshEvent): MeshEvent {
    this.eventSeq += 1;
    (event as { seq: number }).seq = this.eventSeq;
    this.events.push(event);
    return event;
  }

  /** Notes a change that must be persisted; returns the change's sequence number. */
  changed(): number {
    this.changeSeq += 1;
    this.persistRequested = true;
    return this.changeSeq;
  }

  /** Holds back the announcement of `epoch` for a region until the current change is durable. */
  holdAnnouncement(regionId: RegionId, epoch: number): void {
    this.pending.push({ regionId, epoch, seq: this.changed() });
  }

  /** Takes the queued effects: one `persist` (if anything changed) and the events, in order. */
  drain(): Effect[] {
    // Most calls (one per heartbeat) find nothing: no allocation then.
    if (!this.persistRequested && this.events.length === 0) return [];
    const effects: Effect[] = [];
    if (this.persistRequested) effects.push({ type: 'persist', seq: this.changeSeq });
    for (const event of this.events) effects.push({ type: 'emit', event });
    this.persistRequested = false;
    this.events = [];
    return effects;
  }

  /**
   * Records that everything up to `seq` is on disk and returns the announcements it releases,
   * oldest first.
   */
  markDurable(seq: number): { regionId: RegionId; epoch: number }[] {
    this.durableSeq = Math.max(this.durableSeq, Math.min(seq, this.changeSeq));
    const released: { regionId: RegionId; epoch: number }[] = [];
    let taken = 0;
    for (const next of this.pending) {
      if (next.seq > this.durableSeq) break;
      released.push({ regionId: next.regionId, epoch: next.epoch });
      taken++;
    }
    // One splice instead of a shift per entry: a mass failure holds thousands of announcements.
    if (taken > 0) this.pending.splice(0, taken);
    return released;
  }

  /** Sequence numbers for persistence and restart. */
  positions(): { eventSeq: number; changeSeq: number; durableSeq: number } {
    return { eventSeq: this.eventSeq, changeSeq: this.changeSeq, durableSeq: this.durableSeq };
  }
}

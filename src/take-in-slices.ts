/**
 * Takes the core's change records for a write in slices, so that a large change (a mass failure
 * touches thousands of regions) never holds the event loop for long. Each slice takes part of the
 * changes out of the core's notes, serialises each record at once and yields; a record the core
 * changes again meanwhile is noted again and taken again, and the last text of each key wins. The
 * closing `takeChanges` runs in one turn with the rest and fixes the batch's seq, so the batch is
 * exactly the state at that seq.
 *
 * Serialising at take time means the core's copies die young and the write holds only bytes outside
 * the V8 heap: a write that kept thousands of copied records (or their JSON strings) alive across its
 * slices made every minor garbage collection meanwhile copy them, inside a slice.
 */
import type { ChangeBatch, ChangeRecord } from '../mesh/core/change-records.ts';
import { Slicer } from '../api/slicer.ts';
import { encodeValue, type EncodedBatch } from './store/store.ts';

/** What the core offers for it (`Coordinator`). */
export interface ChangeSource {
  takeSomeChanges(max: number): ChangeRecord[];
  takeChanges(nowMs: number): ChangeBatch;
}

/** Most slices before the rest is taken in one turn, so that a core changing faster than it is copied cannot keep a write from finishing. */
const maxSlices = 1000;

/** How the work is cut. */
export interface SliceOptions {
  /** Work per slice before yielding, in ms. */
  readonly sliceMs?: number;
  /** Records taken per step (the slice's clock is read between steps); a step costs well under a millisecond. */
  readonly stepRecords?: number;
}

/** The batch of every change so far, taken and serialised in slices. */
export async function takeInSlices(source: ChangeSource, nowMs: () => number, options: SliceOptions = {}): Promise<EncodedBatch> {
  const { sliceMs = 2, stepRecords = 32 } = options;
  const slicer = new Slicer(sliceMs);
  const records = new Map<string, Buffer | null>();
  let slices = 0;
  for (let part = source.takeSomeChanges(stepRecords); part.length > 0; part = source.takeSomeChanges(stepRecords)) {
    for (const { key, value } of part) records.set(key, encodeValue(value));
    if (part.length < stepRecords || slices >= maxSlices) break;
    if (slicer.overdue()) {
      await slicer.pause();
      slices += 1;
    }
  }
  const rest = source.takeChanges(nowMs());
  for (const { key, value } of rest.records) records.set(key, encodeValue(value));
  return { seq: rest.seq, records };
}

/**
 * Takes the core's change records for a write in slices, so that copying a large change (a mass
 * failure touches thousands of regions) never holds the event loop for long. Each slice takes part
 * of the changes out of the core's notes and yields; a record the core changes again meanwhile is
 * noted again and taken again, and the last copy of each key wins. The closing `takeChanges` runs
 * in one turn with the rest and fixes the batch's seq, so the batch is exactly the state at that seq.
 */
import type { ChangeBatch, ChangeRecord } from '../mesh/core/change-records.ts';
import { Slicer } from './store/slicer.ts';

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

/** The batch of every change so far, taken in slices. */
export async function takeInSlices(source: ChangeSource, nowMs: () => number, options: SliceOptions = {}): Promise<ChangeBatch> {
  const { sliceMs = 4, stepRecords = 128 } = options;
  const slicer = new Slicer(sliceMs);
  const early: ChangeRecord[] = [];
  let slices = 0;
  for (let part = source.takeSomeChanges(stepRecords); part.length > 0; part = source.takeSomeChanges(stepRecords)) {
    for (const record of part) early.push(record);
    if (part.length < stepRecords || slices >= maxSlices) break;
    if (slicer.overdue()) {
      await slicer.pause();
      slices += 1;
    }
  }
  const rest = source.takeChanges(nowMs());
  if (slices === 0) return { seq: rest.seq, records: early.length === 0 ? rest.records : early.concat(rest.records) };
  const latest = new Map<string, unknown>();
  for (const { key, value } of early) latest.set(key, value);
  for (const { key, value } of rest.records) latest.set(key, value);
  return { seq: rest.seq, records: [...latest].map(([key, value]) => ({ key, value })) };
}

/**
 * Reads what a service left in its data directory (snapshot plus change logs) as the core state, the
 * way the service reads it at start-up. Only for a directory whose service has stopped or was killed.
 */
import { recordsOfState, stateFromRecords } from '../../mesh/core/change-records.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { LowdbStore } from '../../src/store/lowdb-store.ts';

/** The durable state in `dir`; throws when there is none. */
export async function durableState(dir: string): Promise<CoreState> {
  const store = new LowdbStore({ dataDir: dir, legacyRecords: (state) => recordsOfState(state as CoreState) });
  const loaded = await store.load();
  const state = loaded && stateFromRecords(loaded.records);
  if (state === undefined) throw new Error(`no durable state in ${dir}`);
  return state;
}

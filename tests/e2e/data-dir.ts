/**
 * Reads what a service left in its data directory (snapshot plus change logs) as the core state, the
 * way the service reads it at start-up. Only for a directory whose service has stopped or was killed.
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
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

/** The data files of a data directory (the snapshot and the change logs), not the lock. */
function dataFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name === 'mesh.json' || /^mesh\.\d+\.log$/.test(name));
}

/**
 * An operator's backup of a running service's data directory, as FAULT_TOLERANCE_DEPLOYMENT.md §2.6
 * says: the snapshot first, then the logs in increasing order.
 */
export function backUpDataDir(dir: string, to: string): void {
  mkdirSync(to, { recursive: true });
  const files = dataFiles(dir).sort((a, b) => (a === 'mesh.json' ? -1 : b === 'mesh.json' ? 1 : logNumber(a) - logNumber(b)));
  for (const name of files) copyFileSync(join(dir, name), join(to, name));
}

/** Restores a backup into a stopped service's data directory, replacing its data files. */
export function restoreDataDir(from: string, dir: string): void {
  for (const name of dataFiles(dir)) rmSync(join(dir, name));
  for (const name of dataFiles(from)) copyFileSync(join(from, name), join(dir, name));
}

const logNumber = (name: string) => Number(name.split('.')[1]);

/**
 * Scratch space of one end-to-end test file: temporary data directories and simulated fleets that
 * are cleaned up after the file, with every service process it started, whatever the tests did.
 */
import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { World } from './game-server.ts';
import { killAll } from './service-process.ts';

/** Registers the clean-up with `after`; call it once at the top level of a test file. */
export function e2eScratch(prefix: string): { freshDir: () => Promise<string>; worlds: World[] } {
  const dirs: string[] = [];
  const worlds: World[] = [];
  after(async () => {
    for (const world of worlds) world.stopAll();
    await killAll();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  return {
    worlds,
    freshDir: async () => {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
  };
}

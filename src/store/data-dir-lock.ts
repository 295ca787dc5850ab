/**
 * One coordinator per data directory. Two processes writing the same data file would overwrite
 * each other's state (and share one temp file name), so the second one refuses to start. A lock
 * left by a process that no longer exists (after SIGKILL or a crash) is taken over.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Name of the lock file inside the data directory. */
export const lockFileName = 'mesh.lock';

/** A held lock. */
export interface DataDirLock {
  release(): Promise<void>;
}

/** Takes the data directory's lock or throws an error naming the process that holds it. */
export async function lockDataDir(dataDir: string, pid = process.pid): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const file = join(dataDir, lockFileName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(String(pid));
      await handle.close();
      return { release: () => rm(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && holder !== pid && isRunning(holder)) {
        throw new Error(`data directory ${dataDir} is in use by process ${holder}; stop it or use another --data-dir`);
      }
      await rm(file, { force: true });
    }
  }
  throw new Error(`could not lock data directory ${dataDir}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One coordinator per data directory. Two processes writing the same data file would overwrite
 * each other's state (and share one temp file name), so the second one refuses to start.
 *
 * The lock is proper-lockfile's: `mesh.lock` is a directory (mkdir is atomic, also on shared
 * volumes) whose mtime the holder renews every {@link LOCK_UPDATE_MS}; it counts as abandoned only
 * once it has not been renewed for {@link LOCK_STALE_MS}. No process id is trusted, so a pid reused
 * by another process, or a holder in another container (another pid namespace) sharing the volume,
 * cannot fool it. The price: after a crash the next start waits until the lock has gone stale.
 * `mesh.lock.owner` names the holder, for the refusal message only.
 */
import { hostname } from 'node:os';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';

/** Name of the lock (a directory) inside the data directory. */
export const lockFileName = 'mesh.lock';

/** How long an unrenewed lock is still respected (proper-lockfile's default). */
export const LOCK_STALE_MS = 10_000;
/** How often the holder renews it. */
export const LOCK_UPDATE_MS = 2_000;

/** A held lock. */
export interface DataDirLock {
  release(): Promise<void>;
}

/** Options of {@link lockDataDir}; the defaults are for production. */
export interface LockOptions {
  /** Longest wait for a lock left by a crashed process to go stale (stale time plus one renewal). */
  readonly waitMs?: number;
  /** Called if the lock is lost while held (not renewed in time, or taken): the caller must stop. */
  readonly onCompromised?: (error: Error) => void;
}

/** Raised when the data directory cannot be written at all (read-only mount, permissions). */
export class DataDirNotWritableError extends Error {
  constructor(dataDir: string, cause: unknown) {
    const code = (cause as { code?: unknown }).code;
    super(`data directory ${dataDir} is not writable (${String(code ?? cause)}): the coordinator must write its state there; ` +
      'mount it read-write, fix its permissions, or choose another --data-dir', { cause });
    this.name = 'DataDirNotWritableError';
  }
}

const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM']);

/** Takes the data directory's lock, waiting for an abandoned one to go stale, or throws naming the holder. */
export async function lockDataDir(dataDir: string, options: LockOptions = {}): Promise<DataDirLock> {
  const { waitMs = LOCK_STALE_MS + LOCK_UPDATE_MS, onCompromised = (error) => { throw error; } } = options;
  const lockPath = join(dataDir, lockFileName);
  const ownerPath = `${lockPath}.owner`;
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (error) {
    if (NOT_WRITABLE.has(String((error as NodeJS.ErrnoException).code))) throw new DataDirNotWritableError(dataDir, error);
    throw error;
  }
  const retryEveryMs = 500;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dataDir, {
      lockfilePath: lockPath, realpath: false, stale: LOCK_STALE_MS, update: LOCK_UPDATE_MS, onCompromised,
      retries: { retries: Math.ceil(waitMs / retryEveryMs), factor: 1, minTimeout: retryEveryMs, maxTimeout: retryEveryMs },
    });
  } catch (error) {
    const code = String((error as NodeJS.ErrnoException).code);
    if (NOT_WRITABLE.has(code)) throw new DataDirNotWritableError(dataDir, error);
    if (code !== 'ELOCKED') throw error;
    const owner = await readFile(ownerPath, 'utf8').catch(() => 'an unknown process');
    throw new Error(`data directory ${dataDir} is in use by ${owner} (its lock ${lockFileName} is renewed); stop it or use another --data-dir`);
  }
  await writeFile(ownerPath, `process ${process.pid} on ${hostname()}`);
  return {
    release: async () => {
      await rm(ownerPath, { force: true });
      await release();
    },
  };
}

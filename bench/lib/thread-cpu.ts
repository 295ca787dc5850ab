/**
 * CPU time per thread of this process, from Linux's /proc/self/task/<tid>/stat (utime + stime, in
 * clock ticks of 10 ms). A mass failure's tick shares a small VM's cores with V8's helper threads
 * (the optimising compiler and the garbage collector run there); this tells how much CPU the tick's
 * own thread got and how much the helpers took meanwhile. Null where /proc is not available.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Milliseconds of CPU per thread id. */
export type ThreadCpu = ReadonlyMap<string, number>;

/** Resolution of the readings. */
export const threadCpuResolutionMs = 10;

export function threadCpu(): ThreadCpu | null {
  try {
    const times = new Map<string, number>();
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may contain spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      times.set(tid, (Number(fields[11]) + Number(fields[12])) * threadCpuResolutionMs);
    }
    return times;
  } catch {
    return null;
  }
}

/** CPU taken between two readings by the main thread (its id is the process id) and by all others. */
export function threadCpuSince(before: ThreadCpu | null): { mainMs: number; helpersMs: number } | null {
  const after = threadCpu();
  if (before === null || after === null) return null;
  let mainMs = 0;
  let helpersMs = 0;
  for (const [tid, total] of after) {
    const spent = total - (before.get(tid) ?? 0);
    if (tid === String(process.pid)) mainMs += spent;
    else helpersMs += spent;
  }
  return { mainMs, helpersMs };
}

/**
 * CPU time per thread of this process, from Linux's /proc/self/task/<tid>/schedstat (time on a CPU,
 * in nanoseconds), or, where the kernel has no schedstat, from /proc/self/task/<tid>/stat (utime +
 * stime, in clock ticks of 10 ms). A mass failure's tick shares a small VM's cores with V8's helper
 * threads (the optimising compiler and the garbage collector run there); this tells how much CPU
 * the tick's own thread got and how much the helpers took meanwhile. Null where /proc is not
 * available.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Milliseconds of CPU per thread id. */
export type ThreadCpu = ReadonlyMap<string, number>;

const schedstat = existsSync(`/proc/self/task/${process.pid}/schedstat`);

/** Where the readings come from and their resolution, for table labels. */
export const threadCpuSource = schedstat ? 'schedstat, ns resolution' : '/proc stat, 10 ms resolution';

/** CPU milliseconds of one thread. */
function cpuMs(tid: string): number {
  if (schedstat) return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function threadCpu(): ThreadCpu | null {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  const times = new Map<string, number>();
  for (const tid of tids) {
    try {
      times.set(tid, cpuMs(tid));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return times.has(String(process.pid)) ? times : null;
}

/** CPU milliseconds of the main thread so far, or null where /proc is not available. */
export function mainThreadCpu(): number | null {
  try {
    return cpuMs(String(process.pid));
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

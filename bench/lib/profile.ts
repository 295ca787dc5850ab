/**
 * CPU profile of one synchronous section through the inspector of the running process (the
 * session's calls complete synchronously in the same thread), summarised as the functions with the
 * most inclusive and self time. Sampling adds overhead: a profiled run is for attribution, never
 * for the reported timings.
 */
import { Session } from 'node:inspector';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Runs `section` under the sampling profiler and returns its result and the profile. */
export function profileSection<T>(section: () => T, samplingIntervalUs = 100): { result: T; profile: Profile } {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): unknown => {
    let reply: unknown;
    let failure: Error | null = null;
    session.post(method, params ?? {}, (error: Error | null, value?: unknown) => {
      failure = error;
      reply = value;
    });
    if (failure !== null) throw failure;
    return reply;
  };
  post('Profiler.enable');
  post('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
  post('Profiler.start');
  const result = section();
  const { profile } = post('Profiler.stop') as { profile: Profile };
  session.disconnect();
  return { result, profile };
}

/**
 * Inclusive and self time per function (file: function), the largest first, in ms, for functions
 * whose script URL passes `keep`, plus the garbage collector's time. With `under`, only what ran
 * below a function of that name counts (the function itself and its callers are left out).
 */
export function hotFunctions(profile: Profile, top: number, keep: (url: string) => boolean = () => true, under?: string):
  { name: string; inclusiveMs: number; selfMs: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const name = (n: ProfileNode) => {
    if (n.callFrame.functionName === '(garbage collector)') return '(garbage collector)';
    if (!keep(n.callFrame.url)) return null;
    const file = n.callFrame.url.split('/').pop() || '(native)';
    return `${file}: ${n.callFrame.functionName || '(anonymous)'}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  profile.samples.forEach((sample, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const leaf = byId.get(sample);
    if (leaf === undefined) return;
    const stack: ProfileNode[] = [];
    let below = under === undefined || leaf.callFrame.functionName === '(garbage collector)';
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id);
      if (node === undefined) break;
      if (under !== undefined && node.callFrame.functionName === under) {
        below = true;
        break;
      }
      stack.push(node);
    }
    if (!below) return;
    const leafName = stack[0] === leaf ? name(leaf) : null;
    if (leafName !== null) self.set(leafName, (self.get(leafName) ?? 0) + us);
    const seen = new Set<string>();
    for (const node of stack) {
      const key = name(node);
      if (key === null || seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  });
  return [...inclusive]
    .sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([key, us]) => ({ name: key, inclusiveMs: us / 1000, selfMs: (self.get(key) ?? 0) / 1000 }));
}

/**
 * The real service as a child process: `node --import tsx src/main.ts` (the sources; `entry`
 * selects another, such as the `npm start` bundle), with its ready line parsed
 * for the URL, its output kept for diagnostics, and every process it started killed by the test's
 * `after` hook. Also a response check for `fetch` answers against openapi.yaml.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { contract } from '../api/harness.ts';

/** Root of the repository (the service's working directory). */
export { repoRoot } from './repo-root.ts';
import { repoRoot } from './repo-root.ts';

/** A running (or exited) service process. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Everything written so far to stdout and stderr. */
  readonly output: () => string;
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Every child started by this test file, so that `killAll` can clean up whatever happened. */
const started = new Set<ChildProcess>();

/** The environment of the child: this process's, without any MESH_* setting that could leak in. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('MESH_')) env[key] = value;
  return { ...env, ...extra };
}

/** How the service is started from the repository root: the sources through tsx by default. */
const SOURCES: readonly string[] = ['--import', 'tsx', 'src/main.ts'];

/** Spawns the service without waiting for anything. */
export function spawnService(args: readonly string[], env: Record<string, string> = {}, entry: readonly string[] = SOURCES): {
  child: ChildProcess; output: () => string; exited: ServiceProcess['exited'];
} {
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: repoRoot, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let text = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, output: () => text, exited };
}

/**
 * Starts the service and resolves once it logged its ready line (JSON with `url`). Rejects with the
 * output so far if it exits first or is not ready within `timeoutMs`.
 */
export async function startService(args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number; entry?: readonly string[] } = {}): Promise<ServiceProcess> {
  const { child, output, exited } = spawnService(args, options.env, options.entry);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`service not ready within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    const onData = () => {
      for (const line of output().split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const record = JSON.parse(line) as { msg?: string; url?: string };
          if (record.msg === 'mesh coordinator ready' && typeof record.url === 'string') return finish(undefined, record.url);
        } catch {
          // A partial line: the rest comes with the next chunk.
        }
      }
    };
    const onExit = () => finish(new Error(`service exited before it was ready:\n${output()}`));
    const finish = (error?: Error, value?: string) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(value as string);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    onData();
  });
  const port = Number(new URL(url).port);
  assert.ok(child.pid !== undefined);
  return { child, pid: child.pid, url, port, output, exited };
}

/** Sends `signal` and waits (bounded) for the exit; SIGKILLs if the process outlives the wait. */
export async function stopService(service: Pick<ServiceProcess, 'child' | 'exited'>, signal: NodeJS.Signals, timeoutMs = 15_000) {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill(signal);
  const timer = setTimeout(() => service.child.kill('SIGKILL'), timeoutMs);
  try {
    return await service.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Kills every child this file started that is still running (for `after` hooks). */
export async function killAll(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) {
      waits.push(once(child, 'exit'));
      child.kill('SIGKILL');
    }
  }
  await Promise.all(waits);
}

/** A JSON answer of the service, as `fetch` got it. */
export interface JsonResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any;
}

/** Calls the service with a JSON body (if any), bounded by `timeoutMs`, and parses the answer. */
export async function call(base: string, method: string, path: string, options: {
  body?: unknown; headers?: Record<string, string>; timeoutMs?: number;
} = {}): Promise<JsonResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(new URL(path, base), {
    method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let body: unknown = text;
  if (/json/.test(res.headers.get('content-type') ?? '')) body = JSON.parse(text);
  return { status: res.status, headers: res.headers, body };
}

/** Asserts the status and that the body matches openapi.yaml; returns the body. */
export function expectJson(operationId: string, res: JsonResponse, status: number): any {
  assert.equal(res.status, status, `${operationId}: expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  const checked = contract().validateResponse(operationId, res.status, res.body);
  assert.ok(checked.ok, `${operationId} ${status} response does not match openapi.yaml: ` +
    `${JSON.stringify(checked.ok ? [] : checked.errors)}\n${JSON.stringify(res.body).slice(0, 2000)}`);
  if (status >= 400) assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
  return res.body;
}

/** Polls `probe` until it returns a value other than undefined; bounded in time and count. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let attempt = 0; attempt < Math.ceil(timeoutMs / intervalMs) + 1; attempt++) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `; last error: ${String(last)}` : ''}`);
}

/** Sleeps `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

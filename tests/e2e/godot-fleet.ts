/**
 * Real headless Godot servers for the end-to-end suites: finding `godot3-server`, the skip rule,
 * a child process whose stdout lines a test can wait for, free UDP ports, and starting one
 * `clients/godot/demo_server.gd` process. Every process is stopped by its pid, each stop bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

import { repoRoot } from './repo-root.ts';

export { repoRoot };
export const GODOT = 'godot3-server';

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch { /* not here */ }
  }
  return null;
}

export const godotPath = findOnPath(GODOT);
const inCi = process.env.CI === 'true';
export const skip = godotPath === null && !inCi
  ? `${GODOT} is not on PATH (apt-get install -y ${GODOT}); skipped outside CI, where it is required`
  : false;

/** A child process whose stdout lines are kept, so that a test can wait for one. */
export class Child {
  readonly lines: string[] = [];
  private stderr = '';
  private waiters: (() => void)[] = [];
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;

  constructor(readonly name: string, readonly proc: ChildProcess) {
    let partial = '';
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) this.lines.push(line.trimEnd());
      this.wake();
    });
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    this.exited = new Promise((resolve) => {
      const ended = (code: number | null, signal: NodeJS.Signals | null) => {
        this.exitCode = code;
        this.signal = signal;
        this.wake();
        resolve();
      };
      proc.once('exit', ended);
      // A process that cannot be spawned never exits: count it as ended with code -1.
      proc.once('error', (error) => { this.stderr += `spawn error: ${error.message}\n`; if (proc.pid === undefined) ended(-1, null); });
    });
  }

  get running(): boolean {
    return this.exitCode === null && this.signal === null;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The first stdout line matching `pattern`, waiting at most `timeoutMs` (or until `signal` aborts). */
  async waitForLine(pattern: RegExp, timeoutMs: number, signal?: AbortSignal): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.lines) {
        const match = pattern.exec(line);
        if (match) return match;
      }
      const left = deadline - Date.now();
      if (left <= 0 || !this.running || signal?.aborted) {
        throw new Error(`${this.name}: no line matching ${pattern} within ${timeoutMs} ms` +
          `${this.running ? '' : ` (exited: ${this.exitCode ?? this.signal})`}\n${this.describe()}`);
      }
      await new Promise<void>((resolve) => {
        const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
        const timer = setTimeout(done, left);
        signal?.addEventListener('abort', done);
        this.waiters.push(done);
      });
    }
  }

  describe(): string {
    return `--- ${this.name} stdout ---\n${this.lines.slice(-30).join('\n')}\n--- ${this.name} stderr (tail) ---\n${this.stderr.slice(-1500)}`;
  }

  /** Sends `signal`, then SIGKILL if the process is still there after `graceMs`. Bounded. */
  async stop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    if (!this.running) return;
    this.proc.kill(signal);
    const timer = setTimeout(() => { if (this.running) this.proc.kill('SIGKILL'); }, graceMs);
    await withTimeout(this.exited, graceMs + 2000);
    clearTimeout(timer);
  }
}

/** Waits for `promise` at most `ms`; the timer never outlives the wait. */
export async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => { timer = setTimeout(resolve, ms); })]);
  clearTimeout(timer);
}

/** Free UDP ports on loopback (bound, read and released; the Godot process binds them next). */
export async function freeUdpPorts(count: number): Promise<number[]> {
  const sockets = await Promise.all(Array.from({ length: count }, () => new Promise<ReturnType<typeof createSocket>>((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve(socket));
  })));
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** The environment of a child: no inherited MESH_* setting changes what the test expects. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('MESH_')) env[key] = value;
  return { ...env, ...extra };
}

/** Options of one demo server process. */
export interface GodotOptions {
  readonly name: string;
  readonly coordinator: string;
  readonly zone: string;
  readonly udpPort: number;
  /** Holds XDG dirs (Godot's user data) and is where relative files go. */
  readonly workDir: string;
  readonly extra?: readonly string[];
}

/** Starts `clients/godot/demo_server.gd` headless. */
export function spawnGodot(options: GodotOptions): Child {
  if (godotPath === null) throw new Error(`${GODOT} is not on PATH`);
  const { workDir } = options;
  return new Child(options.name, spawn(godotPath, [
    '--no-window', '-s', 'clients/godot/demo_server.gd', '--',
    '--coordinator', options.coordinator, '--zone', options.zone, '--udp-port', String(options.udpPort),
    '--name', options.name, '--host', '127.0.0.1', ...(options.extra ?? []),
  ], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
    // A parseable locale silences Godot's "Invalid locale 'C'"; XDG dirs keep its user data in workDir.
    env: childEnv({ LANG: 'en_US.UTF-8', XDG_DATA_HOME: workDir, XDG_CONFIG_HOME: workDir, XDG_CACHE_HOME: workDir }),
  }));
}

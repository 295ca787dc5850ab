/**
 * Game-server processes that hold sessions (session-game-server.ts), as the end-to-end session test
 * and the session-crash bench start them: each prints one JSON line per event, collected here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from './repo-root.ts';

/** One line a game server printed (`registered`, `reply`, `role`, `lost`, `beat`, ...). */
export interface Line { event: string; at: number; id?: string; region?: string; role?: string; epoch?: number }

/** A running game-server process and the lines it printed so far. */
export interface SessionGameServer {
  readonly child: ChildProcess;
  readonly lines: Line[];
}

/** Starts a game server in `zone` against the coordinator at `base`; it exits by itself after `lifetimeMs`. */
export function startSessionGameServer(base: string, zone: string, lifetimeMs = 60_000, debug = true): SessionGameServer {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/e2e/session-game-server.ts', base, zone, String(lifetimeMs)], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...(debug ? { SESSION_GAME_SERVER_DEBUG: '1' } : {}) },
  });
  const lines: Line[] = [];
  let rest = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) if (part.startsWith('{')) lines.push(JSON.parse(part) as Line);
  });
  return { child, lines };
}

/** The last role a game server printed for `region`, or undefined. */
export function roleIn(server: SessionGameServer, region: string): Line | undefined {
  return server.lines.filter((l) => l.event === 'role' && l.region === region).at(-1);
}

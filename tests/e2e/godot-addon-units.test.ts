/**
 * The addon's own checks on the real engine (clients/godot/tests/addon_test.gd): replies and
 * pushes applied idempotently by epoch (a repeated one emits nothing, an older epoch or demotion
 * is ignored, a push never makes a region led), the primary lease counted from send times, and
 * the list of coordinator URLs (the leader a 307 or a 4002 close names is used until it fails; a
 * failed coordinator is left for the next, a late failure of one no longer in use changes nothing).
 * Then leader_request.gd (clients/godot/tests/leader_request_test.gd) against loopback HTTP servers
 * standing in for coordinator replicas: a follower's 307 is followed with the same method, path,
 * Authorization and body; 503 no-leader, a closed port and a coordinator that never answers move
 * the list on; a redirect loop ends.
 *
 * Skip rule: without `godot3-server` on PATH the test is skipped, except under `CI=true`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Child, GODOT, childEnv, godotPath, repoRoot, skip, withTimeout } from './godot-fleet.ts';

/** Runs one GDScript test on the engine and checks its summary line: `<name>: <n> checks, 0 failed`. */
async function runEngineTest(name: string, args: readonly string[], minChecks: number): Promise<void> {
  if (godotPath === null) throw new Error(`${GODOT} is not on PATH but CI=true: .ci/run must install it`);
  const workDir = await mkdtemp(join(tmpdir(), 'mesh-godot-units-'));
  try {
    const child = new Child(name, spawn(godotPath, ['--no-window', '-s', `clients/godot/tests/${name}.gd`, ...args], {
      cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv({ LANG: 'en_US.UTF-8', XDG_DATA_HOME: workDir, XDG_CONFIG_HOME: workDir, XDG_CACHE_HOME: workDir }),
    }));
    await withTimeout(child.exited, 45_000);
    if (child.running) await child.stop('SIGKILL', 1000);
    const summary = child.lines.find((l) => l.startsWith(`${name}:`));
    assert.match(summary ?? '', new RegExp(`^${name}: (\\d+) checks, 0 failed$`), child.describe());
    assert.ok(Number(/(\d+) checks/.exec(summary!)![1]) >= minChecks, 'every check ran');
    assert.equal(child.exitCode, 0, child.describe());
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** A loopback HTTP server answering with `handler`; closed by the caller. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('the addon applies assignments idempotently by epoch, counts its lease from send times and follows the leader among its coordinator URLs', { skip, timeout: 60_000 }, async () => {
  await runEngineTest('addon_test', [], 46);
});

test('the addon follows a follower\'s 307 with the same request and leaves coordinators that fail', { skip, timeout: 60_000 }, async () => {
  const json = (res: ServerResponse, status: number, doc: unknown, type = 'application/json') => {
    res.writeHead(status, { 'content-type': type }).end(JSON.stringify(doc));
  };
  const leader = await serve((req, res, body) =>
    json(res, 200, { method: req.method, url: req.url, authorization: req.headers.authorization, body }));
  const follower = await serve((req, res) => {
    res.writeHead(307, { location: `${leader.url}${req.url}`, 'content-type': 'application/json' }).end('{}');
  });
  const noLeader = await serve((_req, res) => json(res, 503,
    { type: 'https://mesh-coordinator.dev/problems/no-leader', title: 'No leader', status: 503, detail: 'election' }, 'application/problem+json'));
  const loop: { url?: string } = {};
  const looping = await serve((req, res) => { res.writeHead(307, { location: `${loop.url}${req.url}` }).end(); });
  loop.url = looping.url;
  const silent = await serve(() => { /* never answers */ });
  const closed = await serve(() => {});
  await new Promise((resolve) => closed.server.close(resolve));
  const servers = [leader, follower, noLeader, looping, silent];
  try {
    await runEngineTest('leader_request_test', ['--', '--follower', follower.url, '--leader', leader.url, '--no-leader', noLeader.url,
      '--loop', looping.url, '--silent', silent.url, '--closed', closed.url], 10);
  } finally {
    for (const { server } of servers) {
      server.closeAllConnections();
      server.close();
    }
  }
});
